"""Public functions: validate, prepare once, run the tests, assemble a DependencyResult."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..table import MicrobiomeTable
from . import _linear, _mutual_info
from ._prepare import (
    MIN_DF,
    InvalidOptionError,
    Prepared,
    TooFewSamplesError,
    check_number,
    check_table,
    prepare,
)
from ._result import EDGE_COLUMNS, DependencyResult, benjamini_hochberg

METHODS = ("both", "ftest", "granger", "mi")
MI_P_VALUES = ("permutation", "gamma", "chi2")
F_P_VALUES = ("moments", "f")


def directional_tests(
    table: MicrobiomeTable,
    *,
    method: str = "ftest",
    covariates=None,
    library_size: bool = True,
    order_column: str | None = None,
    group_column: str | None = None,
    ftest_p_value: str = "moments",
    min_nonzero: int = 10,
    alpha: float = 0.05,
) -> DependencyResult:
    """C_dir: nested linear-model F-tests for every ordered pair of taxa (closed form, vectorised).

    ``method="ftest"`` (cross-sectional, the default) compares y_i ~ covariates with
    y_i ~ covariates + x_j; the covariates are the intercept, log library size (``library_size``)
    and the metadata columns named in ``covariates`` (categorical ones as dummies). That F statistic
    is symmetric in i and j, so its edges are undirected. ``method="granger"`` is the paper's lagged
    test and needs a real time or order column (``order_column``; ``group_column`` keeps lags within
    a subject): y_i(t) ~ covariates(t) + y_i(t-1) vs. + x_j(t-1), with directed edges j -> i.
    Values are log10(relative abundance x 100 + 1); see :mod:`pydepmicro.dependency._linear` for the
    algebra and the handling of missing values. p-values are BH-adjusted over all pairs tested.

    Parameters
    ----------
    table : MicrobiomeTable (n_samples, n_taxa)
    method : {"ftest", "granger"}
    covariates : str or list of str, optional
        Metadata columns to adjust for; samples with a missing value in one are left out.
    library_size : bool
        Adjust for log library size (default True).
    order_column, group_column : str, optional
        Metadata columns with the time/order (numeric or dates) and the subject (lagged test only).
    ftest_p_value : {"moments", "f"}
        p-values of the cross-sectional test: "moments" (default) reads the F statistic's p from a
        beta distribution with the exact permutation mean and variance of r^2, which stays
        calibrated for zero-inflated taxa; "f" is the normal-theory F(1, n - k - 1) p-value
        (statsmodels'). Identical for normal data; see :mod:`pydepmicro.dependency._linear`.
        The lagged test always uses "f".
    min_nonzero : int
        Taxa with fewer nonzero values are left out (reported in ``result.excluded``).
    alpha : float
        FDR level of the edges.

    Returns
    -------
    DependencyResult with ``c_dir`` set and ``dep = c_dir``.
    """
    if method not in ("ftest", "granger"):
        raise InvalidOptionError(f"unknown directional method {method!r}", hint="use 'ftest' or 'granger'")
    return dependency_matrix(table, method=method, covariates=covariates, library_size=library_size,
                             order_column=order_column, group_column=group_column, ftest_p_value=ftest_p_value,
                             min_nonzero=min_nonzero, alpha=alpha)


def mutual_information_tests(
    table: MicrobiomeTable,
    *,
    n_bins: int = 3,
    n_permutations: int | None = None,
    p_value: str = "gamma",
    strata: int | None = None,
    batch_size: int | None = None,
    seed: int | None = 0,
    min_nonzero: int = 10,
    alpha: float = 0.05,
) -> DependencyResult:
    """C_mi: mutual information of every pair of taxa, zero as its own state, permutation p-values.

    Each taxon is discretised into state 0 (zero count) and ``n_bins`` quantile bins of its nonzero
    values (:func:`discretize`); the MI (nats) of every pair is computed from one-hot matrix
    products (:mod:`pydepmicro.dependency._mutual_info`).

    Sequencing depth: in sparse tables whether a taxon is seen at all depends on the library size,
    so every pair of taxa co-occurs more than chance and plain MI calls nearly every pair (TCMA
    COAD: 5,348 of 5,565 pairs). The statistic is therefore the MI conditional on ``strata``
    library-size strata (quantiles of the sample totals), sum_s n_s MI_s / n, with permutations
    within strata; default ``min(5, n_samples // 100)`` strata, 1 = plain MI.

    p-values, BH-adjusted over the p(p-1)/2 pairs:

    - ``"gamma"`` (default): a gamma distribution fitted by moments to the permutation null of
      G = 2 n MI of each pair. Unlike the raw permutation p-value it resolves p-values below
      1/(1 + n_permutations); without that, BH over thousands of pairs can call nothing (80
      simulated taxa, 200 samples: 0 edges with "permutation", 43 with "gamma").
    - ``"permutation"``: (1 + #{permuted MI >= observed}) / (1 + n_permutations).
    - ``"chi2"``: the (conditional) G-test, df = sum over strata of (r_i - 1)(r_j - 1) occupied
      states; no permutations.

    Permutations reorder the samples of one side of every pair at once and are computed
    ``batch_size`` at a time (default: sized to stay in cache). ``n_permutations`` defaults to
    1,000, or 200 when more than 300 taxa are tested (speed; the gamma fit needs only moments).
    Missing entries are left out pair by pair. Returns a DependencyResult with ``c_mi`` set.
    """
    return dependency_matrix(table, method="mi", n_bins=n_bins, n_permutations=n_permutations,
                             mi_p_value=p_value, mi_strata=strata, batch_size=batch_size, seed=seed,
                             min_nonzero=min_nonzero, alpha=alpha)


def dependency_matrix(
    table: MicrobiomeTable,
    method: str = "both",
    *,
    covariates=None,
    library_size: bool = True,
    order_column: str | None = None,
    group_column: str | None = None,
    ftest_p_value: str = "moments",
    n_bins: int = 3,
    n_permutations: int | None = None,
    mi_p_value: str = "gamma",
    mi_strata: int | None = None,
    batch_size: int | None = None,
    seed: int | None = 0,
    min_nonzero: int = 10,
    alpha: float = 0.05,
) -> DependencyResult:
    """Dep = C_dir OR C_mi (paper section IV-g), with the edge table and what was left out.

    ``method``: "both" (C_dir OR C_mi; C_dir is the lagged test when ``order_column`` is given,
    else the cross-sectional F-test), "ftest", "granger" or "mi" (one test only; Dep = that test).
    Other options: see :func:`directional_tests` (``covariates`` adjust the F-tests only) and
    :func:`mutual_information_tests` (``mi_p_value`` and ``mi_strata`` are its ``p_value`` and
    ``strata``). Each test is BH-adjusted on its own; Dep is the OR of the two graphs at ``alpha``.

    Returns
    -------
    DependencyResult; ``result.dep`` is the bool taxa x taxa matrix (sources x targets, every taxon
    of the table), ``result.attention_dep(taxa)`` the same for the model (rows = dependent taxon).

    Examples
    --------
    >>> from pydepmicro.datasets import simulate
    >>> sim = simulate(200, 30, seed=1)
    >>> res = dependency_matrix(sim.table, n_permutations=99)
    >>> res.dep.shape
    (30, 30)
    """
    check_table(table)
    if method not in METHODS:
        raise InvalidOptionError(f"unknown method {method!r}", hint=f"use one of {', '.join(METHODS)}")
    if ftest_p_value not in F_P_VALUES:
        raise InvalidOptionError(f"unknown F-test p-value method {ftest_p_value!r}",
                                 hint=f"use one of {', '.join(F_P_VALUES)}")
    if mi_p_value not in MI_P_VALUES:
        raise InvalidOptionError(f"unknown MI p-value method {mi_p_value!r}", hint=f"use one of {', '.join(MI_P_VALUES)}")
    check_number("alpha", alpha, 0.0, 1.0)
    check_number("n_bins", n_bins, 1, 50, integer=True)
    if mi_strata is not None:
        check_number("mi_strata", mi_strata, 1, 100, integer=True)
    if n_permutations is not None:
        check_number("n_permutations", n_permutations, 1 if mi_p_value != "gamma" else 10, integer=True)
    if batch_size is not None:
        check_number("batch_size", batch_size, 1, integer=True)
    directional = None
    if method in ("ftest", "granger"):
        directional = method
    elif method == "both":
        directional = "granger" if order_column is not None else "ftest"
    if directional == "granger" and order_column is None:
        raise InvalidOptionError(
            "the lagged (Granger) test needs a time or order column",
            path=table.source,
            hint="pass order_column= (--order COLUMN) naming a metadata column with the time point, or use "
            "the cross-sectional 'ftest'",
        )
    lag_columns = (order_column, group_column) if directional == "granger" else ()
    prep = prepare(table, covariates=covariates if directional else None, library_size=library_size,
                   min_nonzero=min_nonzero, extra_columns=lag_columns)

    frames, described = [], []
    c_dir = c_mi = None
    if directional == "ftest":
        frame, text = _run_ftest(prep, ftest_p_value)
        frames.append(frame)
        described.append(text)
    elif directional == "granger":
        frame, text = _run_granger(prep, order_column, group_column)
        frames.append(frame)
        described.append(text)
    if method in ("both", "mi"):
        if n_permutations is None:
            n_permutations = 1000 if len(prep.tested) <= 300 else 200
        if mi_strata is None:
            mi_strata = max(1, min(5, len(prep.samples) // 100))
        frame, text = _run_mi(prep, n_bins, n_permutations, mi_p_value, mi_strata, batch_size, seed)
        frames.append(frame)
        described.append(text)
    tests = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=EDGE_COLUMNS)
    ids = prep.all_taxa
    if directional:
        c_dir = _graph(tests[tests["test"] == directional], ids, alpha)
    if method in ("both", "mi"):
        c_mi = _graph(tests[tests["test"] == "mi"], ids, alpha)
    dep = c_dir if c_mi is None else (c_mi if c_dir is None else c_dir | c_mi)
    combined = " OR ".join(d.split(":")[0] for d in described)
    test_used = f"Dep = {combined}; " + "; ".join(described) + f"; edges at BH q < {alpha:g}"
    if prep.depth == "richness":
        test_used += "; depth = richness (the sample totals vary less than 2-fold: relative abundances)"
    params = {
        "method": method, "covariates": covariates, "library_size": library_size, "order_column": order_column,
        "group_column": group_column, "ftest_p_value": ftest_p_value, "n_bins": n_bins,
        "n_permutations": n_permutations, "mi_p_value": mi_p_value, "mi_strata": mi_strata, "seed": seed,
        "min_nonzero": min_nonzero, "alpha": alpha, "depth": prep.depth,
    }
    return DependencyResult(dep=dep, c_dir=c_dir, c_mi=c_mi, tests=tests, taxa=prep.taxa,
                            excluded_samples=prep.excluded_samples, test_used=test_used, alpha=float(alpha),
                            params=params)


def discretize(table: MicrobiomeTable, n_bins: int = 3) -> pd.DataFrame:
    """MI states (samples x taxa, int): -1 missing, 0 zero, 1..n_bins quantile bins of nonzero values.

    Bins are computed on log10(relative abundance x 100 + 1), per taxon over all samples.
    """
    from ._prepare import log_relative_abundance

    check_table(table)
    check_number("n_bins", n_bins, 1, 50, integer=True)
    states = _mutual_info.discretize_values(log_relative_abundance(table.counts), n_bins)
    return pd.DataFrame(states, index=table.sample_ids.copy(), columns=table.taxa_ids.copy())


# ---------------------------------------------------------------------- runners


def _covariate_text(prep: Prepared) -> str:
    names = [n for n in prep.design_names if n != "intercept"]
    return " + ".join(["1", *names])


def _run_ftest(prep: Prepared, p_value: str):
    n, k = prep.values.shape[0], prep.design.shape[1]
    if n - k - 1 < MIN_DF:
        raise TooFewSamplesError(
            f"{n} samples leave {n - k - 1} residual degrees of freedom for the F-test with {k} covariate "
            f"columns; at least {MIN_DF} are needed",
            hint="use more samples or fewer covariates",
        )
    r, f, p, df2, rank, a4 = _linear.cross_sectional(prep.values, prep.design)
    if p_value == "moments":
        p, log10p = _linear.permutation_moment_p(r, df2, a4)
    else:
        log10p = _linear.log10_f_sf(f, df2)
    frame = _pairs(prep, "ftest", f, p, np.sign(r), df2 + rank + 1, log10p, directed=False)
    df_text = f"F(1, {int(np.nanmax(df2))})" if not prep.has_missing else "F(1, pairwise n - k - 1)"
    how = ("p from a beta with the exact permutation moments of r^2" if p_value == "moments"
           else f"p from {df_text}")
    text = (f"ftest: cross-sectional nested F-test y_i ~ {_covariate_text(prep)} vs. + x_j, {how} "
            f"(symmetric, so undirected: the table has no time order) on {n} samples x {len(prep.tested)} taxa")
    return frame, text


def _run_granger(prep: Prepared, order_column: str, group_column: str | None):
    order = prep.meta[order_column]
    if pd.api.types.is_datetime64_any_dtype(order):
        key = order.to_numpy().astype("datetime64[ns]").astype(np.int64).astype(np.float64)
    else:
        key = pd.to_numeric(order, errors="coerce").to_numpy(dtype=float)
        if np.isnan(key).any():
            dates = pd.to_datetime(order, errors="coerce")
            if dates.isna().any():
                bad = order[np.isnan(key)].iloc[0]
                raise InvalidOptionError(
                    f"order column {order_column!r} holds {bad!r}, which is neither a number nor a date",
                    hint="give the time point as a number (day, visit) or an ISO date",
                )
            key = dates.to_numpy().astype("datetime64[ns]").astype(np.int64).astype(np.float64)
    groups = None
    if group_column is not None:
        groups = pd.factorize(prep.meta[group_column].astype(str))[0]
    frame_keys = pd.DataFrame({"g": 0 if groups is None else groups, "t": key})
    dup = frame_keys.duplicated()
    if dup.any():
        first = prep.samples[np.nonzero(dup.to_numpy())[0][0]]
        raise InvalidOptionError(
            f"{int(dup.sum())} samples share a time point with another sample of the same "
            f"{'group' if groups is not None else 'table'} (first: {first!r}), so the lag order is ambiguous",
            hint="pass group_column= (--group SUBJECT) so that lags stay within a subject, or fix the order column",
        )
    current, previous = _linear.lag_pairs(key, groups)
    k = prep.design.shape[1]
    if len(current) - k - 2 < MIN_DF:
        raise TooFewSamplesError(
            f"{len(current)} consecutive sample pairs leave {len(current) - k - 2} residual degrees of freedom "
            f"for the lagged F-test; at least {MIN_DF} are needed",
            hint="use more time points per subject, or the cross-sectional 'ftest'",
        )
    r, f, p, df2, rank = _linear.lagged(prep.values, prep.design, current, previous)
    # matrices are [target, source]; the frame wants [source, target]
    frame = _pairs(prep, "granger", f.T, p.T, np.sign(r.T), (df2 + rank + 2).T, _linear.log10_f_sf(f, df2).T,
                   directed=True)
    grouping = f" within {group_column!r}" if group_column else ""
    text = (f"granger: lagged F-test y_i(t) ~ {_covariate_text(prep)} + y_i(t-1) vs. + x_j(t-1), consecutive "
            f"samples by {order_column!r}{grouping} ({len(current)} lag pairs; directed j -> i)")
    return frame, text


def _run_mi(prep: Prepared, n_bins, n_permutations, p_value, n_strata, batch_size, seed):
    states = _mutual_info.discretize_values(prep.values, n_bins)
    strata = None
    if n_strata > 1:
        strata = pd.qcut(prep.library_sizes, n_strata, labels=False, duplicates="drop")
    mi, p, nn, log10p = _mutual_info.mi_tests(states, n_bins, n_permutations=n_permutations, p_value=p_value,
                                      batch_size=batch_size, seed=seed, strata=strata)
    frame = _pairs(prep, "mi", mi, p, np.sign(_pearson(prep.values)), nn, log10p, directed=False)
    how = {"permutation": f"permutation p-values ({n_permutations} permutations)",
           "gamma": f"p-values from a gamma fit to {n_permutations} permutations",
           "chi2": "chi-square (G-test) p-values"}[p_value]
    given = f"conditional on {int(strata.max()) + 1} library-size strata, " if strata is not None else ""
    text = (f"mi: mutual information of discretised abundances (zero + {n_bins} quantile bins of nonzero "
            f"values), {given}{how}")
    return frame, text


def _pearson(values: np.ndarray) -> np.ndarray:
    """Pairwise-complete-ish Pearson correlation (missing entries set to the taxon mean)."""
    mean = np.nanmean(values, axis=0)
    centred = np.nan_to_num(values - mean, nan=0.0)
    cross = centred.T @ centred
    ss = np.sqrt(np.diag(cross))
    with np.errstate(invalid="ignore", divide="ignore"):
        return cross / np.outer(ss, ss)


def _pairs(prep: Prepared, test: str, stat, p, sign, n, log10p, *, directed: bool) -> pd.DataFrame:
    """Long table of tested pairs from (p, p) matrices indexed [source, target]."""
    size = len(prep.tested)
    if directed:
        rows, cols = np.nonzero(~np.eye(size, dtype=bool))
    else:
        rows, cols = np.triu_indices(size, 1)
    pv = p[rows, cols]
    ok = ~np.isnan(pv)
    rows, cols, pv = rows[ok], cols[ok], pv[ok]
    ids = np.asarray(prep.tested, dtype=object)
    sign_values = np.nan_to_num(sign[rows, cols], nan=0.0).astype(np.int64)
    return pd.DataFrame({
        "source": ids[rows], "target": ids[cols], "test": test, "statistic": stat[rows, cols],
        "p": pv, "q": benjamini_hochberg(pv), "direction": "directed" if directed else "undirected",
        "sign": sign_values, "n": np.asarray(n)[rows, cols].astype(np.int64),
        "log10_p": np.asarray(log10p)[rows, cols],
    })


def _graph(tests: pd.DataFrame, ids: pd.Index, alpha: float) -> pd.DataFrame:
    matrix = np.zeros((len(ids), len(ids)), dtype=bool)
    sig = tests[tests["q"] < alpha]
    src = ids.get_indexer(sig["source"])
    dst = ids.get_indexer(sig["target"])
    matrix[src, dst] = True
    undirected = (sig["direction"] != "directed").to_numpy()
    matrix[dst[undirected], src[undirected]] = True
    np.fill_diagonal(matrix, False)
    return pd.DataFrame(matrix, index=ids.copy(), columns=ids.copy())
