"""Figures of the benchmark report (BENCHMARK.md, "Report"); matplotlib with the Agg backend.

- ``fig5_per_taxon_heatmap.png``: DepMicroDiff's per-taxon PCC, taxa x datasets (paper fig. 5)
- ``fig6_per_taxon_boxplot.png``: per-taxon PCC of every method, per dataset and setting (fig. 6)
- ``fig7_ablation_bars.png``: pooled and per-taxon PCC of the ablations beside the main model (figs. 7-8)
- ``fig10_ar_decay.png``: PCC against the AR decay alpha (fig. 10)
- ``samplers_accuracy_time.png``: PCC against imputation time per sampler

A figure without data is not drawn. Returns the file names written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..model._model import DEFAULTS
from .ablations import ABLATIONS, DENOISER_REFERENCE, with_references

MODEL = "depmicrodiff"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path, name: str, made: list[str]) -> None:
    folder = out / "figures"
    folder.mkdir(exist_ok=True)
    tmp = folder / f".{name}.tmp.png"
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(folder / name)
    made.append(f"figures/{name}")


def make_figures(out, results: pd.DataFrame, per_taxon: pd.DataFrame | None) -> list[str]:
    out = Path(out)
    plt = _plt()
    made: list[str] = []
    ok = results[results["status"] == "ok"]
    try:
        if per_taxon is not None and len(per_taxon):
            _heatmap(plt, out, per_taxon, made)
            _boxplot(plt, out, per_taxon, ok, made)
        _ablation_bars(plt, out, ok, made)
        _ar_decay(plt, out, ok, made)
        _samplers(plt, out, ok, made)
    finally:
        plt.close("all")
    return made


def _setting(frame: pd.DataFrame) -> tuple[str, str] | None:
    """blind P1 when present (the paper's setting), else the first one."""
    pairs = list(dict.fromkeys(zip(frame["regime"], frame["variant"])))
    if not pairs:
        return None
    return ("blind", "p1") if ("blind", "p1") in pairs else pairs[0]


def _heatmap(plt, out, per_taxon, made) -> None:
    mine = per_taxon[per_taxon.method == MODEL]
    setting = _setting(mine)
    if setting is None:
        return
    mine = mine[(mine.regime == setting[0]) & (mine.variant == setting[1])]
    if "name" in mine:
        mine = mine.assign(taxon=mine["name"].fillna(mine["taxon"]).astype(str))
    mat = mine.groupby(["taxon", "data"])["pcc"].mean().unstack("data")
    mat = mat.dropna(how="all")
    if mat.empty:
        return
    mat = mat.loc[mat.mean(axis=1).sort_values(ascending=False).index]
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * mat.shape[1], max(3.0, 0.13 * mat.shape[0])))
    im = ax.imshow(mat.to_numpy(), aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks(range(mat.shape[1]), [c.upper() for c in mat.columns])
    ax.set_yticks(range(mat.shape[0]), mat.index, fontsize=5)
    ax.set_title(f"DepMicroDiff per-taxon PCC ({setting[0]}, {setting[1].upper()})", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.5, label="PCC (mean over seeds)")
    _save(fig, out, "fig5_per_taxon_heatmap.png", made)


def _boxplot(plt, out, per_taxon, ok, made) -> None:
    kinds = ok.drop_duplicates("method").set_index("method")["kind"]
    frame = per_taxon[per_taxon.method.map(kinds).isin(["model", "baseline"])].dropna(subset=["pcc"])
    if frame.empty:
        return
    settings = list(dict.fromkeys(zip(frame.regime, frame.variant)))
    datas = list(dict.fromkeys(frame.data))
    fig, axes = plt.subplots(len(settings), len(datas), figsize=(4.2 * len(datas), 3.2 * len(settings)),
                             squeeze=False)
    for i, (regime, variant) in enumerate(settings):
        for j, data in enumerate(datas):
            ax = axes[i][j]
            sub = frame[(frame.regime == regime) & (frame.variant == variant) & (frame.data == data)]
            methods = list(dict.fromkeys(sub.method))
            if not methods:
                ax.set_axis_off()
                continue
            ax.boxplot([sub[sub.method == m].pcc.to_numpy() for m in methods], showfliers=False)
            ax.set_xticks(range(1, len(methods) + 1), methods, rotation=60, ha="right", fontsize=6)
            ax.axhline(0, color="grey", lw=0.5)
            ax.set_title(f"{data.upper()} {regime} {variant.upper()}", fontsize=8)
            ax.set_ylabel("per-taxon PCC", fontsize=7)
    fig.tight_layout()
    _save(fig, out, "fig6_per_taxon_boxplot.png", made)


def _ablation_rows(ok: pd.DataFrame, groups) -> pd.DataFrame:
    names = with_references(n for n, a in ABLATIONS.items() if a.group in groups)
    names = [f"{MODEL}/{n}" for n in names]
    abl = ok[ok.method.isin(names)]
    if "note" in abl:  # a row that repeats its reference's configuration (its note says so) measured nothing
        abl = abl[abl.note.fillna("") == ""]
    if abl.empty:
        return abl
    # the main rows of the same masks only, so that a figure pairs like with like when the main model ran
    # on more seeds than the ablations
    return pd.concat([_on_masks_of(ok[ok.method == MODEL], abl), abl])


def _on_masks_of(rows: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """The ``rows`` scored on a mask (data, regime, variant, seed) that ``other`` has rows for."""
    masks = set(zip(other.data, other.regime, other.variant, other.seed))
    return rows[np.array([m in masks for m in zip(rows.data, rows.regime, rows.variant, rows.seed)], dtype=bool)]


def _ablation_bars(plt, out, ok, made) -> None:
    rows = _ablation_rows(ok, ("paper", "dependency", "ar", "order", "decoder"))
    if rows.empty:
        return
    stats = rows.groupby(["method", "data"], sort=False)[["pcc", "per_taxon_pcc"]].agg(["mean", "std"])
    methods = list(dict.fromkeys(rows.method))
    datas = list(dict.fromkeys(rows.data))
    fig, axes = plt.subplots(1, 2, figsize=(max(6, 1.3 * len(methods) * len(datas) / 2 + 3), 3.6))
    width = 0.8 / len(datas)
    for ax, metric, label in ((axes[0], "pcc", "pooled PCC"), (axes[1], "per_taxon_pcc", "median per-taxon PCC")):
        for k, data in enumerate(datas):
            mean = [stats.loc[(m, data), (metric, "mean")] if (m, data) in stats.index else np.nan for m in methods]
            sd = [stats.loc[(m, data), (metric, "std")] if (m, data) in stats.index else np.nan for m in methods]
            ax.bar(np.arange(len(methods)) + k * width, mean, width, yerr=np.nan_to_num(sd), label=data.upper(),
                   capsize=2)
        ax.set_xticks(np.arange(len(methods)) + 0.4 - width / 2,
                      ["main" if m == MODEL else m.replace(f"{MODEL}/", "") for m in methods], rotation=45,
                      ha="right", fontsize=7)
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, out, "fig7_ablation_bars.png", made)


def _run_alpha(config) -> float:
    """The AR decay of a run's model: its ``ar_alpha`` setting (results.csv's config, JSON), else the default."""
    settings = json.loads(config) if isinstance(config, str) and config.startswith("{") else {}
    return float(settings.get("ar_alpha", DEFAULTS["ar_alpha"]))


def _ar_decay(plt, out, ok, made) -> None:
    rows = ok[ok.method.str.startswith(f"{MODEL}/ar_alpha_")]
    if rows.empty:
        return
    rows = rows.assign(alpha=rows.method.str.removeprefix(f"{MODEL}/ar_alpha_").astype(float))
    # the reference (the denoiser's estimate at the run's own alpha) on the same masks is a point of the curve
    ref = _on_masks_of(ok[ok.method == f"{MODEL}/{DENOISER_REFERENCE}"], rows)
    ref = ref.assign(alpha=[_run_alpha(c) for c in ref.get("config", [None] * len(ref))])
    rows = pd.concat([rows, ref])
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for data, g in rows.groupby("data", sort=False):
        s = g.groupby("alpha")["pcc"].agg(["mean", "std"]).sort_index()
        ax.errorbar(s.index, s["mean"], yerr=np.nan_to_num(s["std"]), marker="o", capsize=2, label=data.upper())
    ax.set_xlabel("AR decay alpha")
    ax.set_ylabel("pooled PCC")
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, out, "fig10_ar_decay.png", made)


def _samplers(plt, out, ok, made) -> None:
    rows = _ablation_rows(ok, ("sampler",))
    if rows.empty:
        return
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for data, g in rows.groupby("data", sort=False):
        s = g.groupby("method", sort=False)[["impute_seconds", "pcc"]].mean()
        ax.scatter(s.impute_seconds, s.pcc, label=data.upper())
        for method, r in s.iterrows():
            name = method.replace(f"{MODEL}/sampler_", "").replace(MODEL, "main")
            ax.annotate(name, (r.impute_seconds, r.pcc), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("imputation time (s, log scale)")
    ax.set_ylabel("pooled PCC")
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, out, "samplers_accuracy_time.png", made)
