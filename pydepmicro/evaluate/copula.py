"""A zero-inflated Gaussian-copula generator: the parametric baseline for synthetic microbiome tables.

Our own implementation of the two-step scheme that MIDASim describes (He, Satten & Zhao, "MIDASim: a
fast and simple simulator for realistic microbiome data", Microbiome 12:135, 2024), in its
nonparametric mode, written from the method description (no code taken from the R package):

1. **Presence/absence.** A latent Gaussian vector ``Z ~ N(0, R)`` over the taxa; taxon ``j`` is present
   when ``Z_j < Phi^-1(pi_j)``, with ``pi_j`` its observed prevalence. ``R`` holds tetrachoric
   correlations: for each pair, the latent correlation at which the bivariate normal orthant
   probability equals the observed co-presence rate ``P(j and k present)`` (solved by bisection with
   an exact bivariate normal CDF via Owen's T function), projected to the nearest positive-definite
   correlation matrix. Taxa present in every sample or in none are kept deterministic.
2. **Abundances of the present taxa.** A second Gaussian copula ``W ~ N(0, C)``; ``C`` is the
   correlation of normal scores of log relative abundances over the samples where both taxa are
   present (pairs co-present in fewer than ``min_copresent`` samples get 0), projected the same way.
   ``u = Phi(W_j)`` is mapped through taxon ``j``'s empirical quantile function of its non-zero log
   relative abundances (linear interpolation between order statistics). The relative abundances
   of the present taxa are rescaled to sum to 1.
3. **Library sizes** are resampled (with replacement) from the real non-empty samples and multiply
   the relative abundances; a sample with no present taxon is all zero (as real TCMA samples often
   are). ``round_counts=True`` rounds to integers, keeping present entries at least 1.

Choices of ours where the description leaves room: the second step has its own correlation matrix
(estimated on co-present samples) rather than reusing the presence latent; library size is drawn
independently of the presence pattern; counts are left non-integer by default because TCMA's
decontaminated counts are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import EmptyTableError, InvalidOptionError


def _bvn_cdf(h, k, rho):
    """P(X < h, Y < k) for a standard bivariate normal with correlation ``rho`` (arrays broadcast)."""
    from scipy.special import ndtr, owens_t

    h, k, rho = np.broadcast_arrays(np.asarray(h, float), np.asarray(k, float), np.asarray(rho, float))
    h = np.where(np.abs(h) < 1e-10, 1e-10, h)  # the formula divides by h and k; the CDF is continuous there
    k = np.where(np.abs(k) < 1e-10, 1e-10, k)
    s = np.sqrt(1.0 - rho ** 2)
    ah, ak = (k - rho * h) / (h * s), (h - rho * k) / (k * s)
    beta = np.where(h * k < 0, 0.5, 0.0)
    return 0.5 * ndtr(h) + 0.5 * ndtr(k) - owens_t(h, ah) - owens_t(k, ak) - beta


def _tetrachoric(presence: np.ndarray, *, max_rho: float = 0.995, iterations: int = 50) -> np.ndarray:
    """Latent correlations (q, q) matching pairwise co-presence of ``presence`` (n, q), 0 < pi < 1."""
    from scipy.special import ndtri

    p = presence.astype(float)
    n, q = p.shape
    pi = p.mean(0)
    a = ndtri(pi)
    both = (p.T @ p) / n
    iu = np.triu_indices(q, 1)
    hj, hk, target = a[iu[0]], a[iu[1]], both[iu]
    lo_p = np.maximum(0.0, pi[iu[0]] + pi[iu[1]] - 1.0)
    hi_p = np.minimum(pi[iu[0]], pi[iu[1]])
    margin = 0.5 / n
    target = np.clip(target, lo_p + margin * (hi_p - lo_p > 2 * margin), hi_p - margin * (hi_p - lo_p > 2 * margin))
    lo, hi = np.full(len(target), -max_rho), np.full(len(target), max_rho)
    for _ in range(iterations):  # the orthant probability increases with rho
        mid = (lo + hi) / 2
        above = _bvn_cdf(hj, hk, mid) > target
        hi, lo = np.where(above, mid, hi), np.where(above, lo, mid)
    r = np.eye(q)
    r[iu] = r[(iu[1], iu[0])] = (lo + hi) / 2
    return r


def _copresent_correlation(logr: np.ndarray, present: np.ndarray, min_copresent: int) -> np.ndarray:
    """Pearson correlation (q, q) of per-taxon normal scores over the samples where both are present."""
    from scipy.special import ndtri
    from scipy.stats import rankdata

    n, q = logr.shape
    z = np.zeros((n, q))
    for j in range(q):
        idx = np.nonzero(present[:, j])[0]
        if len(idx):
            z[idx, j] = ndtri(rankdata(logr[idx, j]) / (len(idx) + 1))
    m = present.astype(float)
    cnt = m.T @ m
    with np.errstate(invalid="ignore", divide="ignore"):
        sx = (z.T @ m) / cnt           # [j, k]: mean of z_j over samples where j and k are present
        sxx = ((z ** 2).T @ m) / cnt
        sxy = (z.T @ z) / cnt
        cov = sxy - sx * sx.T
        var = sxx - sx ** 2
        corr = cov / np.sqrt(var * var.T)
    corr[~np.isfinite(corr) | (cnt < min_copresent)] = 0.0
    corr = np.clip((corr + corr.T) / 2, -0.995, 0.995)
    np.fill_diagonal(corr, 1.0)
    return corr


def _nearest_correlation(r: np.ndarray, min_eigenvalue: float) -> np.ndarray:
    """Clip eigenvalues at ``min_eigenvalue`` and rescale to unit diagonal (positive definite)."""
    if r.shape[0] == 0:
        return r
    vals, vecs = np.linalg.eigh((r + r.T) / 2)
    fixed = (vecs * np.maximum(vals, min_eigenvalue)) @ vecs.T
    d = np.sqrt(np.diag(fixed))
    return fixed / np.outer(d, d)


class CopulaGenerator:
    """Zero-inflated Gaussian-copula generator (MIDASim-style, nonparametric marginals).

    Parameters
    ----------
    min_copresent : int
        Pairs of taxa present together in fewer samples get abundance correlation 0.
    min_eigenvalue : float
        Eigenvalue floor of the projected correlation matrices (positive definiteness).
    round_counts : bool
        Round generated counts to integers (present entries stay >= 1).
    sample_prefix : str
        Generated sample ids are ``<prefix><number>`` (zero-padded).

    Attributes (after :meth:`fit`)
    ------------------------------
    prevalence_ : ndarray, shape (n_taxa,)
    presence_corr_ : ndarray, shape (n_variable, n_variable)
        Tetrachoric correlations of the taxa with 0 < prevalence < 1 (``variable_`` says which).
    abundance_corr_ : ndarray, shape (n_taxa, n_taxa)
    library_sizes_ : ndarray
        Library sizes of the non-empty training samples.

    Examples
    --------
    >>> from pydepmicro.datasets import load_example
    >>> gen = CopulaGenerator().fit(load_example())
    >>> gen.sample(50, seed=1).shape
    (50, 60)
    """

    def __init__(self, *, min_copresent: int = 5, min_eigenvalue: float = 1e-3, round_counts: bool = False,
                 sample_prefix: str = "copula_"):
        self.min_copresent = min_copresent
        self.min_eigenvalue = min_eigenvalue
        self.round_counts = round_counts
        self.sample_prefix = sample_prefix

    # ------------------------------------------------------------------ fit
    def fit(self, table) -> CopulaGenerator:
        """Estimate marginals and copulas from ``table`` (MicrobiomeTable, DataFrame or array, samples x taxa)."""
        from ..table import MicrobiomeTable
        from .ecology import _as_matrix

        if not (isinstance(self.min_copresent, (int, np.integer)) and self.min_copresent >= 2):
            raise InvalidOptionError(f"min_copresent must be an integer >= 2, got {self.min_copresent!r}")
        if not 0 < float(self.min_eigenvalue) < 1:
            raise InvalidOptionError(f"min_eigenvalue must be in (0, 1), got {self.min_eigenvalue!r}")
        x, taxa = _as_matrix(table, "training")
        n, q = x.shape
        if n < 2:
            raise EmptyTableError(f"the training table has {n} sample; the copula needs at least 2",
                                  hint="fit on a table with more samples")
        lib = x.sum(1)
        if not (lib > 0).any():
            raise EmptyTableError("every training sample is all zero; there is nothing to learn",
                                  hint="fit on a table with non-zero abundances")
        present = x > 0
        self.n_features_in_, self.n_samples_ = q, n
        self.taxa_ids_ = pd.Index(taxa if taxa is not None else [f"taxon_{j}" for j in range(q)], dtype=object)
        self.taxonomy_ = table.taxonomy if isinstance(table, MicrobiomeTable) else None
        self.prevalence_ = present.mean(0)
        self.variable_ = (self.prevalence_ > 0) & (self.prevalence_ < 1)
        r = _tetrachoric(present[:, self.variable_])
        self.presence_corr_ = _nearest_correlation(r, self.min_eigenvalue)
        self.thresholds_ = np.full(q, np.nan)
        from scipy.special import ndtri

        self.thresholds_[self.variable_] = ndtri(self.prevalence_[self.variable_])
        rel = np.divide(x, lib[:, None], out=np.zeros_like(x), where=lib[:, None] > 0)
        with np.errstate(divide="ignore"):
            logr = np.where(present, np.log(np.where(present, rel, 1.0)), 0.0)
        self.quantiles_ = [np.sort(logr[present[:, j], j]) for j in range(q)]
        c = _copresent_correlation(logr, present, int(self.min_copresent))
        self.abundance_corr_ = _nearest_correlation(c, self.min_eigenvalue)
        self.library_sizes_ = lib[lib > 0].copy()
        self.zero_fraction_ = float((~present).mean())
        return self

    # ------------------------------------------------------------------ sample
    def sample(self, n: int, seed: int | None = None):
        """Draw ``n`` synthetic samples.

        Returns
        -------
        MicrobiomeTable, shape (n, n_taxa)
            Ids ``<sample_prefix>00001`` ...; the training taxa (and taxonomy) in training order.
        """
        from scipy.special import ndtr

        from ..table import MicrobiomeTable

        if not hasattr(self, "prevalence_"):
            raise InvalidOptionError("the generator is not fitted", hint="call fit(table) first")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InvalidOptionError(f"n must be a positive integer, got {n!r}")
        rng = np.random.default_rng(seed)
        q = self.n_features_in_
        present = np.zeros((n, q), dtype=bool)
        present[:, self.prevalence_ >= 1] = True
        v = np.nonzero(self.variable_)[0]
        if len(v):
            z = rng.multivariate_normal(np.zeros(len(v)), self.presence_corr_, size=n, method="cholesky")
            present[:, v] = z < self.thresholds_[v]
        w = rng.multivariate_normal(np.zeros(q), self.abundance_corr_, size=n, method="cholesky")
        u = ndtr(w)
        logr = np.zeros((n, q))
        for j in range(q):
            vals = self.quantiles_[j]
            if len(vals) == 0:
                continue
            grid = (np.arange(len(vals)) + 0.5) / len(vals)
            logr[:, j] = np.interp(u[:, j], grid, vals)
        rel = np.where(present, np.exp(logr), 0.0)
        totals = rel.sum(1, keepdims=True)
        rel = np.divide(rel, totals, out=np.zeros_like(rel), where=totals > 0)
        lib = rng.choice(self.library_sizes_, size=n, replace=True)
        counts = rel * lib[:, None]
        if self.round_counts:
            counts = np.where(present, np.maximum(np.round(counts), 1.0), 0.0)
        width = max(5, len(str(n)))
        ids = [f"{self.sample_prefix}{i + 1:0{width}d}" for i in range(n)]
        return MicrobiomeTable(counts, ids, self.taxa_ids_, taxonomy=self.taxonomy_,
                               source="CopulaGenerator")

    def fit_sample(self, table, n: int | None = None, seed: int | None = None):
        """``fit(table)`` then ``sample(n or the number of training samples, seed)``."""
        self.fit(table)
        return self.sample(n if n is not None else self.n_samples_, seed=seed)
