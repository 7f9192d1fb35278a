"""What imputation returns: the imputed table plus, per entry, which were imputed and how sure we are."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..io.imputation import LAYERS
from ..table import MicrobiomeTable


@dataclass
class ImputationResult:
    """Result of :meth:`DepMicroDiff.impute`. All arrays are (n_samples, n_taxa) in the table's order.

    Attributes
    ----------
    table : MicrobiomeTable
        The imputed table, in counts: observed entries are the input's, bit for bit; imputed ones
        are ``library size x (base ** value - 1) / scale`` (not rounded). Metadata and taxonomy are
        the input's.
    values : ndarray
        The imputed table on the model's log scale, log_base(relative abundance x scale + 1).
    imputed : bool ndarray
        True where the output differs in kind from the input: a missing entry filled, or a zero
        replaced (``zeros="impute"``, or ``"auto"`` judged a dropout).
    spread : ndarray
        Standard deviation over the draws of the model's estimate (log scale), times the model's
        ``spread_scale`` calibrated at fit so that ``values`` +- 1.645 ``spread`` held 90% of held-out
        truths (``options["spread_scale"]``); NaN for entries the model did not estimate (taxa it does
        not know, samples it left alone).
    presence_prob : ndarray
        Mean over draws of the decoder's probability that the taxon is present. NaN as ``spread``.
    dropout_prob : ndarray
        ``presence_prob`` on observed zeros (the probability that the zero is a dropout), NaN elsewhere.
    draws : ndarray or None
        (n_draws, n_samples, n_taxa) per-draw estimates (log scale) when asked for (``keep_draws``).
    options : dict
        The settings used (draws, sampler, zeros policy, seed, ...) and counts of what was done.
    model : DepMicroDiff or None
        The model that imputed (set by :func:`pydepmicro.model.impute`).
    """

    table: MicrobiomeTable
    values: np.ndarray
    imputed: np.ndarray
    spread: np.ndarray
    presence_prob: np.ndarray
    dropout_prob: np.ndarray
    draws: np.ndarray | None = None
    options: dict = field(default_factory=dict)
    model: object = field(default=None, repr=False)

    @property
    def sample_ids(self) -> pd.Index:
        return self.table.sample_ids

    @property
    def taxa_ids(self) -> pd.Index:
        return self.table.taxa_ids

    def frame(self, name: str) -> pd.DataFrame:
        """One layer (``values``, ``imputed_mask``, ``spread``, ``presence_prob``, ``dropout_prob``) as a
        DataFrame, samples x taxa, with ids."""
        arrays = {"values": self.values, "imputed_mask": self.imputed, "imputed": self.imputed,
                  "spread": self.spread, "presence_prob": self.presence_prob, "dropout_prob": self.dropout_prob}
        if name not in arrays:
            raise KeyError(f"unknown layer {name!r}; use one of {', '.join(arrays)}")
        return pd.DataFrame(arrays[name], index=self.sample_ids, columns=self.taxa_ids)

    def layers(self) -> dict[str, np.ndarray]:
        """The per-entry layers written beside the table (float arrays; the mask as 0/1)."""
        arrays = {"imputed_mask": self.imputed.astype(np.float64), "spread": self.spread,
                  "dropout_prob": self.dropout_prob}
        return {name: arrays[name] for name in LAYERS}

    def to_anndata(self):
        """AnnData with X = imputed counts and the layers (plus ``log_values``) and settings in ``uns``."""
        adata = self.table.to_anndata()
        for name, array in self.layers().items():
            adata.layers[name] = array
        adata.layers["log_values"] = self.values
        adata.uns["depmicro_impute"] = {k: v for k, v in self.options.items() if v is not None}
        return adata

    def summary(self) -> str:
        filled = int(self.imputed.sum())
        zero_prob = self.dropout_prob[~np.isnan(self.dropout_prob)]
        lines = [
            f"imputed {filled} of {self.imputed.size} entries "
            f"({self.table.n_samples} samples x {self.table.n_taxa} taxa)",
            f"  missing entries filled: {self.options.get('n_missing_filled', 0)}; zeros replaced: "
            f"{self.options.get('n_zeros_replaced', 0)} (policy {self.options.get('zeros')})",
        ]
        unchanged, from_total = self.options.get("n_samples_unchanged", 0), self.options.get("n_samples_from_total", 0)
        if unchanged or from_total:
            lines.append(f"  samples without observed reads: {unchanged} left unchanged, {from_total} imputed from "
                         "their given total alone")
        if zero_prob.size:
            lines.append(f"  zeros judged dropouts (p > {self.options.get('dropout_threshold', 0.5)}): "
                         f"{int((zero_prob > self.options.get('dropout_threshold', 0.5)).sum())} of {zero_prob.size}")
        lines.append(f"  draws: {self.options.get('draws')}, sampler: {self.options.get('sampler')}, "
                     f"seed: {self.options.get('seed')}")
        return "\n".join(lines)
