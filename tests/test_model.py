"""DepMicroDiff end to end on tiny models: observed entries kept, seeds, save/load, taxa checks, policies.

Models here are deliberately tiny (d_model 16, a few dozen steps): the tests check behaviour, not
accuracy (that is inst/scripts/check_engine_coad.py and the benchmark).
"""

from __future__ import annotations

import inspect
import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

from pydepmicro.datasets import simulate  # noqa: E402
from pydepmicro.errors import (  # noqa: E402
    IdMismatchError,
    InputFormatError,
    InvalidOptionError,
    InvalidValueError,
    ModelMismatchError,
    OutputExistsError,
)
from pydepmicro.model import DepMicroDiff, impute, parse_sampler  # noqa: E402
from pydepmicro.model._model import CALIBRATION_MAX_ROWS, CALIBRATION_ROUNDS  # noqa: E402
from pydepmicro.table import MicrobiomeTable  # noqa: E402

TINY = dict(d_z=2, vae_d_model=16, vae_layers=1, vae_heads=2, d_model=16, n_layers=1, n_heads=2, n_blocks=3,
            dependency="ftest", num_train_timesteps=100)
STEPS = dict(vae_steps=25, dat_steps=25, progress=False)


def _table(seed=3, n=48, q=12, metadata=False) -> MicrobiomeTable:
    table = simulate(n, q, seed=seed, zero_fraction=0.5, metadata=metadata).table
    counts = table.counts.copy()
    rng = np.random.default_rng(seed)
    nonzero = np.argwhere(counts > 0)
    pick = nonzero[rng.choice(len(nonzero), size=20, replace=False)]
    counts[pick[:, 0], pick[:, 1]] = np.nan  # some missing entries to fill
    return table.with_counts(counts)


@pytest.fixture(scope="module")
def table() -> MicrobiomeTable:
    return _table()


@pytest.fixture(scope="module")
def model(table) -> DepMicroDiff:
    return DepMicroDiff(metadata=False, device="cpu", **TINY).fit(table, seed=0, **STEPS)


def _observed_nonzero(table):
    return ~np.isnan(table.counts) & (table.counts > 0)


@pytest.mark.parametrize("zeros", ["keep", "auto", "impute"])
def test_observed_entries_unchanged_and_missing_filled(model, table, zeros):
    result = model.impute(table, draws=2, sampler="ddim:5", zeros=zeros, progress=False)
    obs = _observed_nonzero(table)
    assert np.array_equal(result.table.counts[obs], table.counts[obs])  # bit for bit
    missing = np.isnan(table.counts)
    assert not np.isnan(result.table.counts).any()
    assert result.imputed[missing].all()
    assert (result.table.counts[missing] >= 0).all()
    zero = table.counts == 0
    if zeros == "keep":
        assert np.array_equal(result.imputed, missing)
        assert (result.table.counts[zero] == 0).all()
    elif zeros == "impute":
        assert result.imputed[zero].all()
    else:  # auto: replaced exactly where the dropout probability is above the calibrated threshold
        threshold = result.options["dropout_threshold"]
        assert threshold == model.dropout_threshold()
        assert np.array_equal(result.imputed[zero], result.dropout_prob[zero] > threshold)
    assert np.isnan(result.dropout_prob[~zero]).all()
    assert ((result.dropout_prob[zero] >= 0) & (result.dropout_prob[zero] <= 1)).all()
    assert (result.spread[~np.isnan(result.spread)] >= 0).all()
    assert result.options["n_missing_filled"] == int(missing.sum())


def test_same_seed_same_output_other_seed_differs(model, table):
    a = model.impute(table, draws=2, sampler="ddim:5", estimate="draws", seed=1, progress=False)
    b = model.impute(table, draws=2, sampler="ddim:5", estimate="draws", seed=1, progress=False)
    c = model.impute(table, draws=2, sampler="ddim:5", estimate="draws", seed=2, progress=False)
    assert np.array_equal(a.values, b.values, equal_nan=True)
    assert not np.array_equal(a.values, c.values, equal_nan=True)


def test_pass_estimates_are_deterministic_and_draws_only_set_the_spread(model, table):
    a = model.impute(table, draws=2, sampler="ddim:5", seed=1, progress=False)
    c = model.impute(table, draws=2, sampler="ddim:5", seed=2, progress=False)
    none = model.impute(table, draws=0, seed=3, progress=False)
    assert a.options["estimate"] == "auto"
    assert np.array_equal(a.values, c.values, equal_nan=True)
    assert np.array_equal(a.values, none.values, equal_nan=True)
    assert not np.array_equal(a.spread, c.spread, equal_nan=True)
    assert np.isnan(none.spread).all()
    missing = np.isnan(table.counts)
    # the sampler of the draws changes the spread, not the value
    other_sampler = model.impute(table, draws=2, sampler="ddim:3", seed=1, progress=False)
    assert np.array_equal(a.values, other_sampler.values, equal_nan=True)
    assert not np.array_equal(a.spread, other_sampler.spread, equal_nan=True)
    # auto: missing entries from the VAE's pass ...
    vae_alone = model.impute(table, draws=0, sampler="vae", estimate="mean", progress=False)
    vae = model.impute(table, draws=0, estimate="vae", progress=False)
    # (equal up to float rounding: the batches differ with the number of draws)
    assert np.allclose(a.values[missing], vae_alone.values[missing], rtol=0, atol=1e-6)
    assert np.allclose(a.values[missing], vae.values[missing], rtol=0, atol=1e-6)
    # ... which differs from the denoiser's pass, another deterministic estimate
    denoised = model.impute(table, draws=0, estimate="mean", seed=1, progress=False)
    again = model.impute(table, draws=2, sampler="ddim:5", estimate="mean", seed=2, progress=False)
    assert np.array_equal(denoised.values, again.values, equal_nan=True)
    assert not np.allclose(a.values[missing], denoised.values[missing])
    # ... while the dropout decisions on zeros, and the values written into them, are the denoiser's
    # (closure off: same inputs)
    auto_open, mean_open, vae_open = (model.impute(table, draws=0, estimate=e, closure=False, progress=False)
                                      for e in ("auto", "mean", "vae"))
    zero = table.counts == 0
    assert np.array_equal(auto_open.dropout_prob[zero], mean_open.dropout_prob[zero])
    assert not np.allclose(auto_open.dropout_prob[zero], vae_open.dropout_prob[zero])
    assert np.array_equal(auto_open.values[missing], vae_open.values[missing])
    assert np.array_equal(auto_open.values[zero], mean_open.values[zero])
    assert auto_open.imputed[zero].any() and not np.allclose(auto_open.values[zero], vae_open.values[zero])
    # zeros="impute" writes the denoiser's estimate into every zero, the VAE's into missing entries
    auto_all, mean_all, vae_all = (model.impute(table, draws=0, estimate=e, zeros="impute", closure=False,
                                                progress=False) for e in ("auto", "mean", "vae"))
    assert np.array_equal(auto_all.values[zero], mean_all.values[zero])
    assert np.array_equal(auto_all.values[missing], vae_all.values[missing])
    averaged = model.impute(table, draws=2, sampler="ddim:5", estimate="draws", seed=1, progress=False)
    assert not np.allclose(a.values[missing], averaged.values[missing])
    assert not np.allclose(denoised.values[missing], averaged.values[missing])
    with pytest.raises(InvalidOptionError, match="draws"):
        model.impute(table, draws=0, estimate="draws")
    with pytest.raises(InvalidOptionError, match="estimate"):
        model.impute(table, estimate="median")


def test_fit_calibrates_the_dropout_threshold_on_simulated_dropouts(model, table, tmp_path):
    """fit stores a threshold per deterministic pass; impute uses the one of the pass that judges its zeros
    (the denoiser's for "auto") unless given one."""
    calibrated = model.training["fit"]["dropout_threshold"]
    assert 0 < calibrated["vae"] < 1 and 0 < calibrated["mean"] < 1
    assert calibrated["rounds"] >= 1
    # on every sample with reads, trained-on ones included, not the validation samples alone
    with_reads = int((np.nansum(table.counts, axis=1) > 0).sum())
    assert calibrated["samples"] == "all"
    assert calibrated["rows"] == min(with_reads, CALIBRATION_MAX_ROWS) > model.training["fit"]["n_val"] > 0
    assert model.dropout_threshold() == model.dropout_threshold("mean") == calibrated["mean"]
    assert model.dropout_threshold("vae") == calibrated["vae"]
    assert model.dropout_threshold("draws") == 0.5  # the draws' averaged probability is not calibrated
    model.save(tmp_path / "m")
    assert DepMicroDiff.load(tmp_path / "m").dropout_threshold() == calibrated["mean"]
    zero = table.counts == 0
    given = model.impute(table, draws=0, dropout_threshold=0.9, progress=False)
    default = model.impute(table, draws=0, progress=False)
    assert given.options["dropout_threshold"] == 0.9
    assert np.array_equal(given.imputed[zero], given.dropout_prob[zero] > 0.9)
    assert np.array_equal(default.imputed[zero], default.dropout_prob[zero] > calibrated["mean"])
    assert model.impute(table, draws=0, estimate="mean", progress=False).options["dropout_threshold"] == \
        calibrated["mean"]
    with pytest.raises(InvalidOptionError, match="dropout_threshold"):
        model.impute(table, dropout_threshold=1.0)


def test_calibrated_threshold_maximises_youden_j_on_its_own_dropouts(model, table, monkeypatch):
    """The threshold separates the simulated dropouts from the true zeros at least as well as any other
    cut of the same scores (TPR - FPR), here with a presence probability that is a known function."""
    calls = []
    real = DepMicroDiff.impute

    def fake_impute(self, fed, **kw):
        result = real(self, fed, **kw)
        # a score that ranks every dropped entry (zero in fed, nonzero in the source) above every true zero
        source = table.subset(samples=fed.sample_ids).counts
        prob = np.where(fed.counts == 0, np.where(np.nan_to_num(source) > 0, 0.8, 0.2), np.nan)
        result.presence_prob = prob
        calls.append(kw["estimate"])
        return result

    monkeypatch.setattr(DepMicroDiff, "impute", fake_impute)
    rows = np.flatnonzero(np.nansum(table.counts, axis=1) > 0)
    out = model._calibrate_dropout(table, rows, seed=0)
    assert 0.2 < out["vae"] < 0.8 and 0.2 < out["mean"] < 0.8  # between the two groups: J = 1
    assert sorted(set(calls)) == ["mean", "vae"]


def test_calibration_scores_the_samples_own_zeros_in_the_samples_as_they_are(model, table, monkeypatch):
    """A sample's true zeros look more like dropouts once the calibration has taken more of the sample
    away (here 0.25, near the dropouts' 0.3) than in the sample as impute sees it (0.1). The threshold
    must separate the dropouts from the latter: between 0.1 and 0.25 (scored in the reduced samples,
    it would lie between 0.25 and 0.3)."""
    real = DepMicroDiff.impute

    def fake_impute(self, fed, **kw):
        result = real(self, fed, **kw)
        source = np.nan_to_num(table.subset(samples=fed.sample_ids).counts)
        changed = (np.nan_to_num(fed.counts) != source).any(axis=1, keepdims=True)
        true_zero_prob = np.where(changed, 0.25, 0.1)
        result.presence_prob = np.where(fed.counts == 0, np.where(source > 0, 0.3, true_zero_prob), np.nan)
        return result

    monkeypatch.setattr(DepMicroDiff, "impute", fake_impute)
    rows = np.flatnonzero(np.nansum(table.counts, axis=1) > 0)
    out = model._calibrate_dropout(table, rows, seed=0)
    assert 0.1 < out["vae"] < 0.25 and 0.1 < out["mean"] < 0.25
    assert out["rounds"] == CALIBRATION_ROUNDS


def test_calibration_drops_one_nonzero_entry_per_sample_and_round(model, table, monkeypatch):
    """Each round scores its dropouts in samples within one entry of what impute sees: a sample loses
    exactly one of its nonzero entries, and a sample with only one keeps it (it would be left without
    reads, which impute leaves alone)."""
    counts = table.counts.copy()
    counts[0] = 0.0
    counts[0, 3] = 5.0  # one nonzero entry: never dropped
    one = table.with_counts(counts)
    rows = np.arange(12)
    lost = []
    real = DepMicroDiff.impute

    def recording_impute(self, fed, **kw):
        source = np.nan_to_num(one.subset(samples=fed.sample_ids).counts)
        lost.append(((source > 0) & (np.nan_to_num(fed.counts) == 0)).sum(axis=1))
        return real(self, fed, **kw)

    monkeypatch.setattr(DepMicroDiff, "impute", recording_impute)
    out = model._calibrate_dropout(one, rows, seed=3)
    rich = ((np.nan_to_num(one.counts[rows]) > 0).sum(axis=1) >= 2).astype(int)
    assert rich[0] == 0 and rich.sum() > 6
    assert len(lost) == 2 + 2 * CALIBRATION_ROUNDS  # the samples as they are, then every round, both passes
    assert all((n == 0).all() for n in lost[:2])
    assert all(np.array_equal(n, rich) for n in lost[2:])
    assert out["dropouts"] == CALIBRATION_ROUNDS * int(rich.sum()) and out["rows"] == 12


def test_fit_is_repeatable_on_cpu(table, model):
    again = DepMicroDiff(metadata=False, device="cpu", **TINY).fit(table, seed=0, **STEPS)
    for (name, p), (_, q) in zip(model.module.state_dict().items(), again.module.state_dict().items()):
        assert torch.equal(p, q), name


def test_save_load_impute_same_output_without_pickle(model, table, tmp_path, monkeypatch):
    files = {p.name for p in model.save(tmp_path / "m")}
    assert {"config.json", "model.safetensors", "taxa.tsv", "training_curves.csv", "training_curves.png"} <= files
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["kind"] == "depmicrodiff" and config["n_taxa"] == table.n_taxa
    assert config["hparams"]["d_model"] == 16 and len(config["ar_order"]) == table.n_taxa

    def refuse(*args, **kwargs):
        raise AssertionError("loading must not unpickle")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    loaded = DepMicroDiff.load(tmp_path / "m", device="cpu")
    a = model.impute(table, draws=2, sampler="ddim:5", seed=4, progress=False)
    b = loaded.impute(table, draws=2, sampler="ddim:5", seed=4, progress=False)
    assert np.array_equal(a.table.counts, b.table.counts)
    assert np.array_equal(a.spread, b.spread, equal_nan=True)
    assert len(loaded.history) == len(model.history)


def test_save_refuses_existing_folder_and_load_refuses_damage(model, tmp_path):
    model.save(tmp_path / "m")
    with pytest.raises(OutputExistsError):
        model.save(tmp_path / "m")
    model.save(tmp_path / "m", force=True)
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(InputFormatError, match="not valid JSON"):
        DepMicroDiff.load(tmp_path / "m")
    with pytest.raises(InputFormatError, match="missing"):
        DepMicroDiff.load(tmp_path)


def test_other_taxa_refused_unless_aligned(model, table):
    other = _table(seed=9, q=14)
    with pytest.raises(ModelMismatchError, match="--align"):
        model.impute(other, progress=False)
    # a table with two model taxa dropped and one unknown taxon added
    sub = table.subset(taxa=table.taxa_ids[2:])
    extra = np.full((table.n_samples, 1), 5.0)
    counts = np.hstack([sub.counts, extra])
    wider = MicrobiomeTable(counts, sub.sample_ids, list(sub.taxa_ids) + ["unknown_taxon"])
    with pytest.raises(ModelMismatchError, match="2 of the model's 12 taxa are not in the table"):
        model.impute(wider, progress=False)
    result = model.impute(wider, align=True, draws=2, sampler="ddim:5", progress=False)
    assert np.array_equal(result.table.counts[:, -1], extra[:, 0])  # unknown taxon passed through
    assert not result.imputed[:, -1].any() and np.isnan(result.spread[:, -1]).all()
    assert result.options["n_model_taxa_absent"] == 2 and result.options["n_taxa_not_in_model"] == 1


def test_reordered_taxa_give_the_same_imputation(model, table):
    order = table.taxa_ids[::-1]
    a = model.impute(table, draws=2, sampler="ddim:5", progress=False)
    b = model.impute(table.subset(taxa=order), draws=2, sampler="ddim:5", progress=False)
    assert np.allclose(a.frame("values")[order].to_numpy(), b.values)


def test_all_zero_sample_left_alone(model, table):
    counts = table.counts.copy()
    counts[0] = 0.0
    with pytest.warns(UserWarning, match="no observed counts"):
        result = model.impute(table.with_counts(counts), draws=2, sampler="ddim:5", progress=False)
    assert (result.table.counts[0] == 0).all() and not result.imputed[0].any()


@pytest.mark.parametrize("sampler", ["ddim:3", "ddpm:4", "fractional:20", "adaptive"])
def test_samplers_run(model, table, sampler):
    result = model.impute(table, draws=1, sampler=sampler, progress=False)
    assert np.isfinite(result.values[np.isnan(table.counts)]).all()


def test_bad_options_are_clear_errors(model, table):
    for bad in ("dpm", "ddim:x", "ddim:0", "full:3"):
        with pytest.raises(InvalidOptionError):
            parse_sampler(bad)
    with pytest.raises(InvalidOptionError, match="zeros"):
        model.impute(table, zeros="sometimes")
    with pytest.raises(InvalidOptionError, match="more than"):
        model.impute(table, sampler="ddim:5000")
    with pytest.raises(InvalidOptionError, match="unknown option"):
        DepMicroDiff(d_modle=3)
    with pytest.raises(InvalidValueError, match="not fitted"):
        DepMicroDiff().impute(table)
    if not torch.cuda.is_available():
        with pytest.raises(InvalidOptionError, match="no CUDA GPU"):
            DepMicroDiff(device="cuda")


def test_none_spelled_as_none_is_the_off_option():
    # `--set dependency=none` on a command line parses to None; it must mean dependency="none", not fail
    from pydepmicro.cli_model import _hparams
    model = DepMicroDiff(**_hparams(["dependency=none", "taxonomy_embedding=none"]))
    assert model.hparams["dependency"] == "none" and model.hparams["taxonomy_embedding"] == "none"
    with pytest.raises(InvalidOptionError, match="ar_order"):
        DepMicroDiff(ar_order=None)  # no "none" among its choices: still an error


def test_pretrained_vae_transfers_by_taxon_id(table, tmp_path):
    a, b = _table(seed=5, n=40, q=12), _table(seed=6, n=40, q=12)
    pre = DepMicroDiff(metadata=False, device="cpu", **TINY).pretrain_vae([a, b], steps=20, progress=False)
    pre.save(tmp_path / "vae")
    assert json.loads((tmp_path / "vae" / "config.json").read_text())["kind"] == "vae"
    loaded = DepMicroDiff.load(tmp_path / "vae")
    assert not loaded.is_fitted and loaded.vae is not None
    loaded.fit(table, seed=0, **STEPS)
    assert loaded.training["fit"]["pretrained_taxa_shared"] == 12  # simulate() names taxa alike
    assert {r["phase"] for r in loaded.history} == {"pretrain", "vae", "denoiser"}


def test_metadata_conditioning_and_missing_columns(tiny_model_dir):
    table = _table(seed=7, metadata=True)
    model = DepMicroDiff(text_encoder=str(tiny_model_dir), device="cpu", **TINY).fit(table, seed=0, **STEPS)
    assert model.metadata_columns and model.module.dat.config["d_cond"] == 32
    result = model.impute(table, draws=1, sampler="ddim:3", progress=False)
    assert not np.isnan(result.table.counts).any()
    meta = table.sample_meta.drop(columns=[model.metadata_columns[0]])
    stripped = MicrobiomeTable(table.counts, table.sample_ids, table.taxa_ids, sample_meta=meta)
    with pytest.raises(IdMismatchError, match="lacks 1 column"):
        model.impute(stripped, progress=False)


def test_metadata_base_is_fitted_for_generation_models_and_saved(tiny_model_dir, tmp_path):
    """metadata_base=True: a generation model fits the ridge base (its cross-validated R^2 is recorded),
    the saved model reloads to the same draws, and imputation of observed samples does not use it."""
    table = _table(seed=7, metadata=True)
    model = DepMicroDiff(text_encoder=str(tiny_model_dir), device="cpu", **TINY)  # metadata_base: the default
    model.fit(table, seed=0, generate_fraction=0.5, **STEPS)
    fit = model.training["fit"]["metadata_base"]
    assert fit["n"] > 10 and np.isfinite(fit["penalty"]) and fit["r2"] >= fit["r2_cv"]
    assert model.module.metadata_weight.abs().sum() > 0
    model.save(tmp_path / "m")
    loaded = DepMicroDiff.load(tmp_path / "m", device="cpu")
    meta = table.sample_meta.iloc[:6]
    a = model.generate(meta=meta, seed=3, sampler="ddim:3", progress=False)
    assert np.array_equal(a.counts, loaded.generate(meta=meta, seed=3, sampler="ddim:3", progress=False).counts)
    # without the option the base stays empty
    plain = DepMicroDiff(text_encoder=str(tiny_model_dir), device="cpu", metadata_base=False, **TINY)
    plain.fit(table, seed=0, generate_fraction=0.5, **STEPS)
    assert plain.training["fit"]["metadata_base"] is None and plain.module.metadata_weight.abs().sum() == 0


def test_impute_function_trains_transductively(table):
    result = impute(table, metadata=False, device="cpu", seed=0, progress=False, draws=2, sampler="ddim:3",
                    zeros="keep", **TINY, vae_steps=10, dat_steps=10)
    assert result.model.is_fitted
    assert np.array_equal(result.imputed, np.isnan(table.counts))
    with pytest.raises(InvalidOptionError, match="only apply when training"):
        impute(table, model=result.model, vae_steps=3, progress=False)


def test_precision_auto_is_float32_on_cpu_and_bf16_autocast_runs(table, model, tmp_path):
    assert DepMicroDiff(device="cpu").precision == "fp32"
    with pytest.raises(InvalidOptionError, match="precision"):
        DepMicroDiff(device="cpu", precision="fp16")
    bf16 = DepMicroDiff(metadata=False, device="cpu", precision="bf16", **TINY).fit(table, seed=0, **STEPS)
    assert bf16.training["fit"]["vae"]["precision"] == "bf16" == bf16.training["fit"]["denoiser"]["precision"]
    result = bf16.impute(table, draws=2, sampler="ddim:3", progress=False)
    assert result.options["precision"] == "bf16" and np.isfinite(result.table.counts).all()
    assert np.isfinite(bf16.generate(4, sampler="ddim:3", progress=False).counts).all()
    # the same float32 model imputed under bf16 autocast: close to, not equal to, float32
    # (zeros kept: a zero whose presence probability sits at the threshold may flip between the two)
    exact = model.impute(table, draws=0, zeros="keep", progress=False).values
    model.save(tmp_path / "m")
    approx = DepMicroDiff.load(tmp_path / "m", device="cpu", precision="bf16").impute(
        table, draws=0, zeros="keep", progress=False).values
    assert not np.array_equal(exact, approx) and np.nanmax(np.abs(exact - approx)) < 0.25


def test_fit_calibrates_the_spread_and_impute_scales_the_draws_sd_by_it(model, table):
    calibrated = model.training["fit"]["spread_scale"]
    assert calibrated["factor"] > 0 and calibrated["entries"] > 0
    signature = inspect.signature(DepMicroDiff.impute).parameters
    defaults = (signature["draws"].default, signature["sampler"].default)
    assert (calibrated["draws"], calibrated["sampler"]) == defaults == (5, "ddim:10")  # impute's defaults
    scaled = model.impute(table, draws=3, sampler="ddim:4", seed=5, progress=False)
    assert scaled.options["spread_scale"] == model.spread_scale() == calibrated["factor"]
    raw_model = model.copy()
    del raw_model.training["fit"]["spread_scale"]  # as a model saved before the calibration
    raw = raw_model.impute(table, draws=3, sampler="ddim:4", seed=5, progress=False)
    assert raw.options["spread_scale"] == 1.0
    assert np.allclose(scaled.spread, raw.spread * calibrated["factor"], equal_nan=True)
    assert np.array_equal(scaled.values, raw.values, equal_nan=True)  # only the spread changes


def test_spread_calibration_recovers_the_factor_of_a_known_error(model, monkeypatch):
    """Estimates off by N(0, 1) with a stated sd of 1/3: the factor that makes +-1.645 sd hold 90% is 3."""
    from types import SimpleNamespace

    from pydepmicro.model import _data

    rng = np.random.default_rng(0)
    h = model.hparams
    table = _table(seed=4, n=400, q=12)

    def fake_impute(self, fed, **kw):
        truth = _data.prepare(table.subset(samples=fed.sample_ids), scale=h["scale"], log_base=h["log_base"]).values
        values = truth + rng.normal(size=truth.shape)
        return SimpleNamespace(values=values, spread=np.full(truth.shape, 1 / 3), options={"spread_scale": 1.0})

    monkeypatch.setattr(DepMicroDiff, "impute", fake_impute)
    out = model._calibrate_spread(table, np.flatnonzero(np.nansum(table.counts, axis=1) > 0), max_hide=0.3, seed=0)
    assert out["entries"] > 300
    assert 2.6 < out["factor"] < 3.4


def _nested_table(n=40, seed=0) -> MicrobiomeTable:
    """Six nested taxa: a family holding two genera, one genus holding two species, and a lone genus."""
    taxonomy = pd.DataFrame({
        "Kingdom": ["Bacteria"] * 6, "Family": ["Fam"] * 5 + ["Other"],
        "Genus": [np.nan, "Gen", "Gen", "Gen", "Two", "Lone"], "Species": [np.nan, np.nan, "Gen a", "Gen b", np.nan, np.nan],
        "rank": ["family", "genus", "species", "species", "genus", "genus"],
    }, index=[f"t{j}" for j in range(6)])
    rng = np.random.default_rng(seed)
    leaves = rng.poisson(30, size=(n, 4)) * (rng.random((n, 4)) < 0.7)  # species a, b, genus Two, Lone
    genus = leaves[:, 0] + leaves[:, 1] + rng.poisson(5, n)
    family = genus + leaves[:, 2] + rng.poisson(5, n)
    counts = np.column_stack([family, genus, leaves[:, 0], leaves[:, 1], leaves[:, 2], leaves[:, 3] + 1]).astype(float)
    return MicrobiomeTable(counts, [f"s{i}" for i in range(n)], list(taxonomy.index), taxonomy=taxonomy)


def test_lineage_inputs_from_the_taxonomy_are_saved_with_the_model(tmp_path):
    table = _nested_table()
    pre = DepMicroDiff(metadata=False, device="cpu", lineage_inputs=True, **TINY)
    pre.pretrain_vae([_nested_table(seed=1)], steps=5, progress=False)
    assert pre.vae.ancestors["t2"] == ("t1", "t0")
    model = pre.fit(table, seed=0, **STEPS)
    assert model.vae.enc_in.in_features == 6 and model.vae.ancestors["t4"] == ("t0",)
    model.save(tmp_path / "m")
    loaded = DepMicroDiff.load(tmp_path / "m", device="cpu")
    assert loaded.hparams["lineage_inputs"] and loaded.vae.ancestors == model.vae.ancestors
    a = model.impute(table, draws=2, sampler="ddim:5", seed=4, progress=False)
    b = loaded.impute(table, draws=2, sampler="ddim:5", seed=4, progress=False)
    assert np.array_equal(a.table.counts, b.table.counts)
    # without a taxonomy the pretrained VAE's lineage is kept; with none known at all, a warning
    bare = MicrobiomeTable(table.counts, table.sample_ids, table.taxa_ids)
    refit = loaded.copy()
    with pytest.warns(UserWarning, match="no taxon .* has a known ancestor"):
        DepMicroDiff(metadata=False, device="cpu", lineage_inputs=True, **TINY).fit(bare, seed=0, **STEPS)
    assert refit.fit(bare, seed=0, **STEPS).vae.ancestors["t2"] == ("t1", "t0")


def test_lineage_inputs_auto_is_on_and_quiet_and_old_folders_load_without_them(tmp_path, recwarn):
    flat = _table(seed=5)  # simulated taxa are leaves: no taxon is another's ancestor
    model = DepMicroDiff(metadata=False, device="cpu", **TINY).fit(flat, seed=0, **STEPS)
    assert model.hparams["lineage_inputs"] == "auto" and model.vae.enc_in.in_features == 6
    assert not [w for w in recwarn if "lineage" in str(w.message)]
    assert DepMicroDiff(lineage_inputs=0).hparams["lineage_inputs"] is False
    with pytest.raises(InvalidOptionError, match="lineage_inputs"):
        DepMicroDiff(lineage_inputs="yes")
    # a folder saved before the option existed: no key in the hparams, a 3-input VAE
    off = DepMicroDiff(metadata=False, device="cpu", lineage_inputs=False, **TINY).fit(flat, seed=0, **STEPS)
    off.save(tmp_path / "old")
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    del config["hparams"]["lineage_inputs"]
    for key in ("lineage_inputs", "log_base", "ancestors"):
        del config["vae"][key]
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    old = DepMicroDiff.load(tmp_path / "old", device="cpu")
    assert old.hparams["lineage_inputs"] is False and old.vae.enc_in.in_features == 3
    a = off.impute(flat, draws=2, sampler="ddim:5", seed=1, progress=False)
    b = old.impute(flat, draws=2, sampler="ddim:5", seed=1, progress=False)
    assert np.array_equal(a.table.counts, b.table.counts)
    old.fit(flat, seed=0, **STEPS)  # refitting it keeps the 3-input VAE it can transfer from
    assert old.vae.enc_in.in_features == 3
