"""Reading and writing microbiome tables: ``read_table`` / ``write_table`` / ``read_metadata``.

Formats (``format=`` names; "auto" picks by extension, then by content):

=============  ============================================  ======  =====
name           what                                          read    write
=============  ============================================  ======  =====
biom           BIOM 2.1 HDF5 (read: 1.0 JSON too)            yes     yes
biom-json      BIOM 1.0 JSON                                 yes     yes
h5ad           AnnData                                       yes     yes
tsv, csv       delimited tables, phyloseq CSV exports         yes     yes
tcga           TCGA/TCMA taxa x GDC-files tables (+ GDC meta)  yes     yes (as csv)
rds            phyloseq object saved with saveRDS (rpy2)      yes     yes
=============  ============================================  ======  =====
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from ..errors import InputFormatError
from ..table import MicrobiomeTable, MissingPolicy, join_metadata
from ._atomic import atomic_outputs
from ._common import check_readable, suffix_of
from .biom import is_hdf5, read_biom, write_biom_hdf5, write_biom_json
from .delimited import read_delimited, read_taxonomy, sidecar_paths, write_delimited
from .metadata import read_metadata

READ_FORMATS = ("auto", "biom", "biom-json", "h5ad", "tsv", "csv", "tcga", "rds")
WRITE_FORMATS = ("biom", "biom-json", "h5ad", "tsv", "csv", "tcga", "rds")

_EXTENSIONS = {
    ".biom": "biom", ".hdf5": "biom", ".h5": "biom", ".json": "biom-json", ".h5ad": "h5ad",
    ".tsv": "tsv", ".txt": "tsv", ".tab": "tsv", ".csv": "csv", ".rds": "rds",
}


def detect_format(path) -> str:
    """The format of ``path`` from its extension, else from its first bytes."""
    p = check_readable(path)
    fmt = _EXTENSIONS.get(suffix_of(p))
    if fmt in ("biom", "biom-json"):
        return "biom" if is_hdf5(p) else "biom-json"
    if fmt is not None:
        return fmt
    if is_hdf5(p):
        import h5py

        with h5py.File(p, "r") as handle:
            return "biom" if "observation" in handle else "h5ad"
    with open(p, "rb") as handle:
        start = handle.read(2)
    if start[:1] == b"{":
        return "biom-json"
    if start == b"X\n" or start[:2] == b"\x1f\x8b":
        return "rds"  # serialised R object (gzip-compressed by default)
    return "tsv"


def read_table(
    path,
    format: str = "auto",
    *,
    meta=None,
    taxonomy=None,
    taxa_are_rows: bool | None = None,
    missing: MissingPolicy = "error",
    id_column: str | int | None = None,
    sep: str | None = None,
) -> MicrobiomeTable:
    """Read an abundance table into a :class:`MicrobiomeTable` (samples x taxa).

    Parameters
    ----------
    path : str or Path
        The table.
    format : str
        One of ``READ_FORMATS``; "auto" decides by extension and content.
    meta : str, Path or DataFrame, optional
        Sample metadata to join by sample id (see :func:`pydepmicro.join_metadata` for the policy).
        For delimited tables it also settles the orientation.
    taxonomy : str, Path or DataFrame, optional
        For delimited tables: a phyloseq ``tax_table`` export (taxa x ranks).
    taxa_are_rows : bool, optional
        For delimited tables: the orientation. Detected when None (see
        :mod:`pydepmicro.io.delimited`); an explicit value contradicted by the ids is an error.
    missing : {"error", "drop", "keep"}
        What to do with samples that have no metadata row.
    id_column : str or int, optional
        Metadata column with the sample ids (default: the first).
    sep : str, optional
        Field separator of delimited files (sniffed when None).
    """
    fmt = detect_format(path) if format == "auto" else format
    if fmt not in READ_FORMATS:
        raise InputFormatError(f"unknown format {format!r}", hint=f"use one of {', '.join(READ_FORMATS)}")
    check_readable(path)
    meta_frame = None
    if fmt in ("tsv", "csv", "tcga"):
        table, meta_frame = read_delimited(path, taxa_are_rows=taxa_are_rows, meta=meta, taxonomy=taxonomy,
                                           sep=sep, tcga=(fmt == "tcga"), id_column=id_column)
    elif fmt == "rds":
        table = _read_rds(path, taxa_are_rows=taxa_are_rows)
    else:
        table = _READERS[fmt](path)
    if fmt not in ("tsv", "csv", "tcga"):
        if taxonomy is not None:
            tax = taxonomy if isinstance(taxonomy, pd.DataFrame) else read_taxonomy(taxonomy)
            table = MicrobiomeTable(table.counts, table.sample_ids, table.taxa_ids, sample_meta=table.sample_meta,
                                    taxonomy=tax, source=table.source)
        if meta is not None:
            meta_frame = meta if isinstance(meta, pd.DataFrame) else read_metadata(meta, id_column=id_column)
    if meta_frame is not None:
        source = None if isinstance(meta, pd.DataFrame) else str(meta) if meta is not None else None
        table = join_metadata(table, meta_frame, missing=missing, meta_source=source)
    return table


def output_paths(path, format: str | None = None, *, with_sidecars: bool = True) -> tuple[str, dict[str, Path]]:
    """The format and every file that ``write_table`` would write for ``path``."""
    p = Path(path)
    fmt = format or _EXTENSIONS.get(suffix_of(p))
    if fmt is None:
        raise InputFormatError(
            f"cannot tell the output format from the extension {p.suffix!r}",
            path=str(p),
            hint=f"use .biom, .h5ad, .tsv, .csv, .rds or pass format= (one of {', '.join(WRITE_FORMATS)})",
        )
    if fmt not in WRITE_FORMATS:
        raise InputFormatError(f"cannot write format {fmt!r}", path=str(p),
                               hint=f"use one of {', '.join(WRITE_FORMATS)}")
    paths = {"table": p}
    if fmt in ("tsv", "csv", "tcga") and with_sidecars:
        paths.update(sidecar_paths(p))
    return fmt, paths


def write_table(table: MicrobiomeTable, path, format: str | None = None, *, force: bool = False,
                taxa_are_rows: bool = True) -> list[Path]:
    """Write ``table`` to ``path`` atomically; returns the files written.

    Delimited formats write the counts (taxa as rows unless ``taxa_are_rows=False``) and, beside
    them, ``<name>.sample_meta<ext>`` and ``<name>.taxonomy<ext>`` when the table has metadata or
    taxonomy; :func:`read_table` picks those up again. Nothing is written when any output exists
    and ``force`` is False, and a failed write leaves no partial file.
    """
    fmt, paths = output_paths(path, format)
    if "sample_meta" in paths and table.sample_meta.shape[1] == 0:
        paths.pop("sample_meta")
    if "taxonomy" in paths and table.taxonomy is None:
        paths.pop("taxonomy")
    writer = _WRITERS[fmt]
    with atomic_outputs(paths, force=force) as temps:
        if fmt in ("tsv", "csv", "tcga"):
            writer(table, temps, sep="\t" if fmt == "tsv" else ",", taxa_are_rows=taxa_are_rows)
        else:
            writer(table, temps)
    return list(paths.values())


# ---------------------------------------------------------------------- h5ad and rds


def _read_h5ad(path) -> MicrobiomeTable:
    import anndata

    try:
        adata = anndata.read_h5ad(path)
    except Exception as exc:  # anndata raises many types for a bad file
        raise InputFormatError(f"not a readable AnnData file ({type(exc).__name__})", path=str(path),
                               hint="check that it was written by anndata (.h5ad)") from exc
    return MicrobiomeTable.from_anndata(adata, source=str(path))


def _write_h5ad(table: MicrobiomeTable, paths: dict[str, Path]) -> None:
    table.to_anndata().write_h5ad(paths["table"])


def _read_rds(path, *, taxa_are_rows: bool | None = None) -> MicrobiomeTable:
    from .rds import read_rds

    return read_rds(path, taxa_are_rows=taxa_are_rows)


def _write_rds(table: MicrobiomeTable, paths: dict[str, Path]) -> None:
    from .rds import write_rds

    write_rds(table, paths["table"])


_READERS: dict[str, Callable] = {"biom": read_biom, "biom-json": read_biom, "h5ad": _read_h5ad}
_WRITERS: dict[str, Callable] = {
    "biom": write_biom_hdf5, "biom-json": write_biom_json, "h5ad": _write_h5ad, "rds": _write_rds,
    "tsv": write_delimited, "csv": write_delimited, "tcga": write_delimited,
}

from .imputation import imputation_paths, write_imputation  # noqa: E402

__all__ = ["READ_FORMATS", "WRITE_FORMATS", "detect_format", "imputation_paths", "read_metadata", "read_table",
           "read_taxonomy", "write_imputation", "write_table", "output_paths"]
