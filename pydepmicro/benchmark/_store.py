"""The resumable result files of a benchmark folder: results.csv and per_taxon.csv (or .csv.gz).

A row is keyed by (data, regime, variant, method, seed). Rows with ``status == "ok"`` are never
recomputed; failed rows are retried on the next run. Every write replaces the whole file through
a temporary file in the same folder (``os.replace``), so an interrupted run leaves the last
complete version behind, never a half-written one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

KEY = ("data", "regime", "variant", "method", "seed")

#: column order of results.csv (further columns follow in first-seen order)
COLUMNS = (
    *KEY, "kind", "status", "pcc", "cosine", "rmse", "mae", "per_taxon_pcc", "per_sample_pcc",
    "false_fill", "dropout_auroc", "presence_auroc", "observed_fidelity", "coverage", "coverage_draws",
    "fit_seconds", "impute_seconds", "pretrain_seconds", "fit_mem_mb", "impute_mem_mb", "fit_gpu_mb",
    "impute_gpu_mb", "device", "sampler", "draws", "pretrained", "n_samples", "n_taxa", "n_drawn",
    "n_hidden", "n_true_zeros", "n_taxa_pcc", "n_samples_pcc", "n_drawn_unscorable", "config", "note",
)

RESULTS = "results.csv"
PER_TAXON = "per_taxon.csv"


def per_taxon_path(folder) -> Path:
    """A folder's per-taxon file: per_taxon.csv, or per_taxon.csv.gz where a committed copy was compressed."""
    plain = Path(folder) / PER_TAXON
    packed = plain.with_name(PER_TAXON + ".gz")
    return packed if packed.is_file() and not plain.is_file() else plain


def write_csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` via a temporary file in the same folder and a rename (gzip for ``.gz``)."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.csv", dir=path.parent)
    os.close(fd)
    try:
        frame.to_csv(name, index=False, compression="gzip" if path.suffix == ".gz" else None)
        os.replace(name, path)
    finally:
        if os.path.exists(name):
            os.unlink(name)


def write_text_atomic(text: str, path: Path) -> None:
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(name, path)
    finally:
        if os.path.exists(name):
            os.unlink(name)


def _key(row) -> tuple:
    return tuple(str(row[k]) for k in KEY)


class ResultStore:
    """results.csv (one row per data x regime x variant x method x seed) and per_taxon.csv."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.path = self.folder / RESULTS
        self.taxon_path = per_taxon_path(self.folder)
        self.rows: list[dict] = []
        self.taxon_rows = pd.DataFrame()
        if self.path.is_file() and self.path.stat().st_size:
            self.rows = pd.read_csv(self.path, dtype={"seed": int}).to_dict("records")
        if self.taxon_path.is_file() and self.taxon_path.stat().st_size:
            self.taxon_rows = pd.read_csv(self.taxon_path, dtype={"taxon": str, "seed": int})
        self._done = {_key(r) for r in self.rows if r.get("status") == "ok"}

    def done(self, data, regime, variant, method, seed) -> bool:
        return tuple(map(str, (data, regime, variant, method, seed))) in self._done

    def add(self, row: dict, per_taxon: pd.DataFrame | None = None) -> None:
        """Add (or replace) one row and its per-taxon PCCs, then rewrite both files."""
        key = _key(row)
        self.rows = [r for r in self.rows if _key(r) != key] + [row]
        if row.get("status") == "ok":
            self._done.add(key)
        if per_taxon is not None and len(per_taxon):
            old = self.taxon_rows
            if len(old):
                same = np.ones(len(old), dtype=bool)
                for k, v in zip(KEY, key):
                    same &= old[k].astype(str).to_numpy() == v
                old = old[~same]
            self.taxon_rows = pd.concat([old, per_taxon], ignore_index=True)
            write_csv_atomic(self.taxon_rows, self.taxon_path)
        write_csv_atomic(self.frame(), self.path)

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows)
        if frame.empty:
            return pd.DataFrame(columns=list(COLUMNS))
        cols = [c for c in COLUMNS if c in frame.columns] + [c for c in frame.columns if c not in COLUMNS]
        return frame[cols]
