"""Baseline imputers of the benchmark (BENCHMARK.md, "Baselines").

Every baseline takes the masked log-scale matrix ``x`` (n_samples x n_taxa; NaN = missing in the
aware regime, zeros present) and returns a complete matrix of the same shape, clipped at 0, in which
every observed nonzero entry of ``x`` is unchanged. With ``fill_zeros=False`` observed zeros are
kept too and only NaN is imputed; with ``fill_zeros=True`` (the blind regime, where a masked entry
looks like a zero) every zero is treated as missing.

:func:`baselines_for` names the methods run in each regime; each takes ``(x, *, seed=0)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from ..errors import InvalidOptionError, InvalidValueError
from .masks import REGIMES

Imputer = Callable[..., np.ndarray]

KNN_VARIANTS = ("aware", "zeros_as_missing", "neighbour_mean")


def _check_x(x) -> np.ndarray:
    a = np.array(x, dtype=np.float64)  # a copy
    if a.ndim != 2 or 0 in a.shape:
        raise InvalidValueError(f"x must be a non-empty 2-D array (samples x taxa), "
                                f"got shape {a.shape}")
    if np.isinf(a).any():
        raise InvalidValueError("x has infinite values", hint="mark missing entries as NaN")
    if (a < 0).any():
        raise InvalidValueError("x has negative values; baselines expect log(x + 1) abundances",
                                hint="transform with pydepmicro.transforms.preprocess")
    return a


def _missing(x: np.ndarray, fill_zeros: bool) -> np.ndarray:
    """Entries to impute: NaN, plus zeros when ``fill_zeros``."""
    return np.isnan(x) | (fill_zeros & (x == 0))


def _finish(x: np.ndarray, filled: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Kept entries exactly as in ``x``, imputed ones clipped at 0, no NaN left."""
    out = np.where(missing, np.nan_to_num(filled, nan=0.0), x)
    return np.maximum(out, 0.0)


def _observed_nonzero_mean(x: np.ndarray) -> np.ndarray:
    """Per-taxon mean of observed nonzero entries (0 for a taxon with none), shape (n_taxa,)."""
    nz = np.nan_to_num(x) > 0
    counts = nz.sum(axis=0)
    sums = np.where(nz, x, 0.0).sum(axis=0)
    return np.divide(sums, counts, out=np.zeros(x.shape[1]), where=counts > 0)


# ------------------------------------------------------------------------------ baselines


def impute_zeros(x) -> np.ndarray:
    """No imputation: NaN -> 0.

    Parameters
    ----------
    x : array, shape (n_samples, n_taxa)

    Returns
    -------
    ndarray, shape (n_samples, n_taxa)
    """
    x = _check_x(x)
    return _finish(x, np.zeros_like(x), np.isnan(x))


def impute_taxon_mean(x, *, fill_zeros: bool = False) -> np.ndarray:
    """Per-taxon mean of the observed nonzero entries, put into every NaN (and zero if asked).

    Parameters
    ----------
    x : array, shape (n_samples, n_taxa)
    fill_zeros : bool
        Also replace every observed zero (blind regime).

    Returns
    -------
    ndarray, shape (n_samples, n_taxa)
    """
    x = _check_x(x)
    missing = _missing(x, fill_zeros)
    return _finish(x, np.broadcast_to(_observed_nonzero_mean(x), x.shape), missing)


def impute_knn(x, k: int = 10, variant: str = "aware") -> np.ndarray:
    """k-nearest-neighbour imputation over samples.

    Parameters
    ----------
    x : array, shape (n_samples, n_taxa)
    k : int
        Number of neighbours.
    variant : {"aware", "zeros_as_missing", "neighbour_mean"}
        ``"aware"``: scikit-learn ``KNNImputer`` (nan-Euclidean distances, uniform weights) fills
        the NaN entries. ``"zeros_as_missing"``: the same with every zero treated as missing.
        ``"neighbour_mean"``: every zero and NaN gets the mean of that taxon over the sample's
        ``k`` nearest other samples (Euclidean on the log values, NaN-aware), zeros included.

    Returns
    -------
    ndarray, shape (n_samples, n_taxa)
    """
    x = _check_x(x)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidOptionError(f"k must be a positive integer, got {k!r}")
    if variant not in KNN_VARIANTS:
        raise InvalidOptionError(f"KNN variant must be one of {KNN_VARIANTS}, not {variant!r}")
    if variant == "neighbour_mean":
        missing = _missing(x, True)
        return _finish(x, _neighbour_mean(x, int(k)), missing)
    from sklearn.impute import KNNImputer

    missing = _missing(x, variant == "zeros_as_missing")
    if not missing.any():
        return _finish(x, x, missing)
    k = min(int(k), max(x.shape[0] - 1, 1))
    filled = KNNImputer(n_neighbors=k, keep_empty_features=True).fit_transform(
        np.where(missing, np.nan, x))
    return _finish(x, filled, missing)


def _neighbour_mean(x: np.ndarray, k: int) -> np.ndarray:
    from sklearn.metrics.pairwise import euclidean_distances, nan_euclidean_distances

    n = x.shape[0]
    if np.isnan(x).any():
        dist = nan_euclidean_distances(x)
    else:
        dist = euclidean_distances(x)
    dist = np.where(np.isnan(dist), np.inf, dist)
    np.fill_diagonal(dist, np.inf)
    k = min(k, n - 1)
    if k < 1:
        return np.zeros_like(x)
    nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]  # (n, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN neighbours -> NaN -> 0
        return np.nanmean(x[nearest], axis=1)  # (n, q)


def impute_softimpute(x, rank: int | None = None, shrinkage: float | None = None, *,
                      fill_zeros: bool = False, max_iter: int = 100,
                      tol: float = 1e-5) -> np.ndarray:
    """Soft-thresholded iterative SVD (SoftImpute, Mazumder, Hastie & Tibshirani 2010).

    Columns are centred on the mean of their kept entries; missing entries start at 0 (the
    mean) and are replaced by the low-rank fit until the relative change is below ``tol``.

    Parameters
    ----------
    x : array, shape (n_samples, n_taxa)
    rank : int, optional
        Keep at most this many singular values (default: all that survive shrinkage).
    shrinkage : float, optional
        Amount subtracted from each singular value; default: the largest singular value of the
        mean-filled, centred matrix divided by 50.
    fill_zeros : bool
        Treat every zero as missing (blind regime).
    max_iter, tol
        Iteration limit and convergence threshold.

    Returns
    -------
    ndarray, shape (n_samples, n_taxa)
    """
    x = _check_x(x)
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, (int, np.integer))
                             or rank < 1):
        raise InvalidOptionError(f"rank must be a positive integer or None, got {rank!r}")
    if shrinkage is not None and not (np.isfinite(shrinkage) and shrinkage >= 0):
        raise InvalidOptionError(f"shrinkage must be >= 0, got {shrinkage!r}")
    missing = _missing(x, fill_zeros)
    if not missing.any():
        return _finish(x, x, missing)
    kept = ~missing
    n_kept = kept.sum(axis=0)
    mean = np.divide(np.where(kept, x, 0.0).sum(axis=0), n_kept,
                     out=np.zeros(x.shape[1]), where=n_kept > 0)
    centred = np.where(kept, x - mean, 0.0)
    lam = (np.linalg.norm(centred, 2) / 50.0) if shrinkage is None else float(shrinkage)
    fit = _soft_impute(centred, kept, lam, rank, max_iter, tol)
    return _finish(x, fit + mean, missing)


def _soft_impute(z: np.ndarray, kept: np.ndarray, lam: float, rank: int | None,
                 max_iter: int, tol: float) -> np.ndarray:
    current = z.copy()
    low = z
    for _ in range(max_iter):
        u, s, vt = np.linalg.svd(current, full_matrices=False)
        s = np.maximum(s - lam, 0.0)
        if rank is not None:
            s[rank:] = 0.0
        low = (u * s) @ vt
        updated = np.where(kept, z, low)
        change = np.sum((updated - current) ** 2) / max(np.sum(current ** 2), 1e-12)
        current = updated
        if change < tol:
            break
    return low


def impute_iterative(x, seed: int = 0, *, fill_zeros: bool = False,
                     max_iter: int = 10) -> np.ndarray:
    """scikit-learn ``IterativeImputer`` with ``BayesianRidge`` (chained regressions per taxon).

    Parameters
    ----------
    x : array, shape (n_samples, n_taxa)
    seed : int
        ``random_state`` of the imputer.
    fill_zeros : bool
        Treat every zero as missing (blind regime).
    max_iter : int
        Imputation rounds.

    Returns
    -------
    ndarray, shape (n_samples, n_taxa)
    """
    x = _check_x(x)
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer
    from sklearn.linear_model import BayesianRidge

    missing = _missing(x, fill_zeros)
    if not missing.any():
        return _finish(x, x, missing)
    imputer = IterativeImputer(estimator=BayesianRidge(), max_iter=int(max_iter),
                               random_state=int(seed), keep_empty_features=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        filled = imputer.fit_transform(np.where(missing, np.nan, x))
    return _finish(x, filled, missing)


# ------------------------------------------------------------------------------ registry


def _named(fn: Imputer, **kwargs) -> Imputer:
    def run(x, *, seed: int = 0) -> np.ndarray:
        if fn is impute_iterative:
            return fn(x, seed, **kwargs)
        return fn(x, **kwargs)

    run.__name__ = fn.__name__
    run.__doc__ = f"{fn.__name__}(x, **{kwargs}); ``seed`` is used where the method is random."
    return run


#: every baseline by name; each is called as ``fn(x, seed=...)``
BASELINES: dict[str, Imputer] = {
    "zeros": _named(impute_zeros),
    "taxon_mean": _named(impute_taxon_mean),
    "taxon_mean_fill_zeros": _named(impute_taxon_mean, fill_zeros=True),
    "knn10": _named(impute_knn, k=10, variant="aware"),
    "knn10_zeros_as_missing": _named(impute_knn, k=10, variant="zeros_as_missing"),
    "knn10_neighbour_mean": _named(impute_knn, k=10, variant="neighbour_mean"),
    "softimpute": _named(impute_softimpute),
    "softimpute_fill_zeros": _named(impute_softimpute, fill_zeros=True),
    "iterative": _named(impute_iterative),
    "iterative_fill_zeros": _named(impute_iterative, fill_zeros=True),
}

_BY_REGIME = {
    "aware": ("zeros", "taxon_mean", "knn10", "softimpute", "iterative"),
    "blind": ("zeros", "taxon_mean_fill_zeros", "knn10_zeros_as_missing",
              "knn10_neighbour_mean", "softimpute_fill_zeros", "iterative_fill_zeros"),
}


def baselines_for(regime: str) -> dict[str, Imputer]:
    """The baselines run in ``regime`` ("blind" or "aware"), by name, in report order."""
    if regime not in REGIMES:
        raise InvalidOptionError(f"regime must be one of {REGIMES}, not {regime!r}")
    return {name: BASELINES[name] for name in _BY_REGIME[regime]}
