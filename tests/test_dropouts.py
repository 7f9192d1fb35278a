"""Dropouts take their reads out of the sample: training's corruption rescales what is left, and impute
puts a replaced zero back as its share of the complete sample (``_data.corrupt`` ``log_base``,
``_sampling.assemble`` ``min_observed_share``)."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

from pydepmicro.datasets import simulate  # noqa: E402
from pydepmicro.model import DepMicroDiff  # noqa: E402
from pydepmicro.model import _data, _sampling  # noqa: E402
from pydepmicro.table import MicrobiomeTable  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*no observed counts:UserWarning")  # the simulated empty sample


def _log_values(rng, n: int, q: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Relative abundances x 100 with zeros, on the natural log scale: (y, observed)."""
    counts = rng.gamma(0.5, 10.0, size=(n, q)) * (rng.random((n, q)) > 0.3)
    counts[:, 0] += 1.0  # no empty sample
    y = torch.from_numpy(np.log1p(counts / counts.sum(1, keepdims=True) * 100.0)).float()
    return y, torch.ones_like(y, dtype=torch.bool)


def _corrupt(y, observed, log_base, max_hide=0.0):
    gen = torch.Generator().manual_seed(3)
    return _data.corrupt(y, observed, max_hide=max_hide, max_drop=0.6, hide_zeros=False, generator=gen,
                         log_base=log_base)


def test_a_dropout_takes_its_reads_out_of_the_sample():
    y, observed = _log_values(np.random.default_rng(0), 200, 12)
    y_in, obs_in, changed = _corrupt(y, observed, math.e)
    y_old, obs_old, changed_old = _corrupt(y, observed, None)
    # the same entries are dropped as without rescaling (no random numbers drawn for it)
    assert torch.equal(obs_in, obs_old) and torch.equal(changed, changed_old)
    assert changed.any(1).float().mean() > 0.5
    dropped = changed & obs_in
    assert (y_in[dropped] == 0).all() and (y_old[dropped] == 0).all()
    # what is left sums to the scale again, as the relative abundances of a real table with a dropout do
    left = torch.where(obs_in & ~dropped, torch.expm1(y_in.double()), torch.zeros((), dtype=torch.float64)).sum(1)
    some_left = (obs_in & ~dropped & (y > 0)).any(1)
    assert torch.allclose(left[some_left], torch.full_like(left[some_left], 100.0), rtol=1e-3)  # float32
    # ... while without log_base the visible entries keep the complete sample's values
    visible = obs_in & ~dropped
    assert torch.equal(y_old[visible], y[visible])
    grew = changed.any(1)[:, None] & visible & (y > 0)
    assert (y_in[grew] >= y[grew]).all() and (y_in[grew] > y[grew]).float().mean() > 0.9  # = when a trace was lost


def test_hidden_entries_keep_their_reads_in_the_total():
    y, observed = _log_values(np.random.default_rng(1), 300, 10)
    y_in, obs_in, changed = _corrupt(y, observed, math.e, max_hide=0.5)
    hidden, dropped = changed & ~obs_in, changed & obs_in
    linear = torch.expm1(y.double())
    factor = linear.sum(1) / (linear.sum(1) - torch.where(dropped, linear, torch.zeros_like(linear)).sum(1))
    visible = obs_in & ~dropped & (y > 0)
    row = torch.nonzero(visible.any(1) & hidden.any(1) & dropped.any(1))[0, 0]
    expected = torch.log1p(linear[row] * factor[row]).float()
    assert torch.allclose(y_in[row][visible[row]], expected[visible[row]], rtol=1e-5)


def test_a_sample_that_lost_every_read_is_left_at_zero():
    y = torch.log1p(torch.tensor([[60.0, 40.0, 0.0]]))
    observed = torch.ones_like(y, dtype=torch.bool)
    gen = torch.Generator().manual_seed(0)
    y_in, obs_in, changed = _data.corrupt(y, observed, max_hide=0.0, max_drop=1.0, hide_zeros=False,
                                          generator=gen, log_base=math.e)
    assert torch.isfinite(y_in).all()
    assert torch.equal(y_in[changed], torch.zeros(int(changed.sum())))


def _assemble(counts, value, min_observed_share, zeros="impute"):
    table = MicrobiomeTable(np.asarray(counts, dtype=float), ["a", "b"], ["t1", "t2", "t3"])
    prep = _data.prepare(table, scale=100.0, log_base=math.e)
    alignment = _data.align_taxa(table, table.taxa_ids, align=False)
    value = np.asarray(value, dtype=float)
    est = {"value": value, "abundance": value, "spread": np.zeros_like(value),
           "presence_prob": np.full_like(value, 0.9)}
    return _sampling.assemble(table, prep, alignment, est, zeros=zeros, threshold=0.5, scale=100.0,
                              log_base=math.e, skip=np.zeros(2, dtype=bool), min_observed_share=min_observed_share)


def test_replaced_zeros_are_put_back_as_shares_of_the_complete_sample():
    counts = [[30.0, 10.0, 0.0], [200.0, 0.0, 0.0]]
    share = np.array([[0.0, 0.0, 0.5], [0.0, 0.2, 0.3]])  # the model's shares of the complete samples
    value = np.log1p(share * 100.0)
    closed = _assemble(counts, value, 0.05).table.counts
    as_is = _assemble(counts, value, None).table.counts
    # sample a: half of it was lost, so the observed 40 reads are the other half: 40 reads for taxon 3
    assert closed[0, 2] == pytest.approx(40.0) and as_is[0, 2] == pytest.approx(20.0)
    assert closed[1, 1] == pytest.approx(200.0 * 0.2 / 0.5) and closed[1, 2] == pytest.approx(200.0 * 0.3 / 0.5)
    np.testing.assert_array_equal(closed[:, 0], [30.0, 200.0])  # observed entries bit for bit
    # each completed sample's shares are the model's
    np.testing.assert_allclose(closed / closed.sum(1, keepdims=True), [[0.375, 0.125, 0.5], [0.5, 0.2, 0.3]])


def test_the_lost_share_is_capped_so_counts_stay_bounded():
    counts = [[10.0, 0.0, 0.0], [10.0, 0.0, 0.0]]
    value = np.log1p(np.array([[0.0, 60.0, 60.0], [0.0, 60.0, 60.0]]))  # shares summing to 1.2
    closed = _assemble(counts, value, 0.05).table.counts
    assert np.isfinite(closed).all()
    assert closed[0, 1] == pytest.approx(10.0 * 0.6 / 0.05)


@pytest.fixture(scope="module")
def fitted():
    table = simulate(60, 10, seed=2, zero_fraction=0.5).table
    model = DepMicroDiff(device="cpu", d_model=16, vae_d_model=16, n_heads=2, vae_heads=2, n_blocks=2,
                         num_train_timesteps=50, metadata=False, dependency="ftest")
    return table, model.fit(table, seed=0, vae_steps=30, dat_steps=20, progress=False)


def test_fit_trains_with_dropouts_taken_out_and_impute_closes_the_sample(fitted):
    table, model = fitted
    assert model.drops_renormalized
    assert model.training["fit"]["vae"]["log_base"] == pytest.approx(math.e)
    result = model.impute(table, draws=0, zeros="impute", progress=False)
    assert result.options["dropouts_closed"]
    kept = model.impute(table, draws=0, zeros="impute", closure=False, progress=False)
    assert not kept.options["dropouts_closed"]
    replaced = result.imputed & (np.nan_to_num(table.counts) == 0)
    assert replaced.any()
    # with the sample closed, every replaced zero is larger than written relative to the observed reads alone
    assert (result.table.counts[replaced] >= kept.table.counts[replaced]).all()
    assert (result.table.counts[replaced] > kept.table.counts[replaced]).any()
    observed = ~np.isnan(table.counts) & (table.counts > 0)
    np.testing.assert_array_equal(result.table.counts[observed], table.counts[observed])


def test_models_fitted_before_keep_their_imputation(fitted):
    table, model = fitted
    old = model.copy()
    del old.training["fit"]["vae"]["log_base"]  # what a model saved before the option holds
    assert not old.drops_renormalized
    result = old.impute(table, draws=0, zeros="impute", progress=False)
    unclosed = model.impute(table, draws=0, zeros="impute", closure=False, progress=False)
    assert not result.options["dropouts_closed"]
    np.testing.assert_array_equal(result.table.counts, unclosed.table.counts)
