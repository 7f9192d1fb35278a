"""Merge benchmark folders written by separate processes (``depmicro benchmark --merge``).

A long run is split over processes by seed (``--seeds 1 --first-seed K``), cancer or ablation, each
writing its own folder. :func:`merge_runs` puts their rows into one folder, which is then reported
like any other. Rows are keyed as in results.csv; a key present in several folders is taken from the
first folder that has it, and the merge says how many such rows disagreed. Masks of the same name
must be identical: the processes then scored their methods on the same hidden entries.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputFormatError, InvalidOptionError, OutputExistsError
from ..evaluate.masks import EvalMask
from ._store import KEY, RESULTS, ResultStore, per_taxon_path, write_csv_atomic, write_text_atomic

#: metrics compared between duplicate rows; CPU runs are deterministic, GPU runs may differ in the last digits
_COMPARED = ("pcc", "per_taxon_pcc", "false_fill", "dropout_auroc")
_TOLERANCE = 1e-6


def merge_runs(folders, out) -> dict:
    """Merge the benchmark folders ``folders`` into ``out`` (created; may be one of them).

    Returns
    -------
    dict
        ``rows`` (merged ok rows), ``duplicates`` (rows present in more than one folder, first kept),
        ``disagreeing`` (duplicates whose metrics differ by more than 1e-6), ``masks`` (mask files).
    """
    folders = [Path(f) for f in folders]
    out = Path(out)
    if not folders:
        raise InvalidOptionError("nothing to merge", hint="give the folders with --merge DIR (repeatable)")
    for folder in folders:
        if not (folder / RESULTS).is_file():
            raise InputFormatError(f"{folder} has no {RESULTS}", hint="give folders written by depmicro benchmark")
    if (out / RESULTS).is_file() and out.resolve() not in {f.resolve() for f in folders}:
        raise OutputExistsError(f"{out} already holds benchmark results",
                                hint=f"add it to the merge (--merge {out}) or merge into a new folder")
    stores = [ResultStore(f) for f in folders]
    masks = _merged_masks(folders)
    frames = [s.frame().assign(_folder=i) for i, s in enumerate(stores)]
    rows = pd.concat([f[f["status"] == "ok"] for f in frames], ignore_index=True)
    rows["seed"] = rows["seed"].astype(int)
    key = list(KEY)
    dup = rows.duplicated(subset=key, keep=False)
    disagreeing = 0
    for _, group in rows[dup].groupby(key):
        values = group[[c for c in _COMPARED if c in group.columns]].to_numpy(dtype=float)
        if not np.allclose(values, values[0], atol=_TOLERANCE, equal_nan=True):
            disagreeing += 1
    kept = rows.drop_duplicates(subset=key, keep="first")
    taxa = [s.taxon_rows.assign(_folder=i) for i, s in enumerate(stores) if len(s.taxon_rows)]
    out.mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)
    if taxa:
        # per-taxon rows of the kept results row only, from the same folder
        per_taxon = pd.concat(taxa, ignore_index=True).merge(kept[key + ["_folder"]], on=key + ["_folder"])
        write_csv_atomic(per_taxon.drop(columns="_folder"), per_taxon_path(out))
    for name, source in masks.items():
        target = out / "masks" / name
        if source.resolve() != target.resolve():
            shutil.copyfile(source, target)
    write_csv_atomic(kept.drop(columns="_folder").reset_index(drop=True), out / RESULTS)
    _merge_run_info(folders, out, kept)
    return dict(rows=len(kept), duplicates=len(rows) - len(kept), disagreeing=disagreeing, masks=len(masks))


def _merged_masks(folders: list[Path]) -> dict[str, Path]:
    """Mask file name -> first folder's file; refuses masks of the same name that differ."""
    found: dict[str, Path] = {}
    for folder in folders:
        for path in sorted((folder / "masks").glob("*.npz")):
            if path.name not in found:
                found[path.name] = path
                continue
            first, other = EvalMask.load(found[path.name]), EvalMask.load(path)
            same = (first.sample_ids.equals(other.sample_ids) and first.taxa_ids.equals(other.taxa_ids)
                    and np.array_equal(first.drawn, other.drawn) and np.array_equal(first.hidden, other.hidden))
            if not same:
                raise InputFormatError(
                    f"mask {path.name} differs between {found[path.name].parent.parent} and {folder}",
                    hint="merge only runs with the same data and mask settings (--max-samples, --p2-lineage, ...)")
    return found


def _merge_run_info(folders: list[Path], out: Path, kept: pd.DataFrame) -> None:
    runs, latest = [], {}
    for folder in folders:
        path = folder / "run.json"
        if not path.is_file():
            continue
        info = json.loads(path.read_text())
        runs += [{**r, "folder": r.get("folder", str(folder))} for r in info.get("runs", [])
                 if not r.get("merged_from")]
        latest = latest or dict(info.get("latest", {}))
    # the same run read twice (out may be one of the folders) is listed once; date and command alone
    # are not enough to tell runs apart (two runs can start in the same second with the same command)
    runs = list({json.dumps(r, sort_keys=True, default=str): r for r in runs}.values())
    settings = dict(latest.get("settings", {}))
    seeds = sorted(int(s) for s in kept["seed"].unique())
    methods = set(kept["method"])
    settings.update(seeds=len(seeds), first_seed=seeds[0] if seeds else 0, cancers=sorted(set(kept["data"])),
                    ablations=sorted({m.split("/", 1)[1] for m in methods if "/" in m}))
    entry = {**latest, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "settings": settings,
             "command": "merged (depmicro benchmark --merge) from: "
                        + "; ".join(f"{r['folder']}: {r.get('command', '?')}" for r in runs),
             "seeds": seeds, "merged_from": [str(f) for f in folders]}
    write_text_atomic(json.dumps({"latest": entry, "runs": runs}, indent=2), out / "run.json")
