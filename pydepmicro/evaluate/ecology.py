"""Ecological fidelity of synthetic microbiome tables: real vs synthetic, beside a real-vs-real floor.

Every public function takes a real and a synthetic table (:class:`~pydepmicro.MicrobiomeTable`,
DataFrame or array; samples x taxa, the same taxa), validates them (clear errors for mismatched or
missing taxa, empty tables, negative, NaN or infinite values) and hands plain arrays to a private
function that computes. :func:`evaluate_generation` runs them all; :func:`metrics_frame` flattens
its result into one tidy row per metric; :func:`plot_generation` draws the overview figure.

Conventions (each a choice; written here so the numbers can be read):

- **Sparsity** is the share of zero entries. Its deviation is reported absolute
  (``|s_syn - s_real|``) and relative (``/ s_real``), with the per-taxon mean absolute deviation, the
  Kolmogorov-Smirnov distance between per-sample zero fractions and the shares of all-zero samples.
- **Prevalence** is the share of samples where a taxon is non-zero; correlated over taxa (Pearson and
  Spearman).
- **Beta diversity** is computed on relative abundances: Bray-Curtis, and weighted (normalised) and
  unweighted UniFrac when a tree is available (see :mod:`._tree`; without one UniFrac is skipped
  with the reason). All-zero samples (common in TCMA: 209 of 530 STAD files) have no composition; we
  set their distance to 0 from each other and 1 (the maximum) from any non-empty sample.
- **Discrepancies** from one distance matrix over real + synthetic samples: ``gap`` = mean
  within-synthetic minus mean within-real distance (signed); ``cross_minus_within`` = mean
  real-synthetic distance minus the average of the two within means; ``centroid`` = distance of the
  two group centroids in the principal-coordinates space of the matrix (exact from the squared
  distances: ``mean d2(R,S) - mean d2(R,R)/2 - mean d2(S,S)/2``, including the zero diagonal).
- **Floor and size matching**: a statistic computed on N real vs M synthetic samples is not
  comparable with one on N/2 vs N/2 real samples (PERMANOVA's R^2 under no difference is about
  1/(n-1)). So each repeat splits the real samples into halves A and B, draws |B| synthetic samples
  S, and computes the statistic on A vs S (``matched``) and on A vs B (``floor``); both are averaged
  over ``n_splits`` repeats. ``value`` is the statistic on all real vs all synthetic samples.
- **PERMANOVA** (scikit-bio, pseudo-F) gives F, p, N and R^2 = F (g-1) / (F (g-1) + N - g); PERMDISP
  tests the difference in dispersion (a significant PERMANOVA with a significant PERMDISP can be a
  spread difference rather than a location one).
- **Classifier two-sample test**: a classifier (random forest or logistic regression) learns to tell
  real from synthetic samples from log10 relative abundances and presence flags (library size is
  left out: it is resampled, not generated); the AUROC of its stratified cross-validated
  predictions. 0.5 = indistinguishable. An AUROC clearly *below* 0.5 is not "better than real": when
  the generator was fitted on the very samples it is compared with, its moments track the whole
  real table, so the real samples held out of each training fold deviate from the training reals
  in the direction of the synthetic ones and get classified as synthetic. It signals a generator
  that reproduces the particular real table (memorisation, in the extreme). The clean test
  compares with real samples the generator never saw (``inst/scripts/eval_copula_tcma.py`` does
  both).

All arrays are samples x taxa.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from ..errors import (
    EmptyTableError,
    IdMismatchError,
    InvalidOptionError,
    InvalidValueError,
    TooFewSamplesError,
    examples,
)

BETA_METRICS = ("braycurtis", "weighted_unifrac", "unweighted_unifrac")
CLASSIFIERS = ("forest", "logistic")


# ---------------------------------------------------------------------- validation


def _as_matrix(table, what: str):
    """(values float ndarray (n, q), taxa ids or None)."""
    from ..table import MicrobiomeTable

    if isinstance(table, MicrobiomeTable):
        x, taxa = table.counts, list(table.taxa_ids)
    elif isinstance(table, pd.DataFrame):
        x, taxa = table.to_numpy(), [str(c) for c in table.columns]
    else:
        x, taxa = table, None
    try:
        x = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(f"the {what} table is not numeric ({exc})",
                                hint="pass a MicrobiomeTable, a DataFrame or an array of abundances") from exc
    if x.ndim != 2:
        raise InvalidValueError(f"the {what} table must be 2-d (samples x taxa), got shape {x.shape}",
                                hint="pass samples as rows and taxa as columns")
    if x.size == 0:
        raise EmptyTableError(f"the {what} table is empty ({x.shape[0]} samples x {x.shape[1]} taxa)",
                              hint="pass a table with samples and taxa")
    if np.isnan(x).any():
        raise InvalidValueError(f"the {what} table has {int(np.isnan(x).sum())} missing (NaN) entries",
                                hint="impute or drop them first; these metrics compare complete tables")
    if not np.isfinite(x).all() or (x < 0).any():
        bad = int((~np.isfinite(x)).sum() + (x < 0).sum())
        raise InvalidValueError(f"the {what} table has {bad} negative or infinite values",
                                hint="give non-negative abundances (counts or relative abundances)")
    return x, taxa


def _check_pair(real, synthetic, *, min_samples: int = 2):
    """Validated (real (n, q), synthetic (m, q), taxa ids); synthetic columns put in real's order."""
    xr, tr = _as_matrix(real, "real")
    xs, ts = _as_matrix(synthetic, "synthetic")
    if tr is not None and ts is not None:
        if tr != ts:
            only_r = [t for t in tr if t not in set(ts)]
            only_s = [t for t in ts if t not in set(tr)]
            if only_r or only_s:
                parts = []
                if only_r:
                    parts.append(f"{examples(only_r)} real taxa are not in the synthetic table")
                if only_s:
                    parts.append(f"{examples(only_s)} synthetic taxa are not in the real table")
                raise IdMismatchError("; ".join(parts),
                                      hint="generate from a model trained on this table, or subset both to "
                                           "the shared taxa (table.subset(taxa=...))")
            xs = xs[:, [ts.index(t) for t in tr]]
    elif xr.shape[1] != xs.shape[1]:
        raise IdMismatchError(f"real has {xr.shape[1]} taxa but synthetic has {xs.shape[1]}",
                              hint="pass tables over the same taxa in the same order")
    for x, what in ((xr, "real"), (xs, "synthetic")):
        if x.shape[0] < min_samples:
            raise TooFewSamplesError(f"the {what} table has {x.shape[0]} samples; this needs at least "
                                     f"{min_samples}", hint="pass more samples")
    taxa = tr if tr is not None else ts if ts is not None else [f"taxon_{j}" for j in range(xr.shape[1])]
    return xr, xs, taxa


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InvalidOptionError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


# ---------------------------------------------------------------------- sparsity and prevalence


def sparsity(table) -> float:
    """Share of zero entries of ``table`` (samples x taxa)."""
    x, _ = _as_matrix(table, "given")
    return float((x == 0).mean())


def sparsity_deviation(real, synthetic) -> dict:
    """Sparsity of real vs synthetic.

    Returns
    -------
    dict
        ``real``, ``synthetic`` (zero fractions), ``absolute`` = ``|syn - real|``, ``relative`` =
        absolute / real, ``per_taxon_mae`` (mean over taxa of the absolute difference in zero
        fraction), ``per_sample_ks`` (KS distance between per-sample zero fractions),
        ``all_zero_samples_real`` / ``_synthetic`` (shares).
    """
    xr, xs, _ = _check_pair(real, synthetic, min_samples=1)
    return _sparsity_deviation(xr, xs)


def _sparsity_deviation(xr: np.ndarray, xs: np.ndarray) -> dict:
    from scipy.stats import ks_2samp

    zr, zs = xr == 0, xs == 0
    sr, ss = float(zr.mean()), float(zs.mean())
    return {
        "real": sr, "synthetic": ss, "absolute": abs(ss - sr),
        "relative": abs(ss - sr) / sr if sr > 0 else (0.0 if ss == 0 else math.inf),
        "per_taxon_mae": float(np.abs(zr.mean(0) - zs.mean(0)).mean()),
        "per_sample_ks": float(ks_2samp(zr.mean(1), zs.mean(1)).statistic),
        "all_zero_samples_real": float(zr.all(1).mean()),
        "all_zero_samples_synthetic": float(zs.all(1).mean()),
    }


def prevalence_correlation(real, synthetic) -> dict:
    """Correlation over taxa of prevalence (share of samples where the taxon is non-zero).

    Returns
    -------
    dict
        ``pearson``, ``spearman`` (NaN when either prevalence vector is constant), ``mae``
        (mean absolute difference of prevalences).
    """
    xr, xs, _ = _check_pair(real, synthetic, min_samples=1)
    return _prevalence_correlation(xr, xs)


def _prevalence_correlation(xr: np.ndarray, xs: np.ndarray) -> dict:
    from scipy.stats import pearsonr, spearmanr

    pr, ps = (xr > 0).mean(0), (xs > 0).mean(0)
    if pr.std() == 0 or ps.std() == 0 or len(pr) < 3:
        pearson = spearman = float("nan")
    else:
        pearson, spearman = float(pearsonr(pr, ps)[0]), float(spearmanr(pr, ps)[0])
    return {"pearson": pearson, "spearman": spearman, "mae": float(np.abs(pr - ps).mean())}


# ---------------------------------------------------------------------- distances


def _relative(x: np.ndarray) -> np.ndarray:
    totals = x.sum(1, keepdims=True)
    return np.divide(x, totals, out=np.zeros_like(x), where=totals > 0)


def _distances(x: np.ndarray, metric: str, taxa, tree=None) -> np.ndarray:
    """Square distance matrix (n, n) of the rows of ``x`` (scikit-bio); empty rows by the convention."""
    from skbio.diversity import beta_diversity

    p = _relative(x)
    full = p.sum(1) > 0
    n = len(x)
    d = np.ones((n, n))
    d[np.ix_(~full, ~full)] = 0.0
    idx = np.nonzero(full)[0]
    if len(idx) >= 2:
        ids = [str(i) for i in idx]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if metric == "braycurtis":
                dm = beta_diversity("braycurtis", p[idx], ids=ids)
            elif metric == "weighted_unifrac":
                # scikit-bio's UniFrac casts abundances to int: scale proportions to integers (parts per
                # 10^9, present entries at least 1) so neither values nor presence are lost
                w = np.where(p[idx] > 0, np.maximum(np.rint(p[idx] * 1e9), 1), 0).astype(np.int64)
                dm = beta_diversity("weighted_unifrac", w, ids=ids, taxa=list(taxa), tree=tree, normalized=True)
            elif metric == "unweighted_unifrac":
                dm = beta_diversity("unweighted_unifrac", (p[idx] > 0).astype(int), ids=ids, taxa=list(taxa),
                                    tree=tree)
            else:
                raise InvalidOptionError(f"unknown metric {metric!r}", hint=f"use one of {', '.join(BETA_METRICS)}")
        d[np.ix_(idx, idx)] = np.nan_to_num(dm.data, nan=0.0)
    np.fill_diagonal(d, 0.0)
    return d


def _within_cross(d: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict:
    """Discrepancy of index sets ``a`` (real) and ``b`` (other) under the square matrix ``d``."""
    daa, dbb, dab = d[np.ix_(a, a)], d[np.ix_(b, b)], d[np.ix_(a, b)]
    iu_a, iu_b = np.triu_indices(len(a), 1), np.triu_indices(len(b), 1)
    wa, wb, c = daa[iu_a].mean(), dbb[iu_b].mean(), dab.mean()
    cen2 = (dab ** 2).mean() - (daa ** 2).mean() / 2 - (dbb ** 2).mean() / 2
    return {"within_real": float(wa), "within_other": float(wb), "gap": float(wb - wa),
            "cross_minus_within": float(c - (wa + wb) / 2), "centroid": float(math.sqrt(max(cen2, 0.0)))}


def _permanova(d: np.ndarray, a: np.ndarray, b: np.ndarray, permutations: int, seed: int,
               dispersion: bool = False) -> dict:
    from skbio import DistanceMatrix
    from skbio.stats.distance import permanova, permdisp

    idx = np.concatenate([a, b])
    dm = DistanceMatrix(d[np.ix_(idx, idx)], ids=[str(i) for i in range(len(idx))])
    grouping = ["real"] * len(a) + ["other"] * len(b)
    res = permanova(dm, grouping, permutations=permutations, seed=seed)
    f, n = float(res["test statistic"]), int(res["sample size"])
    out = {"F": f, "p": float(res["p-value"]) if permutations else float("nan"), "N": n,
           "R2": f / (f + n - 2) if np.isfinite(f) else float("nan")}
    if dispersion:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:  # spatial median (vegan's default); scikit-bio's fails when it meets a data point
                disp, test = permdisp(dm, grouping, permutations=permutations, seed=seed), "median"
            except ZeroDivisionError:
                disp, test = permdisp(dm, grouping, test="centroid", permutations=permutations, seed=seed), "centroid"
        out["permdisp_F"] = float(disp["test statistic"])
        out["permdisp_test"] = test
        out["permdisp_p"] = float(disp["p-value"]) if permutations else float("nan")
    return out


def _splits(n_real: int, n_syn: int, n_splits: int, seed: int):
    """``n_splits`` (A, B, S): halves of the real indices and |B| synthetic indices (offset by n_real)."""
    rng = np.random.default_rng(seed)
    for _ in range(n_splits):
        perm = rng.permutation(n_real)
        half = n_real // 2
        k = min(n_real - half, n_syn)
        yield perm[:half], perm[half:half + k], n_real + rng.choice(n_syn, size=k, replace=False)


def beta_discrepancy(real, synthetic, *, metric: str = "braycurtis", tree=None, n_splits: int = 5,
                     permutations: int = 999, seed: int = 0) -> dict:
    """Beta-diversity discrepancy of real vs synthetic samples beside the real-vs-real floor.

    Parameters
    ----------
    real : table, shape (n_real, n_taxa)
    synthetic : table, shape (n_synthetic, n_taxa)
    metric : {"braycurtis", "weighted_unifrac", "unweighted_unifrac"}
    tree : skbio.TreeNode, optional
        Needed for UniFrac; tips = taxon ids (see :func:`pydepmicro.evaluate._tree.table_tree`).
    n_splits : int
        Repeats of the real-half split (floor and size-matched comparison).
    permutations : int
        PERMANOVA / PERMDISP permutations (0: no p-values).
    seed : int

    Returns
    -------
    dict
        ``value`` (all real vs all synthetic: within_real, within_other, gap, cross_minus_within,
        centroid, PERMANOVA F, p, N, R2, permdisp_F, permdisp_p), ``matched`` and ``floor`` (means
        over the splits of the same statistics, without p-values).
    """
    xr, xs, taxa = _check_pair(real, synthetic, min_samples=2)
    if xr.shape[0] < 4:
        raise TooFewSamplesError(f"the real table has {xr.shape[0]} samples; the real-vs-real floor needs "
                                 "at least 4", hint="pass more real samples")
    if metric not in BETA_METRICS:
        raise InvalidOptionError(f"unknown metric {metric!r}", hint=f"use one of {', '.join(BETA_METRICS)}")
    if metric != "braycurtis":
        if tree is None:
            raise InvalidOptionError(f"{metric} needs a tree", hint="pass tree= (see table_tree)")
        from ._tree import read_newick_tree

        tree = read_newick_tree(tree, taxa)
    n_splits = _check_int(n_splits, "n_splits", 1)
    permutations = _check_int(permutations, "permutations", 0)
    d = _distances(np.vstack([xr, xs]), metric, taxa, tree)
    return _beta_report(d, len(xr), len(xs), n_splits, permutations, seed)


def _beta_report(d: np.ndarray, n_real: int, n_syn: int, n_splits: int, permutations: int, seed: int) -> dict:
    a, b = np.arange(n_real), np.arange(n_real, n_real + n_syn)
    value = {**_within_cross(d, a, b), **_permanova(d, a, b, permutations, seed, dispersion=True)}
    matched, floor = [], []
    for ra, rb, s in _splits(n_real, n_syn, n_splits, seed):
        matched.append({**_within_cross(d, ra, s), **_permanova(d, ra, s, 0, seed)})
        floor.append({**_within_cross(d, ra, rb), **_permanova(d, ra, rb, 0, seed)})
    keys = ("within_real", "within_other", "gap", "cross_minus_within", "centroid", "F", "R2", "N")
    mean = lambda rows: {k: float(np.mean([r[k] for r in rows])) for k in keys}
    return {"value": value, "matched": mean(matched), "floor": mean(floor)}


# ---------------------------------------------------------------------- classifier two-sample test


def _features(x: np.ndarray, pseudo: float) -> np.ndarray:
    p = _relative(x)
    return np.hstack([np.log10(p + pseudo), (p > 0).astype(float)])


def _auroc(fa: np.ndarray, fb: np.ndarray, classifier: str, folds: int, seed: int) -> float:
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = np.vstack([fa, fb])
    y = np.r_[np.zeros(len(fa)), np.ones(len(fb))]
    folds = max(2, min(folds, len(fa), len(fb)))
    if classifier == "forest":
        from sklearn.ensemble import RandomForestClassifier

        model = RandomForestClassifier(n_estimators=200, min_samples_leaf=2, n_jobs=1, random_state=seed)
    else:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prob = cross_val_predict(model, x, y, cv=cv, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, prob))


def classifier_two_sample_test(real, synthetic, *, classifier: str = "forest", folds: int = 5,
                               n_splits: int = 2, seed: int = 0) -> dict:
    """AUROC of a classifier telling real from synthetic samples, beside its real-vs-real floor.

    Parameters
    ----------
    real : table, shape (n_real, n_taxa)
    synthetic : table, shape (n_synthetic, n_taxa)
    classifier : {"forest", "logistic"}
        Random forest (200 trees) or L2 logistic regression on standardised features.
    folds : int
        Stratified cross-validation folds.
    n_splits : int
        Real-half splits for the floor (0: no floor).
    seed : int

    Returns
    -------
    dict
        ``auroc`` (all real vs all synthetic), ``matched`` (half of the real vs as many synthetic
        samples) and ``floor`` (half vs half of the real), both averaged over the splits.
    """
    xr, xs, _ = _check_pair(real, synthetic, min_samples=2)
    if classifier not in CLASSIFIERS:
        raise InvalidOptionError(f"unknown classifier {classifier!r}", hint=f"use one of {', '.join(CLASSIFIERS)}")
    return _classifier_report(xr, xs, classifier, _check_int(folds, "folds", 2),
                              _check_int(n_splits, "n_splits", 0), seed)


def _classifier_report(xr, xs, classifier, folds, n_splits, seed) -> dict:
    both = _relative(np.vstack([xr, xs]))
    pseudo = float(both[both > 0].min()) / 2 if (both > 0).any() else 1e-6
    f = _features(np.vstack([xr, xs]), pseudo)
    fr, fs = f[: len(xr)], f[len(xr):]
    out = {"classifier": classifier, "auroc": _auroc(fr, fs, classifier, folds, seed)}
    if n_splits and len(xr) >= 4:
        matched, floor = [], []
        for ra, rb, s in _splits(len(xr), len(xs), n_splits, seed):
            matched.append(_auroc(fr[ra], f[s], classifier, folds, seed))
            floor.append(_auroc(fr[ra], fr[rb], classifier, folds, seed))
        out["matched"], out["floor"] = float(np.mean(matched)), float(np.mean(floor))
    return out


# ---------------------------------------------------------------------- everything


def evaluate_generation(real, synthetic, *, tree=None, tcma_taxonomy=None, seed: int = 0, n_splits: int = 5,
                        permutations: int = 999, classifier: str = "forest", folds: int = 5,
                        classifier_splits: int = 2, metrics=BETA_METRICS) -> dict:
    """All ecological fidelity metrics of ``synthetic`` against ``real``.

    Parameters
    ----------
    real : MicrobiomeTable, DataFrame or array, shape (n_real, n_taxa)
    synthetic : same kind, shape (n_synthetic, n_taxa); same taxa (any order when ids are given)
    tree : str, Path or skbio.TreeNode, optional
        Newick tree for UniFrac. Else ``tcma_taxonomy`` (TCMA lineage folder), else the real table's
        taxonomy; with none of these UniFrac is skipped and ``report["tree"]`` says why.
    seed, n_splits, permutations, classifier, folds, classifier_splits
        See :func:`beta_discrepancy` and :func:`classifier_two_sample_test`.
    metrics : sequence of str
        Beta-diversity metrics to compute (subset of ``BETA_METRICS``).

    Returns
    -------
    dict (JSON-serialisable)
        ``n_real``, ``n_synthetic``, ``n_taxa``, ``tree`` (source or reason for skipping),
        ``sparsity``, ``prevalence``, ``beta`` (per metric: value / matched / floor, or
        ``{"skipped": reason}``), ``classifier``, ``settings``. :func:`metrics_frame` flattens it.
    """
    from ..table import MicrobiomeTable
    from ._tree import read_newick_tree, table_tree

    xr, xs, taxa = _check_pair(real, synthetic, min_samples=2)
    if len(xr) < 4:
        raise TooFewSamplesError(f"the real table has {len(xr)} samples; the real-vs-real floor needs at least 4",
                                 hint="pass more real samples")
    unknown = [m for m in metrics if m not in BETA_METRICS]
    if unknown or classifier not in CLASSIFIERS:
        raise InvalidOptionError(f"unknown metric or classifier: {unknown or classifier!r}",
                                 hint=f"metrics: {', '.join(BETA_METRICS)}; classifier: {', '.join(CLASSIFIERS)}")
    n_splits = _check_int(n_splits, "n_splits", 1)
    permutations = _check_int(permutations, "permutations", 0)
    folds, classifier_splits = _check_int(folds, "folds", 2), _check_int(classifier_splits, "classifier_splits", 0)
    tree_obj, tree_note = None, "not needed"
    if any(m != "braycurtis" for m in metrics):
        if isinstance(real, MicrobiomeTable):
            ref = real.subset(taxa=taxa) if list(real.taxa_ids) != taxa else real
            tree_obj, tree_note = table_tree(ref, tree=tree, tcma_taxonomy=tcma_taxonomy)
        elif tree is not None:
            tree_obj, tree_note = read_newick_tree(tree, taxa), f"Newick tree {tree}"
        elif tcma_taxonomy is not None:
            from ._tree import tree_from_tcma_taxonomy

            tree_obj = tree_from_tcma_taxonomy(tcma_taxonomy, taxa)
            tree_note = f"TCMA lineage table in {tcma_taxonomy}"
        else:
            tree_note = "no tree: plain arrays carry no taxonomy and no tree was given"
    report = {"n_real": len(xr), "n_synthetic": len(xs), "n_taxa": len(taxa), "tree": tree_note,
              "sparsity": _sparsity_deviation(xr, xs), "prevalence": _prevalence_correlation(xr, xs), "beta": {}}
    both = np.vstack([xr, xs])
    for metric in metrics:
        if metric != "braycurtis" and tree_obj is None:
            report["beta"][metric] = {"skipped": tree_note}
            continue
        d = _distances(both, metric, taxa, tree_obj)
        report["beta"][metric] = _beta_report(d, len(xr), len(xs), n_splits, permutations, seed)
    report["classifier"] = _classifier_report(xr, xs, classifier, folds, classifier_splits, seed)
    report["settings"] = {"seed": seed, "n_splits": n_splits, "permutations": permutations, "classifier": classifier,
                          "folds": folds, "classifier_splits": classifier_splits, "metrics": list(metrics)}
    return report


def metrics_frame(report: dict) -> pd.DataFrame:
    """One row per metric of an :func:`evaluate_generation` report.

    Returns
    -------
    DataFrame
        Columns ``group`` (sparsity, prevalence, braycurtis, ..., classifier), ``metric``, ``value``
        (real vs synthetic, all samples), ``matched`` and ``floor`` (size-matched real vs synthetic
        and real vs real, where defined; NaN otherwise).
    """
    rows = []
    nan = float("nan")
    for group in ("sparsity", "prevalence"):
        rows += [(group, k, v, nan, nan) for k, v in report[group].items()]
    for metric, res in report["beta"].items():
        if "skipped" in res:
            rows.append((metric, "skipped", nan, nan, nan))
            continue
        for k, v in res["value"].items():
            if isinstance(v, str):  # permdisp_test: in the JSON report only
                continue
            rows.append((metric, k, v, res["matched"].get(k, nan), res["floor"].get(k, nan)))
    c = report["classifier"]
    rows.append(("classifier", f"auroc_{c['classifier']}", c["auroc"], c.get("matched", nan), c.get("floor", nan)))
    return pd.DataFrame(rows, columns=["group", "metric", "value", "matched", "floor"])


# ---------------------------------------------------------------------- figure


def plot_generation(real, synthetic, path=None, *, seed: int = 0, max_points: int = 600):
    """Overview figure: prevalence scatter, per-sample sparsity, mean log abundance, Bray-Curtis PCoA.

    Parameters
    ----------
    real, synthetic : tables, shapes (n_real, n_taxa), (n_synthetic, n_taxa)
    path : str or Path, optional
        Where to save (PNG/PDF by extension); the caller handles overwriting. None: only return it.
    max_points : int
        At most this many samples per group in the PCoA (random, seeded).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from skbio import DistanceMatrix
    from skbio.stats.ordination import pcoa

    xr, xs, taxa = _check_pair(real, synthetic, min_samples=2)
    fig, ax = plt.subplots(2, 2, figsize=(10, 9))
    pr, ps = (xr > 0).mean(0), (xs > 0).mean(0)
    ax[0, 0].scatter(pr, ps, s=12, alpha=0.7)
    ax[0, 0].plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
    ax[0, 0].set(xlabel="prevalence (real)", ylabel="prevalence (synthetic)", title="Taxon prevalence")
    bins = np.linspace(0, 1, 26)
    ax[0, 1].hist((xr == 0).mean(1), bins=bins, alpha=0.6, label=f"real ({len(xr)})", density=True)
    ax[0, 1].hist((xs == 0).mean(1), bins=bins, alpha=0.6, label=f"synthetic ({len(xs)})", density=True)
    ax[0, 1].set(xlabel="zero fraction per sample", ylabel="density", title="Per-sample sparsity")
    ax[0, 1].legend()
    with np.errstate(all="ignore"):
        lr, ls_ = np.log10(_relative(xr)), np.log10(_relative(xs))
    mr = np.array([col[np.isfinite(col)].mean() if np.isfinite(col).any() else np.nan for col in lr.T])
    ms = np.array([col[np.isfinite(col)].mean() if np.isfinite(col).any() else np.nan for col in ls_.T])
    ax[1, 0].scatter(mr, ms, s=12, alpha=0.7)
    lim = [np.nanmin(np.r_[mr, ms, 0]) - 0.2, 0.1] if np.isfinite(np.r_[mr, ms]).any() else [-1, 0]
    ax[1, 0].plot(lim, lim, color="grey", lw=1, ls="--")
    ax[1, 0].set(xlabel="mean log10 rel. abundance where present (real)", ylabel="(synthetic)",
                 title="Abundance where present")
    rng = np.random.default_rng(seed)
    ir = rng.choice(len(xr), size=min(len(xr), max_points), replace=False)
    is_ = rng.choice(len(xs), size=min(len(xs), max_points), replace=False)
    d = _distances(np.vstack([xr[ir], xs[is_]]), "braycurtis", taxa)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coords = pcoa(DistanceMatrix(d), method="fsvd", dimensions=2)
    pc = coords.samples.to_numpy()
    expl = coords.proportion_explained.to_numpy()
    ax[1, 1].scatter(pc[: len(ir), 0], pc[: len(ir), 1], s=8, alpha=0.5, label="real")
    ax[1, 1].scatter(pc[len(ir):, 0], pc[len(ir):, 1], s=8, alpha=0.5, label="synthetic")
    ax[1, 1].set(xlabel=f"PCo1 ({100 * expl[0]:.0f}%)", ylabel=f"PCo2 ({100 * expl[1]:.0f}%)",
                 title="Bray-Curtis PCoA")
    ax[1, 1].legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
