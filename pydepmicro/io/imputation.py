"""Writing an imputation: the imputed table in the input's format, plus which entries were imputed,
the spread of the draws and the dropout probability of zeros.

Where they go: AnnData (.h5ad) keeps them as layers of the same file (``imputed_mask``, ``spread``,
``dropout_prob``, ``log_values``) with the settings in ``uns["depmicro_impute"]``. Every other format
gets side TSVs beside the table, taxa as rows (as the delimited tables): ``<name>.imputed_mask.tsv``
(1 = imputed), ``<name>.spread.tsv`` and ``<name>.dropout_prob.tsv``. All files are written
atomically together; nothing is written when any exists and ``force`` is off.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ._atomic import atomic_outputs

#: per-entry layers written beside the imputed table (files, or AnnData layers)
LAYERS = ("imputed_mask", "spread", "dropout_prob")


def side_paths(path: Path, layers) -> dict[str, Path]:
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return {name: path.with_name(f"{stem}.{name}.tsv") for name in layers}


def imputation_paths(path, format: str | None = None) -> tuple[str, dict[str, Path]]:
    """The format and every file :func:`write_imputation` writes for ``path``."""
    from . import output_paths

    fmt, paths = output_paths(path, format)
    if fmt != "h5ad":
        paths.update(side_paths(Path(path), LAYERS))
    return fmt, paths


def write_imputation(result, path, format: str | None = None, *, force: bool = False) -> list[Path]:
    """Write an :class:`~pydepmicro.model.ImputationResult` to ``path``; returns the files written."""
    from . import _WRITERS

    fmt, paths = imputation_paths(path, format)
    table = result.table
    if "sample_meta" in paths and table.sample_meta.shape[1] == 0:
        paths.pop("sample_meta")
    if "taxonomy" in paths and table.taxonomy is None:
        paths.pop("taxonomy")
    with atomic_outputs(paths, force=force) as temps:
        if fmt == "h5ad":
            result.to_anndata().write_h5ad(temps["table"])
            return list(paths.values())
        table_temps = {k: v for k, v in temps.items() if k in ("table", "sample_meta", "taxonomy")}
        if fmt in ("tsv", "csv", "tcga"):
            _WRITERS[fmt](table, table_temps, sep="\t" if fmt == "tsv" else ",")
        else:
            _WRITERS[fmt](table, table_temps)
        for name, array in result.layers().items():
            frame = pd.DataFrame(array.T, index=table.taxa_ids, columns=table.sample_ids)
            frame.index.name = "taxon_id"
            frame.to_csv(temps[name], sep="\t", na_rep="NA", float_format="%.6g")
    return list(paths.values())
