"""The report of a benchmark folder: summary.csv, summary.md (mean +- sd, the issue's goals as met /
missed with their margins, ablations, samplers) and the figures (:mod:`.figures`).

Everything is recomputed from results.csv, per_taxon.csv and run.json, so a resumed or partial run
gets a consistent report: ``depmicro benchmark --report-only --out OUT`` rewrites it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ._store import KEY, RESULTS, per_taxon_path, write_csv_atomic, write_text_atomic
from .ablations import ABLATIONS, DENOISER_REFERENCE, NOT_AVAILABLE

MODEL = "depmicrodiff"
GROUP = ["data", "regime", "variant", "method"]

#: (column, header, digits) of the main tables
METRICS = (
    ("pcc", "PCC", 3), ("per_taxon_pcc", "per-taxon PCC", 2), ("per_sample_pcc", "per-sample PCC", 2),
    ("cosine", "cosine", 3), ("rmse", "RMSE", 3), ("mae", "MAE", 3), ("false_fill", "false-fill", 2),
    ("dropout_auroc", "dropout AUROC", 2), ("presence_auroc", "presence AUROC", 2),
    ("observed_fidelity", "max obs. change", 2), ("coverage", "90% coverage", 2),
    ("fit_seconds", "fit s", 1), ("impute_seconds", "impute s", 1), ("fit_mem_mb", "fit MiB", 0),
    ("impute_mem_mb", "impute MiB", 0),
)

#: BENCHMARK.md's reference numbers (3 seeds): (data, regime, variant, method) -> (pooled, per-taxon PCC)
REFERENCE = {
    ("coad", "aware", "p1", "knn10"): (0.963, 0.59), ("stad", "aware", "p1", "knn10"): (0.904, 0.81),
    ("hnsc", "aware", "p1", "knn10"): (0.904, 0.62),
    ("coad", "blind", "p1", "knn10_zeros_as_missing"): (0.964, 0.67),
    ("stad", "blind", "p1", "knn10_zeros_as_missing"): (0.919, 0.86),
    ("hnsc", "blind", "p1", "knn10_zeros_as_missing"): (0.915, 0.82),
    ("coad", "blind", "p1", "knn10_neighbour_mean"): (0.563, 0.37),
    ("stad", "blind", "p1", "knn10_neighbour_mean"): (0.812, 0.68),
    ("hnsc", "blind", "p1", "knn10_neighbour_mean"): (0.756, 0.38),
    ("coad", "aware", "p2", "knn10"): (0.955, 0.52), ("stad", "aware", "p2", "knn10"): (0.893, 0.79),
    ("hnsc", "aware", "p2", "knn10"): (0.887, 0.54),
    ("coad", "aware", "p2", "iterative"): (0.966, 0.79), ("stad", "aware", "p2", "iterative"): (0.900, 0.92),
    ("hnsc", "aware", "p2", "iterative"): (0.906, 0.79),
}
#: DepMicroDiff's Table II (blind regime, pooled PCC)
PAPER = {"coad": 0.712, "stad": 0.641, "hnsc": 0.636}
GOAL_DATA = ("coad", "stad", "hnsc")
#: an ablation's paired PCC difference smaller than this (or than its sd over seeds) is "no clear effect"
MIN_EFFECT = 0.005


# ---------------------------------------------------------------------- numbers


def load_results(out) -> pd.DataFrame:
    path = Path(out) / RESULTS
    if not path.is_file():
        return pd.DataFrame(columns=[*KEY, "status"])
    frame = pd.read_csv(path)
    return frame


def summary_frame(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, sd and number of seeds of every metric per data x regime x variant x method (ok rows)."""
    ok = results[results["status"] == "ok"] if "status" in results else results
    if ok.empty:
        return pd.DataFrame()
    numeric = [c for c in ok.columns if c not in (*KEY, "kind") and pd.api.types.is_numeric_dtype(ok[c])]
    grouped = ok.groupby(GROUP, sort=False)
    mean = grouped[numeric].mean().add_suffix("_mean")
    sd = grouped[numeric].std(ddof=1).add_suffix("_sd")
    out = pd.concat([grouped.size().rename("n_seeds"), mean, sd], axis=1).reset_index()
    kinds = ok.drop_duplicates("method").set_index("method")["kind"]
    out.insert(4, "kind", out["method"].map(kinds))
    return out


def _fmt(mean, sd=None, digits: int = 3) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    text = f"{mean:.{digits}f}"
    if sd is not None and not (isinstance(sd, float) and math.isnan(sd)):
        text += f" ± {sd:.{digits}f}"
    return text


def _get(summary: pd.DataFrame, data, regime, variant, method):
    sel = summary[(summary.data == data) & (summary.regime == regime) & (summary.variant == variant)
                  & (summary.method == method)]
    return None if sel.empty else sel.iloc[0]


def _val(row, metric: str) -> float:
    if row is None or f"{metric}_mean" not in row:
        return float("nan")
    return float(row[f"{metric}_mean"])


# ---------------------------------------------------------------------- goals


def goals(summary: pd.DataFrame) -> list[dict]:
    """The issue's goals, one entry per (goal, data[, regime]): status met / missed / not run, margin."""
    out: list[dict] = []
    if summary.empty:
        return out
    datas = list(dict.fromkeys(summary["data"]))
    for data in datas:
        row = _get(summary, data, "blind", "p1", MODEL)
        if row is None:
            out.append(dict(goal="G1 blind P1", data=data, status="not run", text="no blind P1 DepMicroDiff rows"))
        else:
            checks = [("pooled PCC", _val(row, "pcc"), 0.90, ">="), ("false-fill", _val(row, "false_fill"), 0.05, "<="),
                      ("dropout AUROC", _val(row, "dropout_auroc"), 0.95, ">=")]
            parts, met = [], True
            for label, value, target, op in checks:
                margin = value - target if op == ">=" else target - value
                ok = not math.isnan(value) and margin >= 0
                met &= ok
                # a margin that rounds to zero gets the digits that show which side of the target it is on
                digits = 3 if math.isnan(margin) or abs(margin) >= 0.0005 else 5
                parts.append(f"{label} {_fmt(value, digits=digits)} (target {op} {target}: {'met' if ok else 'missed'}, "
                             f"margin {margin:+.{digits}f})")
            out.append(dict(goal="G1 blind P1", data=data, status="met" if met else "missed",
                            text="; ".join(parts)))
        out += [_beat("G2 aware P1 pooled PCC", summary, data, "aware", "p1", "pcc")]
        for regime in ("blind", "aware"):
            if _get(summary, data, regime, "p2", MODEL) is not None:
                out.append(_beat(f"G3 P2 ({regime}) per-taxon PCC", summary, data, regime, "p2", "per_taxon_pcc"))
        if not any(_get(summary, data, r, "p2", MODEL) is not None for r in ("blind", "aware")):
            out.append(dict(goal="G3 P2 per-taxon PCC", data=data, status="not run", text="no P2 DepMicroDiff rows"))
    return out


def _beat(goal: str, summary, data, regime, variant, metric) -> dict:
    row = _get(summary, data, regime, variant, MODEL)
    base = summary[(summary.data == data) & (summary.regime == regime) & (summary.variant == variant)
                   & (summary.kind == "baseline")]
    if row is None or base.empty:
        return dict(goal=goal, data=data, status="not run", text="DepMicroDiff or baselines missing")
    values = base.set_index("method")[f"{metric}_mean"].dropna()
    if values.empty:
        return dict(goal=goal, data=data, status="not run", text="no baseline value")
    best, best_value = values.idxmax(), float(values.max())
    mine = _val(row, metric)
    margin = mine - best_value
    status = "met" if not math.isnan(mine) and margin > 0 else "missed"
    return dict(goal=goal, data=data, status=status,
                text=f"DepMicroDiff {_fmt(mine)} vs best baseline {best} {_fmt(best_value)}: margin {margin:+.3f}")


# ---------------------------------------------------------------------- ablations


def ablation_frame(results: pd.DataFrame) -> pd.DataFrame:
    """Per ablation and setting: mean +- sd of the paired (by seed) difference "with the component -
    without it": reference - ablation, or ablation - reference for an ablation that adds a component
    (``adds``: Dep, the sparsity loss, the Poincare embedding, off in the main model). Positive: the component
    helps.

    The reference is the main model, or for the denoiser's components the main model imputing with
    the denoiser's estimate (:data:`.ablations.DENOISER_REFERENCE`; column ``reference``)."""
    ok = results[results["status"] == "ok"]
    rows = []
    for name, abl in ABLATIONS.items():
        sub = ok[ok.method == f"{MODEL}/{name}"]
        if sub.empty:
            continue
        ref_rows = ok[ok.method == (f"{MODEL}/{abl.reference}" if abl.reference else MODEL)]
        for (data, regime, variant), g in sub.groupby(["data", "regime", "variant"], sort=False):
            m = ref_rows[(ref_rows.data == data) & (ref_rows.regime == regime) & (ref_rows.variant == variant)]
            paired = g.merge(m, on="seed", suffixes=("", "_main"))
            row = dict(ablation=name, group=abl.group, what=abl.what, data=data, regime=regime, variant=variant,
                       reference=abl.reference or "main", adds=abl.adds, n_seeds=len(g),
                       note=str(g["note"].iloc[0]) if "note" in g and g["note"].notna().any() else "")
            for metric in ("pcc", "per_taxon_pcc", "false_fill", "dropout_auroc", "coverage", "impute_seconds",
                           "fit_seconds"):
                if metric not in g:  # results.csv of an older run
                    continue
                row[f"{metric}_mean"] = float(g[metric].mean())
                row[f"{metric}_sd"] = float(g[metric].std(ddof=1)) if len(g) > 1 else float("nan")
                if len(paired):
                    d = paired[f"{metric}_main"] - paired[metric]
                    d = -d if abl.adds else d
                    row[f"d_{metric}_mean"] = float(d.mean())
                    row[f"d_{metric}_sd"] = float(d.std(ddof=1)) if len(d) > 1 else float("nan")
            rows.append(row)
    return pd.DataFrame(rows)


def _direction(row, metric: str) -> int:
    """+1 / -1 / 0: the reference above / below / not clearly apart from the ablation on ``metric``
    (apart = by more than MIN_EFFECT and than the sd of the paired difference over seeds)."""
    d, sd = row.get(f"d_{metric}_mean", float("nan")), row.get(f"d_{metric}_sd", float("nan"))
    if d is None or math.isnan(d):
        return 0
    tol = max(MIN_EFFECT, 0.0 if sd is None or math.isnan(sd) else sd)
    return 1 if d > tol else -1 if d < -tol else 0


def _verdict(row) -> str:
    """One phrase from the paired differences of pooled and per-taxon PCC; they can disagree."""
    n = row["n_seeds"]
    if row.get("note"):
        return f"same as {row.get('reference', 'main')}"
    if math.isnan(row.get("d_pcc_mean", float("nan"))):
        return f"no {row.get('reference', 'main')} row to compare"
    count = f"{n} seed{'s' if n != 1 else ''}"
    pooled, per_taxon = _direction(row, "pcc"), _direction(row, "per_taxon_pcc")
    if pooled * per_taxon < 0:
        better, worse = ("per-taxon", "pooled") if per_taxon > 0 else ("pooled", "per-taxon")
        who = {"estimate": "the main estimate", "zeros": "the main zeros policy"}.get(row.get("group"), "the component")
        return f"mixed: {who} raises {better} PCC and lowers {worse} PCC ({count})"
    d = pooled or per_taxon
    moved, still = ("pooled", "per-taxon") if pooled else ("per-taxon", "pooled")
    seeds = f" ({moved} PCC; {still} no clear effect; {count})" if d and not (pooled and per_taxon) else f" ({count})"
    return _VERDICTS.get(row.get("group"), _VERDICTS[None])[d] + seeds


#: verdict phrases by ablation group (by the sign of the paired difference); "estimate" and "zeros" rows
#: are the same model imputing another way, not a component removed
_VERDICTS = {
    None: {1: "component helps", -1: "component hurts: remove or fix", 0: "no clear effect"},
    "estimate": {1: "the main estimate scores higher", -1: "this estimate scores higher than the main one",
                 0: "no clear difference"},
    "zeros": {1: "the main zeros policy scores higher", -1: "this policy scores higher (false-fill beside it)",
              0: "no clear difference"},
}


#: the paper's three ablations, each read from any of its names: the Dep one runs as ``with_dependency``
#: since Dep left the main model, and as ``no_dependency`` in the runs made before
PAPER_ABLATIONS = {"no_pretrain": ("no_pretrain",), "no_metadata": ("no_metadata",),
                   "dependency mask": ("with_dependency", "no_dependency")}


def _difference(row) -> str:
    """How a row's difference is taken (see :func:`ablation_frame`)."""
    return f"ablation - {row['reference']}" if row.get("adds") else f"{row['reference']} - ablation"


def _ablation_goal(abl: pd.DataFrame) -> list[str]:
    """G4: the paper's three ablations with seeds, and a verdict per component ablation run."""
    lines = []
    for label, names in PAPER_ABLATIONS.items():
        sub = abl[abl.ablation.isin(names)] if not abl.empty else abl
        if len(sub):  # a row that repeats its reference (same configuration) measured nothing
            sub = sub[sub.note.fillna("") == ""]
        if sub.empty:
            lines.append(f"- **G4 paper ablation {label}: not run**")
            continue
        for r in sub.to_dict("records"):
            enough = "met" if r["n_seeds"] >= 2 else "missed (needs >= 2 seeds)"
            lines.append(f"- **G4 paper ablation {label} ({r['ablation']}), {r['data']} ({r['regime']} "
                         f"{r['variant'].upper()}): {enough}** - Δ PCC ({_difference(r)}) "
                         f"{_fmt(r.get('d_pcc_mean'), r.get('d_pcc_sd'))}, Δ per-taxon PCC "
                         f"{_fmt(r.get('d_per_taxon_pcc_mean'), r.get('d_per_taxon_pcc_sd'))} over "
                         f"{r['n_seeds']} seed(s): {_verdict(r)}")
    paper = [n for names in PAPER_ABLATIONS.values() for n in names]
    others = abl[~abl.ablation.isin(paper) & (abl.group != "sampler")] if not abl.empty else abl
    for r in others.to_dict("records"):
        # the estimate and zeros rows change how the main model imputes, not what it is made of
        kind = "imputation option" if r.get("group") in ("estimate", "zeros") else "G4 component ablation"
        lines.append(f"- {kind} {r['ablation']}, {r['data']} ({r['regime']} {r['variant'].upper()}): Δ PCC "
                     f"{_fmt(r.get('d_pcc_mean'), r.get('d_pcc_sd'))}, Δ per-taxon PCC "
                     f"{_fmt(r.get('d_per_taxon_pcc_mean'), r.get('d_per_taxon_pcc_sd'))} - {_verdict(r)}")
    return lines


# ---------------------------------------------------------------------- markdown


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def summary_markdown(results: pd.DataFrame, run_info: dict | None = None, figures: list[str] | None = None) -> str:
    summary = summary_frame(results)
    latest = (run_info or {}).get("latest", {})
    settings = latest.get("settings", {})
    machine = latest.get("machine", {})
    lines = ["# DepMicroDiff imputation benchmark", ""]
    if settings.get("quick"):
        lines += ["**Quick run** (`--quick`): a tiny model on a subset - it checks the path, it measures nothing.", ""]
    lines += [f"- command: `{latest.get('command', '?')}`",
              f"- date: {latest.get('date', '?')}; commit: {machine.get('commit', '?')}",
              f"- machine: {machine.get('host', '?')}, {machine.get('cpus', '?')} CPUs, {machine.get('platform', '?')}; "
              f"GPU: {machine.get('cuda') or 'none'}; torch {machine.get('torch', '?')}; device setting "
              f"{settings.get('device', '?')}",
              f"- data: {latest.get('data', '?')}; seeds: {settings.get('seeds', '?')}; regimes: "
              f"{', '.join(settings.get('regimes', []))}; mask variants: {', '.join(settings.get('variants', []))} "
              f"(P2 relatives: {settings.get('p2_lineage', '?')} lineage, "
              f"{'zero and nonzero' if settings.get('p2_hide_zeros') else 'nonzero only'}); masked fraction: "
              f"{settings.get('fraction', '?')}",
              f"- DepMicroDiff: hyperparameters {settings.get('model') or 'package defaults'}, fit options "
              f"{settings.get('fit') or 'package defaults'}, VAE pretraining "
              f"{'on the other datasets, ' + str(settings.get('pretrain_steps')) + ' steps' if settings.get('pretrain') else 'off'}, "
              f"{settings.get('draws')} draws, sampler {settings.get('sampler')}; zeros policy keep (aware) / auto (blind)",
              f"- samples per dataset: {settings.get('max_samples') or 'all'}; metrics on the natural-log scale "
              f"(log base {settings.get('log_base', math.e):.4g})" if settings else "",
              ""]
    if results.empty or summary.empty:
        return "\n".join(lines + ["No results yet.", ""])
    failed = results[results["status"] != "ok"]
    if len(failed):
        lines += [f"**{len(failed)} failed row(s)** (retried on the next run):", ""]
        lines += [f"- {r.data}/{r.regime}/{r.variant}/{r.method}/s{r.seed}: {r.status}" for r in failed.itertuples()]
        lines.append("")

    lines += ["## Goals (issue 5)", ""]
    for g in goals(summary):
        lines.append(f"- **{g['goal']}, {g['data']}: {g['status']}** - {g['text']}")
    paper = [f"{d.upper()} {PAPER[d]}" for d in summary["data"].unique() if d in PAPER]
    if paper:
        lines += ["", f"DepMicroDiff's Table II (blind, pooled PCC) for comparison: {', '.join(paper)}."]
    abl = ablation_frame(results)
    lines += [""] + _ablation_goal(abl) + [""]

    for (data, regime, variant), g in summary.groupby(["data", "regime", "variant"], sort=False):
        g = g[g.kind != "ablation"]
        if g.empty:
            continue
        lines += [f"## {data.upper()}, {regime} regime, {variant.upper()} (mean ± sd over {int(g.n_seeds.max())} seed(s))",
                  ""]
        header = ["method"] + [h for _, h, _ in METRICS]
        rows = []
        for r in g.itertuples():
            r = r._asdict()
            cells = [r["method"]]
            for metric, _, digits in METRICS:
                cells.append(_fmt(r.get(f"{metric}_mean"), r.get(f"{metric}_sd"), digits))
            rows.append(cells)
        lines += _table(header, rows) + [""]
        mine = g[g.method == MODEL]
        if len(mine) and mine.get("n_drawn_unscorable_mean", pd.Series([0.0])).fillna(0).iloc[0] > 0:
            lost, drawn = mine["n_drawn_unscorable_mean"].iloc[0], mine["n_drawn_mean"].iloc[0]
            lines += [f"DepMicroDiff scored 0 on {lost:.0f} of {drawn:.0f} drawn entries ({lost / drawn:.0%}) that lie "
                      "in samples with no visible nonzero count (no library size to scale by).", ""]

    if not abl.empty:
        lines += ["## Ablations", "",
                  "Δ = with the component - without it, paired by seed (positive: the component helps): reference - "
                  "ablation for an ablation that takes a component away, ablation - reference for one that adds it "
                  "(with_dependency*: the dependency mask is off in the main model). The main point estimate "
                  "fills missing entries from the VAE's pass, which never runs the denoiser; so the denoiser's "
                  "components are ablated on the denoiser's own estimate and compared with the main model imputing "
                  f"that way ({DENOISER_REFERENCE}), "
                  "the VAE's components with the main model.", ""]
        header = ["ablation", "data", "setting", "reference", "PCC", "Δ PCC", "per-taxon PCC", "Δ per-taxon",
                  "false-fill", "dropout AUROC", "impute s", "verdict"]
        rows = []
        for r in abl[abl.group != "sampler"].to_dict("records"):
            rows.append([r["ablation"], r["data"], f"{r['regime']} {r['variant'].upper()}", r["reference"],
                         _fmt(r["pcc_mean"], r["pcc_sd"]), _fmt(r.get("d_pcc_mean"), r.get("d_pcc_sd")),
                         _fmt(r["per_taxon_pcc_mean"], r["per_taxon_pcc_sd"], 2),
                         _fmt(r.get("d_per_taxon_pcc_mean"), r.get("d_per_taxon_pcc_sd"), 2),
                         _fmt(r["false_fill_mean"], None, 2), _fmt(r["dropout_auroc_mean"], None, 2),
                         _fmt(r["impute_seconds_mean"], None, 1), _verdict(r)])
        lines += _table(header, rows) + [""]
        samp = abl[abl.group == "sampler"]
        if len(samp):
            lines += ["### Samplers: accuracy beside time (same trained model, estimate = mean of the draws)", ""]
            header = ["sampler", "data", "setting", "PCC", "per-taxon PCC", "false-fill", "coverage", "impute s", "note"]
            rows = [[r["ablation"].removeprefix("sampler_"), r["data"], f"{r['regime']} {r['variant'].upper()}",
                     _fmt(r["pcc_mean"], r["pcc_sd"]), _fmt(r["per_taxon_pcc_mean"], r["per_taxon_pcc_sd"], 2),
                     _fmt(r["false_fill_mean"], None, 2), _fmt(r.get("coverage_mean"), None, 2),
                     _fmt(r["impute_seconds_mean"], r["impute_seconds_sd"], 1), r["note"]]
                    for r in samp.to_dict("records")]
            lines += _table(header, rows) + [""]
    lines += ["### Not available", ""] + [f"- {name}: {why}" for name, why in NOT_AVAILABLE.items()] + [""]

    ref = []
    variants = list(dict.fromkeys(summary["variant"]))
    for (data, regime, variant, method), (pcc, ptx) in REFERENCE.items():
        for label in [v for v in variants if v == variant or (variant == "p2" and v.startswith("p2_"))]:
            row = _get(summary, data, regime, label, method)
            if row is not None:
                ref.append([data, regime, label.upper(), method, f"{pcc} / {ptx}",
                            f"{_fmt(_val(row, 'pcc'))} / {_fmt(_val(row, 'per_taxon_pcc'), None, 2)}"])
    if ref:
        lines += ["## Baselines against BENCHMARK.md's reference numbers", "",
                  "pooled / per-taxon PCC. BENCHMARK.md's P2 reference numbers are reproduced by relatives at family "
                  "rank and below (`--p2-lineage family`), not by the full-lineage rule its text describes and this "
                  "benchmark uses by default (see the docstring of pydepmicro.benchmark.run).", ""]
        lines += _table(["data", "regime", "mask", "method", "BENCHMARK.md", "this run"], ref) + [""]
    p2 = results[(results.status == "ok") & results.variant.astype(str).str.startswith("p2")]
    for label, hidden in p2.drop_duplicates(["data", "variant", "seed"]).groupby("variant", sort=False):
        ratio = (hidden.n_hidden / hidden.n_drawn).groupby(hidden.data).mean()
        lines += [f"{label.upper()}: entries hidden per drawn entry: "
                  + ", ".join(f"{d.upper()} {v:.1f}" for d, v in ratio.items()), ""]
    if figures:
        lines += ["## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures] + [""]
    lines += ["Files: results.csv (one row per data x regime x mask x method x seed), per_taxon.csv, summary.csv, "
              "masks/*.npz (the masks every method saw), models/ (pretrained VAEs, main models), run.json.", ""]
    return "\n".join(lines)


def write_report(out, *, echo=print, figures: bool = True) -> Path:
    """Rewrite summary.csv, summary.md and the figures of benchmark folder ``out``."""
    out = Path(out)
    results = load_results(out)
    info = None
    if (out / "run.json").is_file():
        try:
            info = json.loads((out / "run.json").read_text())
        except ValueError:
            info = None
    made: list[str] = []
    if figures and not results.empty:
        from .figures import make_figures

        taxa_file = per_taxon_path(out)
        per_taxon = pd.read_csv(taxa_file, dtype={"taxon": str}) if taxa_file.is_file() else None
        made = make_figures(out, results, per_taxon)
    summary = summary_frame(results)
    if not summary.empty:
        write_csv_atomic(summary, out / "summary.csv")
    path = out / "summary.md"
    write_text_atomic(summary_markdown(results, info, made), path)
    echo(f"report: {path}" + (f" and {len(made)} figure(s)" if made else ""))
    return path
