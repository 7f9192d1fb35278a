"""Tables to tensors and back for the model: checks, transforms, training-time corruption, metadata.

The model never reads files; everything here takes a :class:`~pydepmicro.table.MicrobiomeTable`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..errors import (
    EmptyTableError,
    IdMismatchError,
    InvalidOptionError,
    InvalidValueError,
    ModelMismatchError,
    TooFewSamplesError,
)
from ..table import MicrobiomeTable
from ..transforms import log_transform, relative_abundance

MIN_TRAIN_SAMPLES = 8


@dataclass
class Prepared:
    """A table on the model's scale: ``values`` (n, q) float64 log values with NaN where missing,
    ``y`` (n, q) the same as float32 with 0 where missing, ``observed`` (n, q) bool,
    ``library_sizes`` (n,) observed totals of the counts."""

    values: np.ndarray
    y: torch.Tensor
    observed: torch.Tensor
    library_sizes: np.ndarray


def prepare(table: MicrobiomeTable, *, scale: float, log_base: float, observed_share: np.ndarray | None = None
            ) -> Prepared:
    """``observed_share`` (n,): the share of each sample's reads held by its observed entries. Their
    relative abundances are then scaled to sum to ``scale x share`` rather than ``scale`` (the rest
    belongs to the missing entries), and ``library_sizes`` become the totals of the completed sample,
    observed total / share; None = 1 (relative to the observed total)."""
    relative = relative_abundance(table.counts, scale=scale)
    library_sizes = np.nansum(table.counts, axis=1)
    if observed_share is not None:
        share = np.asarray(observed_share, dtype=np.float64)
        relative, library_sizes = relative * share[:, None], library_sizes / share
    values = log_transform(relative, base=log_base)
    observed = ~np.isnan(values)
    y = np.where(observed, values, 0.0).astype(np.float32)
    return Prepared(values, torch.from_numpy(y), torch.from_numpy(observed), library_sizes)


def library_sizes(library_size, n_samples: int) -> np.ndarray:
    """``library_size`` (a number, or one per sample) as an array (n_samples,); a wrong length is refused."""
    total = np.asarray(library_size, dtype=np.float64)
    if total.ndim == 0:
        return np.full(n_samples, float(total))
    if total.shape != (n_samples,):
        raise InvalidValueError(f"library_size has {total.size} values for {n_samples} samples",
                                hint="give one total per sample, in the table's sample order, or one number")
    return total


def observed_share(table: MicrobiomeTable, library_size) -> np.ndarray:
    """Share (n,) of each sample's reads held by its observed entries, given its total ``library_size``
    (a number or one per sample, missing entries included); 1 for samples without observed reads."""
    observed = np.nansum(table.counts, axis=1)
    total = library_sizes(library_size, table.n_samples)
    if not np.isfinite(total).all() or (total <= 0).any():
        raise InvalidValueError("library_size must be finite and positive",
                                hint="give each sample's total reads, missing entries included")
    short = observed > total * (1 + 1e-9)
    if short.any():
        raise InvalidValueError(f"library_size is below the observed total of {int(short.sum())} sample(s) "
                                f"(e.g. {table.sample_ids[np.flatnonzero(short)[0]]}: "
                                f"{observed[short][0]:g} reads observed, library_size {total[short][0]:g})",
                                hint="library_size is the sample's whole total, observed plus missing entries")
    return np.where(observed > 0, np.minimum(observed / total, 1.0), 1.0)


def check_table(table: MicrobiomeTable, what: str = "table") -> None:
    if not isinstance(table, MicrobiomeTable):
        raise InvalidValueError(
            f"expected a MicrobiomeTable, got {type(table).__name__}",
            hint="read it with pydepmicro.read_table() or build MicrobiomeTable(counts, sample_ids, taxa_ids)",
        )
    if table.n_samples == 0 or table.n_taxa == 0:
        raise EmptyTableError(f"the {what} is empty ({table.n_samples} samples x {table.n_taxa} taxa)",
                              path=table.source, hint="give a table with samples and taxa")


def training_rows(table: MicrobiomeTable, *, what: str = "training table") -> np.ndarray:
    """Indices of samples usable for training (some observed nonzero count); warns about the rest."""
    check_table(table, what)
    usable = np.nansum(table.counts, axis=1) > 0
    dropped = table.sample_ids[~usable]
    if len(dropped):
        warnings.warn(f"{len(dropped)} sample(s) of the {what} have no observed counts and are not used for "
                      f"training (e.g. {', '.join(map(str, dropped[:3]))})", stacklevel=3)
    if usable.sum() < MIN_TRAIN_SAMPLES:
        raise TooFewSamplesError(
            f"the {what} has {int(usable.sum())} usable samples; training needs at least {MIN_TRAIN_SAMPLES}",
            path=table.source, hint="train on a larger table, or impute with a model trained elsewhere (--model)",
        )
    return np.flatnonzero(usable)


def corrupt(
    y: torch.Tensor,
    observed: torch.Tensor,
    *,
    max_hide: float,
    max_drop: float,
    hide_zeros: bool,
    generator: torch.Generator | None,
    hide_all: float = 0.0,
    log_base: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training-time masking: returns (y_in, observed_in, changed), all (B, q).

    Each sample draws a hiding rate r_h ~ U(0, max_hide) and a dropout rate r_d ~ U(0, max_drop).
    "Hidden" entries become missing (the aware regime: the model is told); "dropped" nonzero entries
    become observed zeros (the blind regime: it is not). By default only nonzero entries are hidden,
    because a dropout can only hide a taxon that is there; ``hide_zeros`` hides zeros as well.

    ``hide_all``: each sample is, with this probability, hidden entirely (nothing observed): a
    generation example, from which the model learns to draw whole samples. Such rows are not
    flagged in ``changed`` (that term of the loss is about imputation); ``observed_in`` is all False
    for them, which is how the trainer recognises them (:func:`generation_rows`).

    ``log_base``: y holds log_base(relative abundance x scale + 1). When given, a dropout takes its
    reads out of the sample: the sample's other visible entries are scaled up to the reads that are
    left, as in a real table, where a lost taxon's reads are never counted and the rest is relative to
    what was read. The targets (y) stay the complete sample's, so the model learns to put a dropout
    back as its share of the complete sample (:func:`._sampling.assemble` closes the sample again).
    None: dropped entries are only zeroed, the rest left on the complete sample's scale (models before
    this option; on TCMA blind masks their imputation fell as the share of the sample lost grew).
    """
    B, q = y.shape
    dev = y.device

    def uniform(*shape):
        return torch.rand(shape, generator=generator, device=generator.device if generator else dev).to(dev)

    nonzero = observed & (y > 0)
    hideable = observed if hide_zeros else nonzero
    hide = hideable & (uniform(B, q) < uniform(B, 1) * max_hide)
    drop = nonzero & ~hide & (uniform(B, q) < uniform(B, 1) * max_drop)
    changed = hide | drop
    if hide_all > 0:  # drawn last, so hide_all = 0 leaves the random stream of older models unchanged
        whole = uniform(B, 1) < hide_all
        hide = hide | (observed & whole)
        changed = changed & ~whole
    y_in = torch.where(hide | drop, torch.zeros_like(y), y)
    if log_base is not None:
        y_in = _rescale_after_drop(y, y_in, observed & ~(hide | drop), observed, drop, math.log(log_base))
    return y_in, observed & ~hide, changed


def _rescale_after_drop(y, y_in, visible, observed, drop, ln_base: float) -> torch.Tensor:
    """``y_in`` with each sample's ``visible`` entries scaled by total / (total - dropped), on the
    linear scale (samples that lost everything are left alone)."""
    linear = torch.where(observed, torch.expm1(y * ln_base), torch.zeros_like(y))
    total = linear.sum(1, keepdim=True)
    left = total - torch.where(drop, linear, torch.zeros_like(y)).sum(1, keepdim=True)
    factor = torch.where(left > 0, total / left.clamp_min(torch.finfo(y.dtype).tiny), torch.ones_like(total))
    return torch.where(visible, torch.log1p(linear * factor) / ln_base, y_in)


def generation_rows(observed: torch.Tensor, observed_in: torch.Tensor) -> torch.Tensor:
    """(B,) bool: rows :func:`corrupt` hid entirely (something observed, nothing left visible)."""
    return observed.any(1) & ~observed_in.any(1)


# ---------------------------------------------------------------------- taxa alignment


@dataclass
class Alignment:
    """How a table's columns map onto the model's taxa.

    ``model_cols`` (q_model,): for each model taxon the table column, or -1 when the table lacks it
    (fed to the model as missing). ``table_cols``: table columns the model covers.
    """

    model_cols: np.ndarray
    n_extra: int  # table taxa the model does not know (passed through unchanged)

    @property
    def n_absent(self) -> int:
        return int((self.model_cols < 0).sum())


def align_taxa(table: MicrobiomeTable, model_taxa: pd.Index, *, align: bool) -> Alignment:
    table_taxa = pd.Index([str(t) for t in table.taxa_ids])
    pos = table_taxa.get_indexer(model_taxa)
    extra = table_taxa.difference(model_taxa, sort=False)
    absent = model_taxa[pos < 0]
    if (len(extra) or len(absent)) and not align:
        parts = []
        if len(absent):
            parts.append(f"{len(absent)} of the model's {len(model_taxa)} taxa are not in the table "
                         f"(e.g. {', '.join(map(str, absent[:3]))})")
        if len(extra):
            parts.append(f"{len(extra)} table taxa are unknown to the model (e.g. {', '.join(map(str, extra[:3]))})")
        raise ModelMismatchError(
            "the table's taxa do not match the model's: " + "; ".join(parts),
            path=table.source,
            hint="impute with a model trained on this table's taxa, or pass --align (align=True): shared taxa "
                 "are imputed, taxa only in the table are left unchanged, model taxa missing from the table "
                 "are treated as unobserved",
        )
    if len(absent) == len(model_taxa):
        raise IdMismatchError("the table shares no taxa with the model", path=table.source,
                              hint="check that taxon ids use the same naming (e.g. NCBI taxids vs names)")
    return Alignment(pos, len(extra))


def aligned_inputs(prep: Prepared, alignment: Alignment) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, observed) in the model's taxon order; absent taxa are unobserved zeros."""
    cols = torch.from_numpy(np.clip(alignment.model_cols, 0, None))
    present = torch.from_numpy(alignment.model_cols >= 0)
    y = prep.y[:, cols] * present
    observed = prep.observed[:, cols] & present
    return y, observed


# ---------------------------------------------------------------------- metadata


def check_metadata_columns(meta: pd.DataFrame, columns: list[str], source=None) -> None:
    """Every column the model was trained with is in ``meta`` (rows = samples); ``source`` names it."""
    missing = [c for c in columns if c not in meta.columns]
    if missing:
        have = ", ".join(map(str, meta.columns[:8])) or "none"
        raise IdMismatchError(
            f"the metadata lacks {len(missing)} column(s) the model was trained with: {', '.join(map(str, missing))}"
            f" (it has: {have})",
            path=source,
            hint="give the metadata file with those columns (--meta), or train a model without metadata "
                 "(--no-metadata)",
        )


def parse_zeros_policy(zeros: str) -> str:
    if zeros not in ("keep", "impute", "auto"):
        raise InvalidOptionError(f"unknown zeros policy {zeros!r}", hint="use 'keep', 'impute' or 'auto'")
    return zeros
