"""The depmicro command line on good input: what users run from the README."""

import json

import numpy as np
import pandas as pd
from click.testing import CliRunner

from pydepmicro import __version__, read_table, write_table
from pydepmicro.cli import cli


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_version():
    assert __version__ in run("--version")


def test_inspect_json_counts_what_is_there(tmp_path, small_table):
    write_table(small_table, tmp_path / "t.biom")
    summary = json.loads(run("inspect", tmp_path / "t.biom", "--json"))
    assert summary["samples"] == 6 and summary["taxa"] == 5 and summary["missing_entries"] == 1
    assert summary["metadata"]["columns"]["sample_type"]["levels"] == 2


def test_inspect_reports_id_mismatches_without_failing(tmp_path, small_table):
    write_table(small_table, tmp_path / "t.tsv")
    pd.DataFrame({"g": [1, 2, 3]}, index=["S0", "S1", "other"]).to_csv(tmp_path / "m.csv")
    out = run("inspect", tmp_path / "t.tsv", "--meta", tmp_path / "m.csv", "--plot", tmp_path / "p.png")
    assert "samples without metadata      4 (S2, S3, S4, S5)" in out
    assert "metadata rows without sample  1 (other)" in out
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_convert_carries_metadata_and_respects_force(tmp_path, small_table):
    write_table(small_table, tmp_path / "t.biom")
    run("convert", tmp_path / "t.biom", tmp_path / "t.h5ad")
    assert read_table(tmp_path / "t.h5ad").equals(small_table)
    result = CliRunner().invoke(cli, ["convert", str(tmp_path / "t.biom"), str(tmp_path / "t.h5ad")])
    assert result.exit_code != 0 and "--force" in result.output
    run("convert", tmp_path / "t.biom", tmp_path / "t.h5ad", "--force")


def test_simulate_writes_table_and_truth(tmp_path):
    out = run("simulate", tmp_path / "sim.biom", "--samples", 60, "--taxa", 20, "--zero-fraction", 0.7, "--seed", 3)
    assert "60 samples x 20 taxa" in out
    table = read_table(tmp_path / "sim.biom")
    assert abs(table.zero_fraction - 0.7) < 0.03
    edges = pd.read_csv(tmp_path / "sim.biom.truth_edges.tsv", sep="\t")
    assert set(edges["source"]) <= set(table.taxa_ids)
    dropouts = pd.read_csv(tmp_path / "sim.biom.dropouts.tsv", sep="\t")
    frame = table.to_frame()
    assert all(frame.loc[s, t] == 0 for s, t in zip(dropouts["sample_id"], dropouts["taxon_id"]))
    assert (dropouts["true_count"] > 0).all()


def test_demo_runs_on_the_embedded_example(tmp_path):
    run("demo", "-o", tmp_path / "demo", "--quick", "--quiet")
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    example = read_table(tmp_path / "demo" / "example.biom")
    assert summary["samples"] == example.n_samples and np.isclose(summary["zero_fraction"], example.zero_fraction, atol=1e-4)
    edges = pd.read_csv(tmp_path / "demo" / "edges.tsv", sep="\t")
    assert len(edges) > 0 and set(edges["source"]) <= set(example.taxa_ids)
    assert (tmp_path / "demo" / "dependencies.png").stat().st_size > 1000
    imputed = read_table(tmp_path / "demo" / "imputed.biom")
    observed = example.counts > 0
    assert np.array_equal(imputed.counts[observed], example.counts[observed])
    check = json.loads((tmp_path / "demo" / "imputation_check.json").read_text())
    assert 0 <= check["dropout_auroc"] <= 1 and check["dropouts"] > 0
    assert (tmp_path / "demo" / "model" / "model.safetensors").is_file()
    assert (tmp_path / "demo" / "imputation.png").stat().st_size > 1000
    result = CliRunner().invoke(cli, ["demo", "-o", str(tmp_path / "demo")])
    assert result.exit_code != 0 and "--force" in result.output
