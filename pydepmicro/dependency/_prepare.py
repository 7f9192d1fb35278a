"""Validation and preparation shared by every dependency test.

One :class:`Prepared` holds what all tests consume: the log relative abundances of the taxa that are
tested (samples x taxa, NaN = missing), the covariate design, and the report of what was left out
(taxa, samples) and why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import EmptyTableError, InvalidOptionError, TooFewSamplesError, examples
from ..table import MicrobiomeTable

#: fewest samples any test is run on (after samples without data or covariates are dropped)
MIN_SAMPLES = 10
#: fewest residual degrees of freedom of a nested F-test
MIN_DF = 3


@dataclass
class Prepared:
    """Inputs of the tests, restricted to the samples and taxa that are tested.

    Attributes
    ----------
    values : ndarray (n_samples, n_tested)
        log10(relative abundance x 100 + 1) of the tested taxa; NaN where the count is missing.
    nonzero : bool ndarray (n_samples, n_tested)
        Count > 0 (False where missing).
    samples, tested : Index
        Ids of the rows and columns of ``values``.
    all_taxa : Index
        Every taxon of the input table, in its order (the index of the matrices in the result).
    design : ndarray (n_samples, k)
        Covariates with the intercept first (may be rank deficient; the tests use its rank).
    design_names : list of str
    taxa : DataFrame
        One row per taxon of the input (index = taxon id): ``n_observed``, ``n_nonzero``,
        ``prevalence``, ``mean`` and ``variance`` of the transformed values, ``excluded`` (reason
        or "").
    excluded_samples : DataFrame
        ``sample``, ``reason`` for every sample left out.
    meta : DataFrame
        Sample metadata of the kept samples.
    library_sizes : ndarray (n_samples,)
        The sequencing depth the tests adjust for: the sum of the observed counts of each kept sample
        (all taxa, tested or not), or its number of nonzero taxa where the totals vary less than
        2-fold (see ``depth``).
    depth : {"library size", "richness"}
        What ``library_sizes`` holds. Relative abundances (totals within 2-fold) carry no depth, but
        how many taxa a sample shows still does (TCMA: r 0.81-0.91 with log read depth). Without an
        adjustment the tests call most pairs (TCMA HNSC: 85% of pairs on percentages, 17% on read
        counts, 17% on percentages with richness).
    """

    values: np.ndarray
    nonzero: np.ndarray
    samples: pd.Index
    tested: pd.Index
    all_taxa: pd.Index
    design: np.ndarray
    design_names: list
    taxa: pd.DataFrame
    excluded_samples: pd.DataFrame
    meta: pd.DataFrame
    library_sizes: np.ndarray
    depth: str = "library size"

    @property
    def has_missing(self) -> bool:
        return bool(np.isnan(self.values).any())


def log_relative_abundance(counts: np.ndarray) -> np.ndarray:
    """log10(counts / sample total x 100 + 1), shape kept; NaN stays NaN (paper eq. 10-11)."""
    from ..transforms import preprocess

    return preprocess(counts, scale=100.0, base=10.0)


def check_table(table) -> MicrobiomeTable:
    if not isinstance(table, MicrobiomeTable):
        raise TypeError(f"expected a MicrobiomeTable, got {type(table).__name__}")
    return table


def check_number(name: str, value, low: float, high: float = np.inf, *, integer: bool = False):
    ok = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.number))
    if isinstance(value, bool) or not ok or not (low <= value <= high) or (not integer and not np.isfinite(value)):
        kind = "an integer" if integer else "a number"
        span = f">= {low}" if high == np.inf else f"in [{low}, {high}]"
        raise InvalidOptionError(f"{name} must be {kind} {span}, got {value!r}", hint=f"pass {name} {span}")
    return value


def prepare(
    table: MicrobiomeTable,
    *,
    covariates=None,
    library_size: bool = True,
    min_nonzero: int = 10,
    extra_columns=(),
) -> Prepared:
    """Drop unusable samples and taxa (with reasons), transform, and build the covariate design.

    Samples left out: no observed abundance (all zero or all missing), or a missing value in a
    requested covariate or in ``extra_columns`` (e.g. the time column of a lagged test).
    Taxa left out: fewer than ``min_nonzero`` nonzero values, or no variance in the transformed
    values (among the kept samples).
    """
    check_table(table)
    check_number("min_nonzero", min_nonzero, 1, integer=True)
    covariates = _as_list(covariates)
    meta = table.sample_meta
    for column in [*covariates, *[c for c in extra_columns if c is not None]]:
        if column not in meta.columns:
            raise InvalidOptionError(
                f"the sample metadata has no column {column!r}",
                path=table.source,
                hint=f"choose from {examples(meta.columns, 8)}" if len(meta.columns) else
                "attach sample metadata (--meta) to use metadata columns",
            )

    counts = table.counts
    keep = np.ones(table.n_samples, dtype=bool)
    dropped: list[tuple[str, str]] = []
    empty = np.nan_to_num(counts, nan=0.0).sum(axis=1) <= 0
    for i in np.nonzero(empty)[0]:
        dropped.append((table.sample_ids[i], "no observed abundance (all zero or missing)"))
    keep &= ~empty
    for column in [*covariates, *[c for c in extra_columns if c is not None]]:
        bad = meta[column].isna().to_numpy() & keep
        for i in np.nonzero(bad)[0]:
            dropped.append((table.sample_ids[i], f"missing value in metadata column {column!r}"))
        keep &= ~bad

    samples = table.sample_ids[keep]
    excluded_samples = pd.DataFrame(dropped, columns=["sample", "reason"])
    n = int(keep.sum())
    if n < MIN_SAMPLES:
        raise TooFewSamplesError(
            f"only {n} usable samples ({len(dropped)} of {table.n_samples} left out: no observed abundance "
            f"or missing covariates); dependency tests need at least {MIN_SAMPLES}",
            path=table.source,
            hint="use a table with more samples, or fewer metadata covariates with missing values",
        )

    kept_counts = counts[keep]
    values = log_relative_abundance(kept_counts)
    observed = ~np.isnan(kept_counts)
    nonzero = np.nan_to_num(kept_counts, nan=0.0) > 0
    n_obs = observed.sum(axis=0)
    n_nz = nonzero.sum(axis=0)
    mean = _safe_nanmean(values)
    variance = _safe_nanvar(values)
    reasons = np.full(table.n_taxa, "", dtype=object)
    for j in range(table.n_taxa):
        if n_obs[j] < MIN_SAMPLES:
            reasons[j] = f"observed in fewer than {MIN_SAMPLES} usable samples ({n_obs[j]})"
        elif n_nz[j] == 0:
            reasons[j] = "all zero"
        elif n_nz[j] < min_nonzero:
            reasons[j] = f"fewer than {min_nonzero} nonzero values ({n_nz[j]})"
        elif not variance[j] > 1e-12 * max(1.0, mean[j] ** 2):
            reasons[j] = "no variance"
    taxa = pd.DataFrame({
        "n_observed": n_obs, "n_nonzero": n_nz, "prevalence": n_nz / np.maximum(n_obs, 1),
        "mean": mean, "variance": variance, "excluded": reasons,
    }, index=table.taxa_ids.copy())
    taxa.index.name = "taxon"
    tested_mask = reasons == ""
    tested = table.taxa_ids[tested_mask]
    if len(tested) < 2:
        raise EmptyTableError(
            f"{len(tested)} of {table.n_taxa} taxa left to test after leaving out "
            f"{int((~tested_mask).sum())} (too few nonzero values or no variance)",
            path=table.source,
            hint=f"lower min_nonzero (now {min_nonzero}, --min-nonzero) or use a less sparse table",
        )

    library_sizes = np.nansum(kept_counts, axis=1)
    depth = "library size"
    if _carries_no_depth(library_sizes):
        library_sizes = nonzero.sum(axis=1).astype(float)
        depth = "richness"
    design, names = _design(library_sizes, meta.loc[samples], covariates, library_size, depth)
    return Prepared(
        values=values[:, tested_mask], nonzero=nonzero[:, tested_mask], samples=samples, tested=tested,
        all_taxa=table.taxa_ids, design=design, design_names=names, taxa=taxa,
        excluded_samples=excluded_samples, meta=meta.loc[samples], library_sizes=library_sizes, depth=depth,
    )


def _carries_no_depth(library_sizes: np.ndarray) -> bool:
    """True when the sample totals vary less than 2-fold (5th to 95th percentile): relative abundances,
    rarefied tables, or relative abundances with entries zeroed (TCMA COAD, blind benchmark input:
    65-100). Read counts span orders of magnitude (TCMA COAD: 198 to 437,380)."""
    if len(library_sizes) < 2:
        return False
    low, high = np.percentile(library_sizes, [5, 95])
    return bool(high < 2 * low)


def _safe_nanmean(values: np.ndarray) -> np.ndarray:
    obs = ~np.isnan(values)
    total = np.where(obs, values, 0.0).sum(axis=0)
    count = obs.sum(axis=0)
    return np.divide(total, count, out=np.full(values.shape[1], np.nan), where=count > 0)


def _safe_nanvar(values: np.ndarray) -> np.ndarray:
    obs = ~np.isnan(values)
    mean = _safe_nanmean(values)
    dev = np.where(obs, values - np.nan_to_num(mean), 0.0)
    count = obs.sum(axis=0)
    return np.divide((dev**2).sum(axis=0), count, out=np.full(values.shape[1], np.nan), where=count > 0)


def _as_list(covariates) -> list:
    if covariates is None:
        return []
    if isinstance(covariates, str):
        return [covariates]
    return list(covariates)


def _design(library_sizes: np.ndarray, meta: pd.DataFrame, covariates: list, library_size: bool,
            depth: str = "library size"):
    """Intercept, log depth (library size or richness), then each covariate (numeric as is,
    categorical as 0/1 dummies)."""
    columns = [np.ones(len(library_sizes))]
    names = ["intercept"]
    if library_size:
        columns.append(np.log(library_sizes))
        names.append("log_" + depth.replace(" ", "_"))
    for column in covariates:
        series = meta[column]
        if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
            dummies = pd.get_dummies(series.astype(str), prefix=column, drop_first=True, dtype=float)
            columns.extend(dummies.to_numpy().T)
            names.extend(dummies.columns)
        else:
            columns.append(series.to_numpy(dtype=float))
            names.append(column)
    return np.column_stack(columns), names


def orthonormal_basis(design: np.ndarray) -> np.ndarray:
    """Orthonormal basis (n, rank) of the column space of ``design`` (rank-revealing SVD)."""
    scale = np.abs(design).max(axis=0)
    scaled = design / np.where(scale > 0, scale, 1.0)
    u, s, _ = np.linalg.svd(scaled, full_matrices=False)
    rank = int((s > s.max() * max(design.shape) * np.finfo(float).eps).sum()) if s.size else 0
    return u[:, :rank]
