"""Imputation metrics of the benchmark (BENCHMARK.md, "Metrics"), on the log scale.

All arrays are samples x taxa. ``truth`` is the original (complete) table transformed; ``imputed``
is a method's output on the masked input. Accuracy is measured on the drawn entries of the mask;
zeros are judged on the true zeros (zero in the original table and not hidden).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InvalidOptionError, InvalidValueError
from .masks import REGIMES, EvalMask

#: imputed values above this count as "filled" for the false-fill rate
FILL_THRESHOLD = 0.01
#: per-taxon / per-sample PCC needs at least this many drawn entries
MIN_ENTRIES = 5


def imputation_metrics(truth, imputed, mask: EvalMask, *, observed=None, lower=None,
                       upper=None, regime: str) -> dict[str, float]:
    """Accuracy, zero handling and fidelity of one imputation.

    Parameters
    ----------
    truth : array, shape (n_samples, n_taxa)
        The original table on the log scale (NaN where the original itself is missing).
    imputed : array, shape (n_samples, n_taxa)
        The method's output, finite wherever ``truth`` is observed.
    mask : EvalMask
        The mask the method's input was made with.
    observed : bool array, shape (n_samples, n_taxa), optional
        Entries known in the original table; default ``~isnan(truth)``.
    lower, upper : arrays, shape (n_samples, n_taxa), optional
        A predictive interval (e.g. 90%) per entry, for the coverage of drawn truths.
    regime : {"blind", "aware"}
        How the input was masked; checked, the formulas are the same.

    Returns
    -------
    dict of str -> float
        ``pcc``, ``cosine``, ``rmse``, ``mae`` (pooled over drawn entries); ``per_taxon_pcc`` and
        ``per_sample_pcc`` (medians over taxa / samples with >= 5 drawn entries, constant ones
        skipped; NaN if none) and ``n_taxa_pcc``, ``n_samples_pcc``; ``false_fill`` (share of true
        zeros imputed above 0.01); ``dropout_auroc`` (imputed value as a score, drawn = positive,
        true zero = negative); ``observed_fidelity`` (largest ``|imputed - truth|`` over observed
        nonzero entries not hidden); ``coverage`` (share of drawn truths within
        ``[lower, upper]``, NaN when not given); ``n_drawn``, ``n_hidden``, ``n_true_zeros``.
    """
    if regime not in REGIMES:
        raise InvalidOptionError(f"regime must be one of {REGIMES}, not {regime!r}")
    if not isinstance(mask, EvalMask):
        raise InvalidOptionError(f"mask must be an EvalMask, got {type(mask).__name__}")
    truth = _matrix(truth, "truth", mask.shape, allow_nan=True)
    imputed = _matrix(imputed, "imputed", mask.shape, allow_nan=True)
    if observed is None:
        observed = ~np.isnan(truth)
    else:
        observed = np.asarray(observed)
        if observed.shape != mask.shape or observed.dtype != bool:
            raise InvalidValueError(f"observed must be a bool array of shape {mask.shape}")
        if np.isnan(truth[observed]).any():
            raise InvalidValueError("truth is NaN at entries marked observed")
    drawn = mask.drawn
    if (drawn & ~observed).any():
        raise InvalidValueError("the mask draws entries that are not observed in truth",
                                hint="draw the mask from the table truth was made from")
    if np.isnan(imputed[observed | mask.hidden]).any():
        raise InvalidValueError(
            f"imputed has {int(np.isnan(imputed[observed | mask.hidden]).sum())} NaN entries "
            "where truth is known", hint="the method must return a complete matrix")
    true_zero = observed & ~mask.hidden & (np.nan_to_num(truth) == 0)
    kept = observed & ~mask.hidden & (np.nan_to_num(truth) != 0)
    t, p = truth[drawn], imputed[drawn]
    out = {
        "pcc": _pcc(t, p),
        "cosine": _cosine(t, p),
        "rmse": float(np.sqrt(np.mean((p - t) ** 2))) if t.size else np.nan,
        "mae": float(np.mean(np.abs(p - t))) if t.size else np.nan,
    }
    out["per_taxon_pcc"], out["n_taxa_pcc"] = _grouped_pcc(truth, imputed, drawn, axis=0)
    out["per_sample_pcc"], out["n_samples_pcc"] = _grouped_pcc(truth, imputed, drawn, axis=1)
    zeros = imputed[true_zero]
    out["false_fill"] = float(np.mean(zeros > FILL_THRESHOLD)) if zeros.size else np.nan
    out["dropout_auroc"] = auroc(p, zeros)
    out["observed_fidelity"] = (float(np.max(np.abs(imputed[kept] - truth[kept])))
                                if kept.any() else np.nan)
    out["coverage"] = _coverage(t, drawn, lower, upper, mask.shape)
    out["n_drawn"] = float(drawn.sum())
    out["n_hidden"] = float(mask.hidden.sum())
    out["n_true_zeros"] = float(true_zero.sum())
    return {k: float(v) for k, v in out.items()}


def _matrix(x, what: str, shape, *, allow_nan: bool) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.shape != tuple(shape):
        raise InvalidValueError(f"{what} has shape {a.shape}, the mask {tuple(shape)}",
                                hint="pass samples x taxa arrays in the mask's order")
    if np.isinf(a).any() or (not allow_nan and np.isnan(a).any()):
        raise InvalidValueError(f"{what} has infinite or missing values")
    return a


def _pcc(t: np.ndarray, p: np.ndarray) -> float:
    if t.size < 2 or np.ptp(t) == 0 or np.ptp(p) == 0:
        return np.nan
    return float(np.corrcoef(t, p)[0, 1])


def _cosine(t: np.ndarray, p: np.ndarray) -> float:
    norm = np.linalg.norm(t) * np.linalg.norm(p)
    return float(t @ p / norm) if norm > 0 else np.nan


def grouped_pcc(truth, imputed, drawn, *, axis: int = 0) -> np.ndarray:
    """PCC on the drawn entries of each taxon (``axis=0``) or each sample (``axis=1``).

    Parameters
    ----------
    truth, imputed : arrays, shape (n_samples, n_taxa)
    drawn : bool array, shape (n_samples, n_taxa)
        The evaluated entries (``EvalMask.drawn``).
    axis : {0, 1}

    Returns
    -------
    ndarray, shape (n_taxa,) or (n_samples,)
        NaN for a taxon / sample with fewer than ``MIN_ENTRIES`` drawn entries or constant values.
    """
    truth, imputed, drawn = np.asarray(truth, float), np.asarray(imputed, float), np.asarray(drawn, bool)
    if axis not in (0, 1):
        raise InvalidOptionError(f"axis must be 0 (taxa) or 1 (samples), got {axis!r}")
    out = np.full(drawn.shape[1 - axis], np.nan)
    for k in np.flatnonzero(drawn.sum(axis=axis) >= MIN_ENTRIES):
        sel = drawn[:, k] if axis == 0 else drawn[k]
        t = truth[:, k][sel] if axis == 0 else truth[k][sel]
        p = imputed[:, k][sel] if axis == 0 else imputed[k][sel]
        out[k] = _pcc(t, p)
    return out


def _grouped_pcc(truth, imputed, drawn, *, axis: int) -> tuple[float, int]:
    """Median PCC over columns (axis=0) or rows (axis=1) with >= MIN_ENTRIES drawn entries."""
    values = grouped_pcc(truth, imputed, drawn, axis=axis)
    values = values[~np.isnan(values)]
    return (float(np.median(values)) if values.size else np.nan), int(values.size)


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve of scores of positives against negatives (NaN when either is empty)."""
    if positive.size == 0 or negative.size == 0:
        return np.nan
    from sklearn.metrics import roc_auc_score

    labels = np.r_[np.ones(positive.size), np.zeros(negative.size)]
    return float(roc_auc_score(labels, np.r_[positive, negative]))


def _coverage(t, drawn, lower, upper, shape) -> float:
    if lower is None and upper is None:
        return np.nan
    if lower is None or upper is None:
        raise InvalidOptionError("give both lower and upper for interval coverage")
    lo = _matrix(lower, "lower", shape, allow_nan=False)[drawn]
    hi = _matrix(upper, "upper", shape, allow_nan=False)[drawn]
    if (lo > hi).any():
        raise InvalidValueError("lower exceeds upper at some entries")
    return float(np.mean((t >= lo) & (t <= hi))) if t.size else np.nan


def summarise(results: list[dict], *, by=None) -> pd.DataFrame:
    """Mean and sd of every numeric metric over runs (seeds), per group.

    Parameters
    ----------
    results : list of dict
        One dict per run: metrics (numbers) plus labels (str), e.g. ``method``, ``data``,
        ``regime``, ``variant``, and ``seed``.
    by : list of str, optional
        Grouping labels; default every key with string values (``seed`` is never a label).

    Returns
    -------
    DataFrame
        One row per group: the labels, ``n_runs``, and ``<metric>_mean`` / ``<metric>_sd``
        (sd with ddof=1; NaN for one run).
    """
    if not results:
        raise InvalidOptionError("summarise needs at least one result")
    frame = pd.DataFrame(list(results))
    if by is None:
        by = [c for c in frame.columns
              if c != "seed" and not pd.api.types.is_numeric_dtype(frame[c])]
    else:
        by = [by] if isinstance(by, str) else list(by)
        absent = [c for c in by if c not in frame.columns]
        if absent:
            raise InvalidOptionError(f"results lack the grouping keys {absent}")
    metrics = [c for c in frame.columns
               if c not in by and c != "seed" and pd.api.types.is_numeric_dtype(frame[c])]
    if not by:
        frame = frame.assign(_all="all")
        by = ["_all"]
    grouped = frame.groupby(by, sort=False, dropna=False)
    out = grouped[metrics].agg(["mean", "std"])
    out.columns = [f"{m}_{'sd' if s == 'std' else s}" for m, s in out.columns]
    out.insert(0, "n_runs", grouped.size())
    out = out.reset_index()
    return out.drop(columns=["_all"], errors="ignore")
