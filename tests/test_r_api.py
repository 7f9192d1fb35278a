"""pydepmicro.r_api, the Python side of the R package: plain arrays in and out, status dicts instead of
exceptions, and the same numbers as the `depmicro impute` command line for the same data and seed
(the R package's own golden test then compares R with the command line)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

from pydepmicro import r_api  # noqa: E402
from pydepmicro.cli import cli  # noqa: E402
from pydepmicro.datasets import simulate  # noqa: E402
from pydepmicro.io import read_table, write_table  # noqa: E402

# as R sends them: whole numbers arrive as floats
MODEL = dict(d_z=2.0, vae_d_model=16.0, vae_layers=1.0, vae_heads=2.0, d_model=16.0, n_layers=1.0, n_heads=2.0,
             n_blocks=3.0, dependency="ftest", num_train_timesteps=100.0, metadata=False, device="cpu")
FIT = dict(vae_steps=20.0, dat_steps=20.0)
IMPUTE = dict(draws=2.0, sampler="ddim:4")
CLI = ["--set", "d_z=2", "--set", "vae_d_model=16", "--set", "vae_layers=1", "--set", "vae_heads=2",
       "--set", "d_model=16", "--set", "n_layers=1", "--set", "n_heads=2", "--set", "n_blocks=3",
       "--set", "num_train_timesteps=100", "--dependency", "ftest", "--no-metadata", "--device", "cpu",
       "--vae-steps", "20", "--dat-steps", "20", "--draws", "2", "--sampler", "ddim:4", "--quiet"]


@pytest.fixture(scope="module")
def table():
    table = simulate(30, 10, seed=5, zero_fraction=0.5, metadata=True).table
    counts = table.counts.copy()
    counts[np.arange(3), np.argmax(counts[:3] > 0, axis=1)] = np.nan
    return table.with_counts(counts)


def _args(table):
    return dict(counts=table.counts, sample_ids=list(table.sample_ids), taxa_ids=list(table.taxa_ids))


def _ok(result):
    assert result["status"] == "ok", result.get("message")
    return result


def test_impute_equals_the_cli_for_the_same_data_and_seed(table, tmp_path):
    plain = table.with_metadata(table.sample_meta.iloc[:, :0])
    write_table(plain, tmp_path / "t.tsv")
    out = tmp_path / "imputed.tsv"
    run = CliRunner().invoke(cli, ["impute", str(tmp_path / "t.tsv"), "-o", str(out), "--seed", "7", *CLI])
    assert run.exit_code == 0, run.output + repr(run.exception)
    expected = read_table(out)

    got = _ok(r_api.impute(**_args(table), seed=7.0, options={**MODEL, **FIT, **IMPUTE}))
    assert got["sample_ids"] == list(expected.sample_ids) and got["taxa_ids"] == list(expected.taxa_ids)
    assert np.array_equal(got["counts"], expected.counts)  # written with %.17g: exact
    mask = pd.read_csv(tmp_path / "imputed.imputed_mask.tsv", sep="\t", index_col=0).to_numpy().T == 1
    assert np.array_equal(got["imputed"], mask)
    assert got["counts"].shape == (table.n_samples, table.n_taxa)  # samples x taxa, as sent
    assert got["options"]["seed"] == 7 and got["seconds"] > 0
    assert "imputed" in got["summary"]


def test_observed_entries_kept_and_layers_shaped(table):
    got = _ok(r_api.impute(**_args(table), seed=1, options={**MODEL, **FIT, **IMPUTE, "zeros": "keep"}))
    observed = ~np.isnan(table.counts)
    assert np.array_equal(got["counts"][observed], table.counts[observed])
    assert got["imputed"].dtype == bool and np.array_equal(got["imputed"], ~observed)
    for name in ("spread", "dropout_prob", "presence_prob"):
        assert got[name].shape == table.counts.shape


def test_metadata_and_taxonomy_with_na_as_r_sends_them(table):
    ids = list(table.sample_ids)
    n = len(ids)
    meta = {"group": ["a", "b"] * (n // 2), "age": np.r_[np.nan, np.arange(1.0, n)]}
    meta_na = {"group": [True] + [False] * (n - 1), "age": [True] + [False] * (n - 1)}
    frame = r_api._meta(meta, meta_na, ids[::-1])
    assert frame.loc[ids[-1], "group"] is None and frame["group"].iloc[1] == "b"
    assert np.isnan(frame.loc[ids[-1], "age"])
    taxa = list(table.taxa_ids)
    tax = {"Genus": ["g"] * len(taxa)}
    built = r_api._table(table.counts, ids, taxa, tax, {"Genus": [False] * (len(taxa) - 1) + [True]})
    assert built.taxonomy["Genus"].isna().sum() == 1
    # metadata joined by id (not by position), conditioning off: runs
    _ok(r_api.impute(**_args(table), meta=meta, meta_na=meta_na, meta_ids=ids[::-1], seed=1,
                     options={**MODEL, **FIT, **IMPUTE}))


def test_single_sample_and_scalar_ids_from_r():
    assert r_api._ids("S1", "sample") == ["S1"]
    assert r_api._options({"d_model": 16.0, "vae_lr": 0.001, "covariates": ["a", "b"], "n.blocks": 2.0}) == {
        "d_model": 16, "vae_lr": 0.001, "covariates": ["a", "b"], "n_blocks": 2}


def test_errors_come_back_as_status_with_the_engine_class(table):
    bad = r_api.impute(**_args(table), options={"bogus": 1})
    assert bad["status"] == "error" and bad["error_class"] == "InvalidOptionError"
    assert "bogus" in bad["message"] and "\n" not in bad["message"]
    counts = table.counts.copy()
    counts[0, 0] = -1
    neg = r_api.impute(counts, list(table.sample_ids), list(table.taxa_ids), options=MODEL)
    assert neg["error_class"] == "InvalidValueError"
    ids = r_api.impute(table.counts, list(table.sample_ids)[:-1], list(table.taxa_ids))
    assert ids["error_class"] == "IdMismatchError"
    meta = r_api.impute(**_args(table), meta={"g": ["x"]}, meta_na={"g": [False]}, meta_ids=["nobody"])
    assert meta["error_class"] == "IdMismatchError"
    seed = r_api.impute(**_args(table), seed=1.5)
    assert seed["error_class"] == "InvalidOptionError"


def test_unexpected_failures_are_internal_errors_with_traceback():
    out = r_api.impute(np.zeros((2, 2)), ["a", "b"], ["x", "y"], model=object())
    assert out["status"] == "error"
    out = r_api.model_info(None)
    assert out["error_class"] == "InternalError" and "Traceback" in out["traceback"]


def test_warnings_are_returned(table):
    ids = list(table.sample_ids)
    meta = {"g": ["x"] * (len(ids) + 1)}
    out = _ok(r_api.impute(**_args(table), meta=meta, meta_na={"g": [False] * (len(ids) + 1)},
                           meta_ids=ids + ["extra"], seed=1, options={**MODEL, **FIT, **IMPUTE}))
    assert any("extra" in w for w in out["warnings"])


def test_train_save_load_impute(table, tmp_path):
    trained = _ok(r_api.train(**_args(table), seed=2, options={**MODEL, **FIT}))
    assert trained["fitted"] and trained["taxa"] == list(table.taxa_ids)
    assert trained["hparams"]["d_model"] == 16
    saved = _ok(r_api.save_model(trained["model"], str(tmp_path / "m")))
    assert any(f.endswith("config.json") for f in saved["files"])
    again = r_api.save_model(trained["model"], str(tmp_path / "m"))
    assert again["error_class"] == "OutputExistsError"
    loaded = _ok(r_api.load_model(str(tmp_path / "m"), device="cpu"))
    a = _ok(r_api.impute(**_args(table), model=trained["model"], seed=3, options=IMPUTE))
    b = _ok(r_api.impute(**_args(table), model=loaded["model"], seed=3, options=IMPUTE))
    c = _ok(r_api.impute(**_args(table), model=str(tmp_path / "m"), seed=3, options={**IMPUTE, "device": "cpu"}))
    assert np.array_equal(a["counts"], b["counts"]) and np.array_equal(a["counts"], c["counts"])
    refused = r_api.impute(**_args(table), model=trained["model"], options={"d_model": 8})
    assert refused["error_class"] == "InvalidOptionError"



@pytest.fixture(scope="module")
def generator(table):
    return _ok(r_api.train(**_args(table), seed=2, options={**MODEL, **FIT}))["model"]


def test_generate_returns_counts_and_ids(generator, table):
    out = _ok(r_api.generate(generator, n=5.0, seed=3.0, options={"sampler": "ddim:4", "batch_size": 2.0}))
    assert out["counts"].shape == (5, table.n_taxa)  # samples x taxa, as R expects before its transpose
    assert out["sample_ids"] == [f"synthetic_{i}" for i in range(1, 6)] and out["taxa_ids"] == list(table.taxa_ids)
    counts = out["counts"]
    assert (counts >= 0).all() and np.array_equal(counts, np.rint(counts)) and (counts.sum(1) > 0).all()
    assert out["conditional"] is False and out["seconds"] > 0
    again = _ok(r_api.generate(generator, n=5.0, seed=3.0, options={"sampler": "ddim:4", "batch_size": 2.0}))
    assert np.array_equal(again["counts"], counts)
    named = _ok(r_api.generate(generator, meta={}, meta_na={}, meta_ids=["a", "b"], library_size=100.0, seed=1,
                               options={"sampler": "ddim:4"}))
    assert named["sample_ids"] == ["a", "b"] and named["counts"].shape == (2, table.n_taxa)
    half = _ok(r_api.generate(generator, n=40.0, seed=3.0, options={"sampler": "ddim:4", "empty_fraction": 0.5}))
    assert 5 < (half["counts"].sum(1) == 0).sum() < 35


def test_generate_unknown_option_is_an_error_naming_it(generator):
    bad = r_api.generate(generator, n=2, options={"draws": 3.0, "sampler": "ddim:4"})
    assert bad["status"] == "error" and bad["error_class"] == "InvalidOptionError"
    assert "draws" in bad["message"] and "\n" not in bad["message"]

def test_dependencies_as_plain_columns(table):
    out = _ok(r_api.dependencies(**_args(table), seed=1, options={"method": "ftest", "min_nonzero": 5.0}))
    assert set(out["edges"]) == {"source", "target", "test", "statistic", "p", "q", "direction", "sign", "n",
                                 "log10_p"}
    assert all(isinstance(v, (list, np.ndarray)) for v in out["edges"].values())
    assert "ftest" in out["test_used"] and out["n_taxa"] == table.n_taxa
    every = _ok(r_api.dependencies(**_args(table), options={"method": "ftest", "min_nonzero": 5}, all_pairs=True))
    assert len(every["edges"]["p"]) >= len(out["edges"]["p"])
    bad = r_api.dependencies(**_args(table), options={"bogus": 1})
    assert bad["error_class"] == "InvalidOptionError"


def test_info():
    info = _ok(r_api.info())
    assert info["api_version"] == r_api.API_VERSION and info["pydepmicro_version"]


BLAS = "/usr/lib/x86_64-linux-gnu/libblas.so.3"
MATMUL = """
import hashlib, sys
{first}
import torch
g = torch.Generator().manual_seed(0)
a, b = torch.randn(300, 257, generator=g), torch.randn(257, 311, generator=g)
print(hashlib.md5((a @ b).numpy().tobytes()).hexdigest(), {loaded})
"""


@pytest.mark.skipif(not os.path.exists(BLAS), reason="no system BLAS to stand in for R's")
def test_torch_keeps_its_own_blas_inside_a_host_that_exports_one():
    """R puts its BLAS in the global symbol scope (simulated with LD_PRELOAD); r_api loads torch with
    RTLD_DEEPBIND so its matrix products are the same as in a plain Python process."""
    import subprocess

    def run(code, preload):
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        env.pop("LD_PRELOAD", None)
        if preload:
            env["LD_PRELOAD"] = BLAS
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        return out.stdout.split()

    plain = run(MATMUL.format(first="", loaded="''"), preload=False)
    hosted = run(MATMUL.format(first="from pydepmicro import r_api", loaded="r_api.TORCH_LOADED"), preload=True)
    assert hosted[1] == "deepbind"
    assert hosted[0] == plain[0]
