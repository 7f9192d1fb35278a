"""Evaluation masks: which observed entries are hidden from an imputer, and how.

A mask draws ``fraction`` of the observed nonzero entries (samples x taxa) uniformly at random;
zeros and missing (NaN) entries are never drawn. Two variants (see BENCHMARK.md):

- ``"p1"`` (paper): only the drawn entries are hidden.
- ``"p2"`` (leak-free): for each drawn ``(i, j)`` every lineage relative of taxon ``j`` (ancestor or
  descendant present in the table) is hidden in sample ``i`` too, so a masked genus cannot be read
  off its species. Relatives are hidden whenever they are observed, zero or not: in the blind
  regime hiding a zero changes nothing, in the aware regime it keeps "this relative is zero" from
  telling the method anything. Metrics use the drawn entries only.

Two regimes (:func:`apply_mask`): ``"blind"`` sets hidden entries to 0 (the method is not told),
``"aware"`` sets them to NaN.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import (
    DepMicroError,
    IdMismatchError,
    InputFormatError,
    InvalidOptionError,
    InvalidValueError,
    UnreadableFileError,
)
from ..table import MicrobiomeTable
from ..transforms import preprocess

VARIANTS = ("p1", "p2")
REGIMES = ("blind", "aware")
_FORMAT = "pydepmicro.evalmask/1"

#: taxonomic ranks, top to bottom; ranks between the standard seven sit in between
_RANK_LEVEL = {
    "domain": 0.0, "superkingdom": 0.0, "kingdom": 0.0, "phylum": 1.0, "subphylum": 1.5,
    "superclass": 1.7, "class": 2.0, "subclass": 2.5, "superorder": 2.7, "order": 3.0,
    "suborder": 3.5, "superfamily": 3.7, "family": 4.0, "subfamily": 4.5, "tribe": 4.7,
    "genus": 5.0, "subgenus": 5.5, "species group": 5.7, "species subgroup": 5.8,
    "species": 6.0, "subspecies": 6.5, "strain": 7.0,
}


@dataclass(frozen=True, eq=False)
class EvalMask:
    """The entries of one evaluation mask.

    Attributes
    ----------
    drawn : bool ndarray, shape (n_samples, n_taxa)
        The evaluated entries (observed nonzeros of the original table).
    hidden : bool ndarray, shape (n_samples, n_taxa)
        The entries hidden from the method: ``drawn`` plus, for ``"p2"``, their lineage relatives.
    variant : {"p1", "p2"}
    seed : int
    sample_ids, taxa_ids : pd.Index of str
        The table's ids, in matrix order.
    """

    drawn: np.ndarray
    hidden: np.ndarray
    variant: str
    seed: int
    sample_ids: pd.Index
    taxa_ids: pd.Index

    def __post_init__(self) -> None:
        sample_ids = pd.Index([str(s) for s in self.sample_ids], dtype=object)
        taxa_ids = pd.Index([str(t) for t in self.taxa_ids], dtype=object)
        shape = (len(sample_ids), len(taxa_ids))
        arrays = {}
        for name in ("drawn", "hidden"):
            a = np.asarray(getattr(self, name))
            if a.shape != shape or a.dtype != bool:
                raise InvalidValueError(
                    f"mask {name} must be a bool array of shape {shape} "
                    f"(samples x taxa), got {a.dtype} {a.shape}")
            a = a.copy()
            a.setflags(write=False)
            arrays[name] = a
        if (arrays["drawn"] & ~arrays["hidden"]).any():
            raise InvalidValueError("every drawn entry of a mask must also be hidden")
        if self.variant not in VARIANTS:
            raise InvalidOptionError(f"mask variant must be one of {VARIANTS}, "
                                     f"not {self.variant!r}")
        for name, value in (*arrays.items(), ("sample_ids", sample_ids),
                            ("taxa_ids", taxa_ids), ("seed", int(self.seed))):
            object.__setattr__(self, name, value)

    @property
    def shape(self) -> tuple[int, int]:
        return self.drawn.shape  # type: ignore[return-value]

    @property
    def n_drawn(self) -> int:
        return int(self.drawn.sum())

    @property
    def n_hidden(self) -> int:
        return int(self.hidden.sum())

    def __repr__(self) -> str:
        return (f"EvalMask({self.variant}, seed {self.seed}, {self.shape[0]} x {self.shape[1]}, "
                f"{self.n_drawn} drawn, {self.n_hidden} hidden)")

    def save(self, path) -> Path:
        """Write a compressed ``.npz`` (no pickled objects); returns the path written.

        numpy appends ``.npz`` when ``path`` lacks it.
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        np.savez_compressed(
            path, format=np.array(_FORMAT), drawn=self.drawn, hidden=self.hidden,
            variant=np.array(self.variant), seed=np.array(self.seed, dtype=np.int64),
            sample_ids=np.array(list(self.sample_ids), dtype=str),
            taxa_ids=np.array(list(self.taxa_ids), dtype=str),
        )
        return path

    @classmethod
    def load(cls, path) -> EvalMask:
        """Read a mask written by :meth:`save` (``allow_pickle=False``), checking its shapes."""
        path, hint = Path(path), "give a .npz written by EvalMask.save"
        if not path.is_file():
            raise UnreadableFileError("mask file not found", path=str(path), hint=hint)
        try:
            with np.load(path, allow_pickle=False) as data:
                f = {k: data[k] for k in data.files}
            if str(f.get("format", "")) != _FORMAT:
                raise InputFormatError(f"not a pydepmicro mask (keys {sorted(f)})", hint=hint)
            return cls(drawn=f["drawn"], hidden=f["hidden"], variant=str(f["variant"]),
                       seed=int(f["seed"]), sample_ids=f["sample_ids"].tolist(),
                       taxa_ids=f["taxa_ids"].tolist())
        except (DepMicroError, KeyError, ValueError, TypeError, OSError) as exc:
            problem = exc.problem if isinstance(exc, DepMicroError) else f"{exc!r}"
            raise InputFormatError(f"unreadable mask file: {problem}", path=str(path),
                                   hint=hint) from exc


# ------------------------------------------------------------------------------ lineage


def lineage_relatives(taxonomy: pd.DataFrame, taxa_ids) -> np.ndarray:
    """Which taxa are ancestors or descendants of each other.

    Taxon ``a`` is an ancestor of ``b`` when ``a``'s rank is higher than ``b``'s and ``b``'s lineage
    column at ``a``'s rank equals ``a``'s name (compared case-insensitively). A taxon's rank comes
    from the ``rank`` column (any case; e.g. ``superkingdom`` = Kingdom); without it, or for an
    unknown rank, it is the deepest filled lineage column. For a rank with no lineage column of its
    own (e.g. ``subphylum`` between Phylum and Class) the relation is taken conservatively: every
    deeper taxon under the same parent (here: phylum) counts as a descendant. A taxon with an empty
    lineage has no relatives.

    Parameters
    ----------
    taxonomy : DataFrame
        One row per taxon (index = taxon ids), lineage columns Kingdom ... Species (any case) and
        optionally ``rank`` and ``name``.
    taxa_ids : sequence of str, length n_taxa
        The order of the result.

    Returns
    -------
    bool ndarray, shape (n_taxa, n_taxa)
        Symmetric, False on the diagonal.
    """
    anc, _ = _ancestry(taxonomy, taxa_ids)
    return anc | anc.T


def lineage_ancestors(taxonomy: pd.DataFrame, taxa_ids) -> dict[str, list[str]]:
    """Each taxon's ancestors among ``taxa_ids``, nearest (deepest rank) first.

    Same rules as :func:`lineage_relatives`. For an intermediate rank without a lineage column of its
    own, the conservative rule can make two taxa of one rank ancestors of the same taxon; they keep
    the table's order.

    Returns
    -------
    dict
        taxon id -> list of ancestor ids (empty when none is in the table).
    """
    anc, own = _ancestry(taxonomy, taxa_ids)
    ids = [str(t) for t in taxa_ids]
    out = {}
    for b, taxon in enumerate(ids):
        rows = np.flatnonzero(anc[:, b])
        rows = rows[np.argsort(-own[rows], kind="stable")]
        out[taxon] = [ids[a] for a in rows]
    return out


def _ancestry(taxonomy: pd.DataFrame, taxa_ids) -> tuple[np.ndarray, np.ndarray]:
    """anc (q, q) bool, anc[a, b] = a is an ancestor of b, and each taxon's rank level (q,; NaN = none)."""
    if not isinstance(taxonomy, pd.DataFrame):
        raise InvalidOptionError("taxonomy must be a DataFrame (one row per taxon)")
    ids = pd.Index([str(t) for t in taxa_ids])
    frame = taxonomy.copy()
    frame.index = pd.Index(frame.index.astype(str))
    absent = ids.difference(frame.index, sort=False)
    if len(absent):
        raise IdMismatchError(f"taxonomy lacks {len(absent)} taxa (e.g. {absent[0]!r})",
                              hint="give one taxonomy row per taxon of the table")
    frame = frame.loc[ids]
    columns = _lineage_columns(frame)
    if not columns:
        raise InvalidOptionError(
            f"taxonomy has no lineage column (columns: {list(frame.columns)})",
            hint="give columns named Kingdom, Phylum, Class, Order, Family, Genus, Species")
    levels = sorted(columns)
    names = np.array([[_norm(v) for v in frame[columns[lv]]] for lv in levels],
                     dtype=object)  # (n_levels, q)
    own = _taxon_levels(frame, levels, names)
    return _ancestors(own, levels, names), own


def _norm(value) -> str | None:
    if value is None or pd.isna(value):
        return None
    text = str(value).strip().lower()
    return text or None


def _lineage_columns(frame: pd.DataFrame) -> dict[float, str]:
    out: dict[float, str] = {}
    for col in frame.columns:
        level = _RANK_LEVEL.get(str(col).strip().lower())
        if level is not None and level not in out:
            out[level] = col
    return out


def _taxon_levels(frame: pd.DataFrame, levels: list[float], names: np.ndarray) -> np.ndarray:
    """Rank level of each taxon (NaN when its lineage is empty)."""
    rank_col = next((c for c in frame.columns if str(c).strip().lower() == "rank"), None)
    q = names.shape[1]
    own = np.full(q, np.nan)
    for j in range(q):
        filled = [lv for lv, v in zip(levels, names[:, j]) if v is not None]
        if not filled:
            continue
        rank = _norm(frame[rank_col].iat[j]) if rank_col is not None else None
        own[j] = _RANK_LEVEL.get(rank, max(filled)) if rank is not None else max(filled)
    return own


def _ancestors(own: np.ndarray, levels: list[float], names: np.ndarray) -> np.ndarray:
    q = len(own)
    anc = np.zeros((q, q), dtype=bool)  # anc[a, b]: a is an ancestor of b
    for a in range(q):
        if np.isnan(own[a]):
            continue
        deeper = own > own[a]  # NaN compares False
        if own[a] in levels:  # a's rank has a column: match b's lineage at that rank
            k = levels.index(own[a])
        else:  # intermediate rank: match at the parent rank (conservative)
            above = [i for i, lv in enumerate(levels) if lv < own[a] and names[i, a] is not None]
            if not above:
                continue
            k = above[-1]
        if names[k, a] is None:
            continue
        same = np.array([v == names[k, a] for v in names[k]], dtype=bool)
        anc[a] |= deeper & same
    np.fill_diagonal(anc, False)
    return anc


# ------------------------------------------------------------------------------ masks


def draw_mask(table: MicrobiomeTable, *, fraction: float = 0.1, seed: int = 0,
              variant: str = "p1", lineage=None, hide_zeros: bool = True) -> EvalMask:
    """Draw an evaluation mask.

    Parameters
    ----------
    table : MicrobiomeTable, shape (n_samples, n_taxa)
        The complete (original) table; NaN entries count as not observed.
    fraction : float in (0, 1]
        Share of the observed nonzero entries drawn: ``round(fraction * n_nonzero)`` of them,
        uniformly at random with ``np.random.default_rng(seed)``.
    seed : int
    variant : {"p1", "p2"}
        ``"p2"`` also hides, in the same sample, every observed lineage relative of a drawn taxon.
    lineage : DataFrame or bool ndarray (n_taxa, n_taxa), optional
        For ``"p2"``: a taxonomy frame (see :func:`lineage_relatives`) or a precomputed relatives
        matrix in table order. Default: ``table.taxonomy``.
    hide_zeros : bool
        For ``"p2"``: hide observed relatives that are zero too (default; see the module
        docstring). ``False`` hides only nonzero relatives, which hides the same values in the
        blind regime but lets an aware method see which relatives were zero.

    Returns
    -------
    EvalMask
    """
    if not isinstance(table, MicrobiomeTable):
        raise InvalidOptionError(f"draw_mask needs a MicrobiomeTable, got {type(table).__name__}")
    if variant not in VARIANTS:
        raise InvalidOptionError(f"variant must be one of {VARIANTS}, not {variant!r}")
    if isinstance(fraction, bool) or not (isinstance(fraction, (int, float))
                                          and 0 < fraction <= 1):
        raise InvalidOptionError(f"fraction must be in (0, 1], got {fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidOptionError(f"seed must be a non-negative integer, got {seed!r}")
    counts = table.counts
    observed = ~np.isnan(counts)
    candidates = np.flatnonzero(observed & (np.nan_to_num(counts) > 0))
    n_draw = round(fraction * len(candidates))
    if n_draw == 0:
        raise InvalidValueError(
            f"no entry to mask: {len(candidates)} observed nonzero entries x fraction {fraction}",
            path=table.source, hint="use a larger table or a larger fraction")
    relatives = _relatives_for(table, lineage) if variant == "p2" else None
    rng = np.random.default_rng(int(seed))
    drawn = np.zeros(counts.size, dtype=bool)
    drawn[rng.choice(candidates, size=n_draw, replace=False)] = True
    drawn = drawn.reshape(counts.shape)
    hidden = drawn.copy()
    if relatives is not None:
        hideable = observed if hide_zeros else observed & (np.nan_to_num(counts) > 0)
        hidden |= (drawn.astype(np.int32) @ relatives.astype(np.int32) > 0) & hideable
    return EvalMask(drawn=drawn, hidden=hidden, variant=variant, seed=int(seed),
                    sample_ids=table.sample_ids, taxa_ids=table.taxa_ids)


def _relatives_for(table: MicrobiomeTable, lineage) -> np.ndarray:
    q = table.n_taxa
    if lineage is None:
        lineage = table.taxonomy
    if lineage is None or (isinstance(lineage, pd.DataFrame) and lineage.shape[1] == 0):
        raise InvalidOptionError(
            "the leak-free mask (p2) needs a taxonomy, and the table has none",
            path=table.source,
            hint="read the table with its taxonomy (e.g. load_tcma), pass lineage=, or use p1")
    if isinstance(lineage, pd.DataFrame):
        rel = lineage_relatives(lineage, table.taxa_ids)
        if not rel.any():
            warnings.warn(f"{table.source or 'table'}: the taxonomy nests no taxon in another "
                          "(all at one rank?), so the p2 mask equals the p1 mask", stacklevel=3)
        return rel
    rel = np.asarray(lineage)
    if rel.shape != (q, q) or rel.dtype != bool:
        raise InvalidOptionError(f"lineage must be a taxonomy DataFrame or a bool ({q}, {q}) "
                                 f"array, got {rel.dtype} {rel.shape}")
    return rel | rel.T


def apply_mask(table: MicrobiomeTable, mask: EvalMask, regime: str) -> MicrobiomeTable:
    """Hide the mask's entries: ``"blind"`` sets them to 0, ``"aware"`` to NaN.

    Masking raw counts changes each sample's total, hence every entry after
    :func:`~pydepmicro.transforms.preprocess`; to compare with ``preprocess(original)`` entry by
    entry, mask the transformed table (see :func:`masked_log_inputs`).

    Returns
    -------
    MicrobiomeTable
        A new table, same ids, metadata and taxonomy.
    """
    if not isinstance(table, MicrobiomeTable):
        raise InvalidOptionError(f"apply_mask needs a MicrobiomeTable, got {type(table).__name__}")
    if regime not in REGIMES:
        raise InvalidOptionError(f"regime must be one of {REGIMES}, not {regime!r}")
    if not isinstance(mask, EvalMask):
        raise InvalidOptionError(f"expected an EvalMask, got {type(mask).__name__}")
    for what, ids in (("sample", mask.sample_ids), ("taxon", mask.taxa_ids)):
        if not ids.equals(table.sample_ids if what == "sample" else table.taxa_ids):
            raise IdMismatchError(f"the mask's {what} ids differ from the table's",
                                  path=table.source,
                                  hint="draw the mask from this table (same ids, same order)")
    counts = table.counts.copy()
    counts[mask.hidden] = 0.0 if regime == "blind" else np.nan
    return table.with_counts(counts)


def masked_log_inputs(table: MicrobiomeTable, mask: EvalMask, regime: str, *,
                      scale: float = 100.0, base: float = np.e) -> tuple[np.ndarray, np.ndarray]:
    """Truth and method input on the benchmark's log scale.

    Returns
    -------
    truth : ndarray, shape (n_samples, n_taxa)
        ``preprocess(table)`` (relative abundance x ``scale``, ``log_base(x + 1)``; natural log by
        default, as BENCHMARK.md asks).
    x : ndarray, shape (n_samples, n_taxa)
        ``truth`` with the hidden entries set to 0 (blind) or NaN (aware); every other entry equals
        ``truth`` exactly.
    """
    truth_table = preprocess(table, scale=scale, base=base)
    return truth_table.counts, apply_mask(truth_table, mask, regime).counts
