"""`depmicro train / impute / pretrain` on tiny models: outputs, formats, and bad input with nothing written."""

from __future__ import annotations

import json

import anndata
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from pydepmicro.cli import cli
from pydepmicro.datasets import simulate
from pydepmicro.io import read_table, write_table

TINY = ["--set", "d_z=2", "--set", "vae_d_model=16", "--set", "vae_layers=1", "--set", "vae_heads=2",
        "--set", "d_model=16", "--set", "n_layers=1", "--set", "n_heads=2", "--set", "n_blocks=2",
        "--set", "num_train_timesteps=100", "--vae-steps", "15", "--dat-steps", "15", "--dependency", "ftest"]
FAST = ["--draws", "2", "--sampler", "ddim:3", "--quiet"]


def run(*args, ok=True):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_model")
    table = simulate(40, 10, seed=4, zero_fraction=0.5).table
    counts = table.counts.copy()
    counts[0, np.flatnonzero(counts[0] > 0)[:2]] = np.nan
    table = table.with_counts(counts)
    write_table(table.with_metadata(table.sample_meta.iloc[:, :0]), folder / "t.tsv")
    meta = table.sample_meta.copy()
    meta.index.name = "sample_id"
    meta.to_csv(folder / "meta.tsv", sep="\t")
    write_table(table, folder / "t.biom")
    model = folder / "model"
    run("train", folder / "t.tsv", "--meta", folder / "meta.tsv", "--no-metadata", "-o", model, *TINY, "--quiet")
    return folder, table


def test_train_writes_a_model_folder(files):
    folder, table = files
    names = {p.name for p in (folder / "model").iterdir()}
    assert {"config.json", "model.safetensors", "taxa.tsv", "training_curves.csv", "training_curves.png"} <= names
    taxa = pd.read_csv(folder / "model" / "taxa.tsv", sep="\t", dtype=str)["taxon_id"].tolist()
    assert taxa == list(table.taxa_ids)


def test_impute_with_model_keeps_format_observed_and_writes_side_tables(files, tmp_path):
    folder, table = files
    out = tmp_path / "imputed.tsv"
    result = run("impute", folder / "t.tsv", "--model", folder / "model", "-o", out, "--zeros", "keep", *FAST)
    assert "wall time" in result.output and "peak memory" in result.output
    imputed = read_table(out)
    obs = ~np.isnan(table.counts)
    assert np.array_equal(imputed.counts[obs], table.counts[obs])
    assert not np.isnan(imputed.counts).any()
    mask = pd.read_csv(tmp_path / "imputed.imputed_mask.tsv", sep="\t", index_col=0)
    assert mask.shape == (table.n_taxa, table.n_samples)  # taxa as rows, like the table
    assert np.array_equal(mask.T.to_numpy() == 1, np.isnan(table.counts))
    for name in ("spread", "dropout_prob"):
        assert (tmp_path / f"imputed.{name}.tsv").is_file()


def test_same_seed_same_output_from_the_cli(files, tmp_path):
    folder, _ = files
    for name in ("a", "b"):
        run("impute", folder / "t.biom", "--model", folder / "model", "-o", tmp_path / f"{name}.biom", *FAST)
    assert np.array_equal(read_table(tmp_path / "a.biom").counts, read_table(tmp_path / "b.biom").counts)


def test_estimate_options_from_the_cli(files, tmp_path):
    """--draws 0 gives the deterministic (VAE) estimate without a spread; --estimate mean and draws differ."""
    folder, table = files
    common = ("--model", folder / "model", "--zeros", "keep", "--quiet")
    run("impute", folder / "t.tsv", "-o", tmp_path / "mean.tsv", "--draws", "0", *common)
    run("impute", folder / "t.tsv", "-o", tmp_path / "avg.tsv", "--estimate", "draws", "--draws", "2",
        "--sampler", "ddim:3", *common)
    run("impute", folder / "t.tsv", "-o", tmp_path / "dat.tsv", "--estimate", "mean", "--draws", "0", *common)
    mean, avg = read_table(tmp_path / "mean.tsv").counts, read_table(tmp_path / "avg.tsv").counts
    dat = read_table(tmp_path / "dat.tsv").counts
    missing = np.isnan(table.counts)
    assert np.isfinite(mean[missing]).all() and not np.allclose(mean[missing], avg[missing])
    assert np.isfinite(dat[missing]).all() and not np.allclose(mean[missing], dat[missing])
    spread = pd.read_csv(tmp_path / "mean.spread.tsv", sep="\t", index_col=0)
    assert spread.isna().all().all()
    result = run("impute", folder / "t.tsv", "-o", tmp_path / "x.tsv", "--draws", "0", "--estimate", "draws",
                 *common, ok=False)
    assert result.exit_code != 0 and "draws" in result.output and not (tmp_path / "x.tsv").exists()


def test_transductive_impute_to_h5ad_with_layers_and_saved_model(files, tmp_path):
    folder, table = files
    out = tmp_path / "imputed.h5ad"
    run("impute", folder / "t.biom", "-o", out, "--save-model", tmp_path / "m", "--no-metadata", *TINY, *FAST)
    adata = anndata.read_h5ad(out)
    assert {"imputed_mask", "spread", "dropout_prob", "log_values"} <= set(adata.layers)
    assert (tmp_path / "m" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "m" / "config.json").read_text())["kind"] == "depmicrodiff"


def test_bad_input_is_one_line_and_writes_nothing(files, tmp_path):
    folder, table = files
    out = tmp_path / "x.tsv"
    # metadata without some of the table's samples
    meta = pd.read_csv(folder / "meta.tsv", sep="\t").iloc[3:]
    meta.to_csv(tmp_path / "short_meta.tsv", sep="\t", index=False)
    result = run("impute", folder / "t.tsv", "--meta", tmp_path / "short_meta.tsv", "--model", folder / "model",
                 "-o", out, *FAST, ok=False)
    assert result.exit_code == 2 and "depmicro: error:" in result.output and "metadata" in result.output
    # a model from another table
    other = simulate(30, 12, seed=8).table
    write_table(other, tmp_path / "other.tsv")
    result = run("impute", tmp_path / "other.tsv", "--model", folder / "model", "-o", out, *FAST, ok=False)
    assert result.exit_code == 2 and "--align" in result.output
    # a GPU asked for where none exists
    import torch

    if not torch.cuda.is_available():
        result = run("impute", folder / "t.tsv", "--model", folder / "model", "-o", out, "--device", "cuda",
                     *FAST, ok=False)
        assert result.exit_code == 2 and "no CUDA GPU" in result.output
    # options that only apply to training, and a malformed sampler
    result = run("impute", folder / "t.tsv", "--model", folder / "model", "-o", out, "--set", "d_model=8",
                 ok=False)
    assert result.exit_code == 2 and "only apply when training" in result.output
    result = run("impute", folder / "t.tsv", "--model", folder / "model", "-o", out, "--sampler", "ddim:x",
                 ok=False)
    assert result.exit_code == 2 and "sampler" in result.output
    assert not any(tmp_path.glob("x*")), "nothing may be written on an error"


def test_existing_output_refused_before_any_work(files, tmp_path):
    folder, _ = files
    out = tmp_path / "done.tsv"
    out.write_text("keep me")
    result = run("impute", folder / "t.tsv", "--model", folder / "model", "-o", out, *FAST, ok=False)
    assert result.exit_code == 2 and "--force" in result.output
    assert out.read_text() == "keep me"
    assert not (tmp_path / "done.imputed_mask.tsv").exists()


def test_pretrain_then_train_with_it(files, tmp_path):
    folder, _ = files
    run("pretrain", folder / "t.tsv", folder / "t.biom", "-o", tmp_path / "vae", "--steps", "10", "--quiet",
        *TINY[:18])
    assert json.loads((tmp_path / "vae" / "config.json").read_text())["kind"] == "vae"
    run("train", folder / "t.tsv", "--pretrained", tmp_path / "vae", "-o", tmp_path / "m", "--no-metadata",
        "--vae-steps", "5", "--dat-steps", "5", "--dependency", "none", "--quiet")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["training"]["fit"]["pretrained_taxa_shared"] == 10
    result = run("impute", folder / "t.tsv", "--model", tmp_path / "vae", "-o", tmp_path / "y.tsv", ok=False)
    assert result.exit_code == 2 and "pretrained VAE only" in result.output


def test_library_size_from_a_number_or_a_metadata_column(files, tmp_path):
    """--library-size takes one number or a --meta column; a wrong column or a total below the observed
    one is refused with the fix, and nothing is written."""
    folder, table = files
    totals = np.nansum(table.counts, axis=1) * 2  # every sample: half of its reads observed
    meta = pd.read_csv(folder / "meta.tsv", sep="\t", index_col=0)
    meta["total_reads"] = totals
    meta.to_csv(tmp_path / "meta.tsv", sep="\t")
    common = ("--model", folder / "model", "--zeros", "keep", "--draws", "0", "--quiet")
    run("impute", folder / "t.tsv", "--meta", tmp_path / "meta.tsv", "--library-size", "total_reads",
        "-o", tmp_path / "col.tsv", *common)
    run("impute", folder / "t.tsv", "-o", tmp_path / "plain.tsv", *common)
    missing = np.isnan(table.counts)
    col, plain = read_table(tmp_path / "col.tsv").counts, read_table(tmp_path / "plain.tsv").counts
    assert np.isfinite(col[missing]).all() and not np.allclose(col[missing], plain[missing])
    bad = run("impute", folder / "t.tsv", "--library-size", "no_such_column", "-o", tmp_path / "bad.tsv", *common,
              ok=False)
    assert bad.exit_code != 0 and "neither a number nor" in bad.output and not (tmp_path / "bad.tsv").exists()
    low = run("impute", folder / "t.tsv", "--library-size", "1e-6", "-o", tmp_path / "low.tsv", *common, ok=False)
    assert low.exit_code != 0 and "below the observed total" in low.output and not (tmp_path / "low.tsv").exists()


def test_impute_command_defaults_are_the_engines():
    """The CLI spells its defaults out (so --help needs no torch import); they must stay the engine's,
    which the spread is calibrated with."""
    import inspect

    from pydepmicro.cli_model import impute as impute_command
    from pydepmicro.model import DepMicroDiff

    engine = inspect.signature(DepMicroDiff.impute).parameters
    cli_defaults = {p.name: p.default for p in impute_command.params}
    for name in ("draws", "sampler", "estimate", "zeros"):
        assert cli_defaults[name] == engine[name].default, name
