"""Memory-bounded imputation: the batch is lowered to fit, or a clear error names the option to change.

The memory limit is injected (``memory_limit=`` of :func:`plan_batch` or ``$PYDEPMICRO_MEMORY_LIMIT``),
so the tests run anywhere without allocating anything large.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

from pydepmicro.datasets import simulate
from pydepmicro.errors import InvalidOptionError
from pydepmicro.model import (
    DepMicroDiff,
    _sampling,
)

TINY = dict(d_z=2, vae_d_model=16, vae_layers=1, vae_heads=2, d_model=16, n_layers=1, n_heads=2, n_blocks=3,
            dependency="none", num_train_timesteps=100)


@pytest.fixture(scope="module")
def fitted():
    table = simulate(40, 10, seed=1, zero_fraction=0.5).table
    model = DepMicroDiff(metadata=False, device="cpu", **TINY).fit(table, vae_steps=5, dat_steps=5, progress=False)
    return model, table


def _plan(model, limit, *, draws=4, batch_size=512, n=40, q=10, keep_draws=False):
    return _sampling.plan_batch(model.module, n_samples=n, n_taxa=q, n_cond=0, draws=draws, batch_size=batch_size,
                                keep_draws=keep_draws, device=torch.device("cpu"), memory_limit=limit)


def test_estimate_grows_with_tokens_and_width(fitted):
    model, _ = fitted
    small = _sampling.sequence_bytes(model.module, 10, 0)
    assert small > 0
    assert _sampling.sequence_bytes(model.module, 100, 0) > 30 * small  # 10x the tokens: the attention term grows 100x
    assert _sampling.sequence_bytes(model.module, 10, 5) > small


def test_batch_kept_when_it_fits(fitted):
    model, _ = fitted
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _plan(model, 10**12) == 512 // 4


def test_batch_lowered_to_fit(fitted):
    model, _ = fitted
    seq = _sampling.sequence_bytes(model.module, 10, 0)
    fixed = 8 * 40 * 10 * 4
    limit = int((fixed + 3 * 4 * seq) / _sampling.MEMORY_FRACTION) + 1  # room for 3 samples x 4 draws
    with pytest.warns(UserWarning, match="--impute-batch 12"):
        assert _plan(model, limit) == 3


def test_error_names_draws_when_one_sample_cannot_fit(fitted):
    model, _ = fitted
    seq = _sampling.sequence_bytes(model.module, 10, 0)
    fixed = 8 * 40 * 10 * 4
    limit = int((fixed + 2.5 * seq) / _sampling.MEMORY_FRACTION)  # two sequences fit, not four
    with pytest.raises(InvalidOptionError, match="4 draws") as info:
        _plan(model, limit)
    assert "draws=2" in str(info.value) + str(getattr(info.value, "hint", ""))


def test_error_when_nothing_fits(fitted):
    model, _ = fitted
    with pytest.raises(InvalidOptionError, match="--device|memory"):
        _plan(model, 8 * 40 * 10 * 4 * 2)


def test_error_names_keep_draws(fitted):
    model, _ = fitted
    with pytest.raises(InvalidOptionError, match="keep"):
        _plan(model, 8 * 40 * 10 * 6, keep_draws=True)


def test_impute_with_env_limit_matches_unlimited(fitted, monkeypatch):
    """Lowering the batch changes nothing in the result except for the draw order (mean estimate: nothing)."""
    model, table = fitted
    full = model.impute(table, draws=0, estimate="mean", progress=False)
    seq = _sampling.sequence_bytes(model.module, 10, 0)
    monkeypatch.setenv(_sampling.MEMORY_LIMIT_ENV, str(int((8 * 40 * 10 * 4 + 5 * seq) / _sampling.MEMORY_FRACTION)))
    with pytest.warns(UserWarning, match="sequences per pass"):
        small = model.impute(table, draws=0, estimate="mean", progress=False)
    np.testing.assert_allclose(small.values, full.values, rtol=1e-5, atol=1e-6)
    monkeypatch.setenv(_sampling.MEMORY_LIMIT_ENV, "1000")
    with pytest.raises(InvalidOptionError):
        model.impute(table, draws=2, progress=False)


def test_available_memory_reports_something():
    assert (_sampling.available_memory(torch.device("cpu")) or 1) > 0
