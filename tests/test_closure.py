"""impute(closure=True): missing entries count as part of each sample's composition.

Without closure, a large missing entry inflates every observed share (they are relative to the
observed total) and its own count is written back with a total that lacks it, so it comes back too
small. Tiny models: the check is the arithmetic and its direction, not accuracy.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

from pydepmicro.datasets import simulate  # noqa: E402
from pydepmicro.model import DepMicroDiff, _data  # noqa: E402
from pydepmicro.model import impute as engine_impute  # noqa: E402
from pydepmicro.table import MicrobiomeTable  # noqa: E402

TINY = dict(d_z=2, vae_d_model=16, vae_layers=1, vae_heads=2, d_model=16, n_layers=1, n_heads=2, n_blocks=3,
            dependency="ftest", num_train_timesteps=100, metadata=False)
STEPS = dict(vae_steps=40, dat_steps=40, progress=False)


def test_prepare_with_observed_share_scales_shares_and_totals():
    counts = np.array([[10.0, 30.0, np.nan, 0.0], [5.0, 5.0, 10.0, np.nan]])
    table = MicrobiomeTable(counts, ["s1", "s2"], ["a", "b", "c", "d"])
    share = np.array([0.4, 0.8])
    plain = _data.prepare(table, scale=100.0, log_base=np.e)
    scaled = _data.prepare(table, scale=100.0, log_base=np.e, observed_share=share)
    rel_sum = np.nansum(np.expm1(scaled.values), axis=1)
    assert np.allclose(rel_sum, 100.0 * share)  # observed entries hold their share of the whole
    assert np.allclose(np.nansum(np.expm1(plain.values), axis=1), 100.0)
    assert np.allclose(scaled.library_sizes, np.array([40.0, 20.0]) / share)  # completed totals
    assert np.array_equal(np.isnan(scaled.values), np.isnan(counts))
    # a relative abundance written back with the completed total: the count stays where it was
    assert np.allclose(np.expm1(scaled.values[0, 1]) / 100.0 * scaled.library_sizes[0], 30.0)


@pytest.fixture(scope="module")
def dominant():
    """A table whose taxon 0 holds about half of every sample's reads, hidden in a third of samples."""
    full = simulate(60, 10, seed=5, zero_fraction=0.5).table
    counts = full.counts.copy()
    counts[:, 0] = counts[:, 1:].sum(axis=1) + 1.0  # half of each sample
    truth = full.with_counts(counts.copy())
    hidden = np.zeros(counts.shape, dtype=bool)
    hidden[::3, 0] = True
    hidden[:, 0] &= counts[:, 1:].sum(axis=1) > 0  # each such sample keeps some observed reads
    counts[hidden] = np.nan
    table = truth.with_counts(counts)
    model = DepMicroDiff(device="cpu", **TINY).fit(table, seed=0, **STEPS)
    return truth, table, hidden, model


def test_closure_brings_a_hidden_dominant_taxon_back_near_its_share(dominant):
    truth, table, hidden, model = dominant
    errors = {}
    for closure in (False, True):
        result = model.impute(table, draws=0, zeros="keep", closure=closure, progress=False)
        assert result.options["closure"] is closure
        filled = result.table.counts[hidden]
        # share of the completed sample that the imputed entry takes, against the truth (0.5)
        completed = np.nansum(table.counts, axis=1)[hidden[:, 0]] + filled
        share = filled / completed
        true_share = truth.counts[hidden] / truth.counts[hidden[:, 0]].sum(axis=1)
        errors[closure] = np.mean(np.abs(np.log(share + 1e-9) - np.log(true_share)))
        obs = ~np.isnan(table.counts)
        assert np.array_equal(result.table.counts[obs], table.counts[obs])  # observed counts untouched
    # without closure the entry is written with the observed total, which lacks it: about half too small
    assert errors[True] < 0.5 * errors[False], errors


def test_closure_changes_nothing_without_missing_entries_or_replaced_zeros(dominant):
    truth, _, _, model = dominant
    a = model.impute(truth, draws=2, sampler="ddim:5", zeros="keep", closure=True, progress=False, seed=1)
    b = model.impute(truth, draws=2, sampler="ddim:5", zeros="keep", closure=False, progress=False, seed=1)
    assert np.array_equal(a.table.counts, b.table.counts)
    assert np.array_equal(a.values, b.values, equal_nan=True)
    # zeros judged dropouts are closed too (tests/test_dropouts.py); every other entry is the same
    a = model.impute(truth, draws=2, sampler="ddim:5", zeros="auto", closure=True, progress=False, seed=1)
    b = model.impute(truth, draws=2, sampler="ddim:5", zeros="auto", closure=False, progress=False, seed=1)
    assert np.array_equal(a.imputed, b.imputed)
    assert np.array_equal(a.table.counts[~a.imputed], b.table.counts[~b.imputed], equal_nan=True)


def test_closure_is_an_option_of_the_one_call_impute(dominant):
    _, table, hidden, model = dominant
    on = engine_impute(table, model=model, draws=0, zeros="keep", progress=False)
    off = engine_impute(table, model=model, draws=0, zeros="keep", closure=False, progress=False)
    assert on.options["closure"] is True and off.options["closure"] is False
    assert (on.table.counts[hidden] > off.table.counts[hidden]).mean() > 0.9


def test_cli_no_closure_gives_the_observed_total_behaviour(dominant, tmp_path):
    from click.testing import CliRunner

    from pydepmicro.cli import cli
    from pydepmicro.io import read_table, write_table

    _, table, hidden, model = dominant
    model.save(tmp_path / "model")
    write_table(table, tmp_path / "t.tsv")
    outputs = {}
    for flag in ("--closure", "--no-closure"):
        out = tmp_path / f"{flag.strip('-')}.tsv"
        result = CliRunner().invoke(cli, ["impute", str(tmp_path / "t.tsv"), "--model", str(tmp_path / "model"),
                                          "-o", str(out), "--draws", "0", "--zeros", "keep", "--quiet", flag])
        assert result.exit_code == 0, result.output
        outputs[flag] = read_table(out).counts
    expected = model.impute(table, draws=0, zeros="keep", closure=False, progress=False).table.counts
    assert np.allclose(outputs["--no-closure"], expected, rtol=1e-6)
    assert (outputs["--closure"][hidden] > outputs["--no-closure"][hidden]).mean() > 0.9


def test_known_library_sizes_replace_the_estimated_share(dominant):
    """With each sample's whole total given, the observed share is known: impute writes the hidden
    entries with that total and does not run closure; an unchanged table gives the same output."""
    truth, table, hidden, model = dominant
    totals = np.nansum(truth.counts, axis=1)
    known = model.impute(table, draws=0, library_size=totals, progress=False)
    assert known.options["library_size_given"] and not known.options["closure"]
    share = _data.observed_share(table, totals)
    expect = _data.prepare(table, scale=100.0, log_base=np.e, observed_share=share)
    assert np.allclose(expect.library_sizes, np.where(totals > 0, totals, 0.0))
    estimated = model.impute(table, draws=0, progress=False)
    assert not np.allclose(known.table.counts[hidden], estimated.table.counts[hidden])
    obs = ~np.isnan(table.counts) & (table.counts > 0)
    assert np.array_equal(known.table.counts[obs], table.counts[obs])  # observed entries bit for bit
    # a table without missing entries: its totals are its observed totals, the share is 1
    complete = truth
    same = model.impute(complete, draws=0, library_size=np.nansum(complete.counts, axis=1), progress=False)
    plain = model.impute(complete, draws=0, progress=False)
    assert np.allclose(same.values, plain.values, equal_nan=True)
    # fit accepts them too and records it
    refit = DepMicroDiff(device="cpu", **TINY).fit(table, seed=0, library_size=totals, **STEPS)
    assert refit.training["fit"]["library_size_given"]


def test_a_sample_with_nothing_left_but_a_known_total_is_imputed(dominant):
    """Every nonzero entry of a sample missing (as in BENCHMARK.md's P2 masks, where a drawn entry hides
    its whole lineage): without its total the sample is left alone, as a sample without reads is; with
    the total given, its missing entries are imputed and written with that total."""
    import warnings

    truth, table, _, model = dominant
    counts = table.counts.copy()
    counts[0] = np.where(truth.counts[0] > 0, np.nan, 0.0)  # only true zeros left to see
    counts[1] = 0.0  # a sample without reads: nothing missing, nothing to impute
    gone = table.with_counts(counts)
    totals = np.nansum(truth.counts, axis=1)
    missing = np.isnan(counts[0])
    with pytest.warns(UserWarning, match="no observed counts") as caught:
        alone = model.impute(gone, draws=0, progress=False)
    assert "2 sample(s)" in str(caught[0].message)
    assert np.isnan(alone.table.counts[0][missing]).all() and not alone.imputed[0].any()
    with pytest.warns(UserWarning, match="no observed counts") as caught:
        known = model.impute(gone, draws=2, sampler="ddim:3", zeros="keep", library_size=totals, progress=False)
    assert "1 sample(s)" in str(caught[0].message)  # the sample without reads only
    assert (alone.options["n_samples_unchanged"], alone.options["n_samples_from_total"]) == (2, 0)
    assert (known.options["n_samples_unchanged"], known.options["n_samples_from_total"]) == (1, 1)
    assert "1 left unchanged, 1 imputed from their given total" in known.summary()
    filled = known.table.counts[0][missing]
    assert np.isfinite(filled).all() and (filled >= 0).all() and filled.sum() > 0
    assert known.imputed[0][missing].all() and (known.table.counts[0][~missing] == 0).all()
    assert (known.table.counts[1] == 0).all() and not known.imputed[1].any()
    assert filled.sum() <= totals[0] * 1.5  # written with the sample's total, not a made-up one
    assert np.isfinite(known.spread[0][missing]).all()
    with warnings.catch_warnings():  # the other samples are imputed as before
        warnings.simplefilter("ignore")
        before = model.impute(gone.subset(samples=gone.sample_ids[2:]), draws=2, sampler="ddim:3", zeros="keep",
                              library_size=totals[2:], progress=False)
    assert np.allclose(known.table.counts[2:], before.table.counts, equal_nan=True, rtol=1e-5)


@pytest.mark.parametrize("bad, match", [
    (lambda t: np.ones(t.n_samples + 1) * 1e6, "values for"),
    (lambda t: np.full(t.n_samples, -1.0), "finite and positive"),
    (lambda t: np.full(t.n_samples, np.nan), "finite and positive"),
    (lambda t: np.nansum(t.counts, axis=1) / 2 + 1e-9, "below the observed total"),
])
def test_bad_library_sizes_are_refused_with_the_fix(dominant, bad, match):
    from pydepmicro.errors import InvalidValueError

    _, table, _, model = dominant
    with pytest.raises(InvalidValueError, match=match):
        model.impute(table, draws=0, library_size=bad(table), progress=False)
