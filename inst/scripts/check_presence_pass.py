"""Blind zeros: which deterministic pass should decide presence, and which should write the abundance?

``impute(zeros="auto")`` decides a zero in two steps: presence (its presence probability against the
threshold calibrated at fit for that pass) and abundance (the value written into a zero judged a
dropout). Each step can take the VAE's pass or the denoiser's (``estimate="vae"`` takes both from the
VAE's, the default ``"auto"`` both from the denoiser's). This script rescores the blind P1 main models
that ``depmicro benchmark`` saved, with the four combinations, exactly as the benchmark scores a
blind row (the same saved mask, input and metrics; the denoiser/denoiser line reproduces the
benchmark's own row, which the script checks).

Use it on selection masks (P1 seeds 10 and up, never the benchmark's 0-4), e.g.

    depmicro benchmark --data ../shared/data/tcma --out sel-coad-s12 --device cpu --regimes blind
        --variants p1 --cancers coad --seeds 1 --first-seed 12 --methods depmicrodiff --ablations none
    python inst/scripts/check_presence_pass.py sel-coad-s12 sel-stad-s12 ...
        [--csv out.csv] [--data ../shared/data/tcma]

Prints one line per mask and combination (pooled PCC, median per-taxon PCC, false-fill, dropout
AUROC, zeros filled; without a threshold, the presence pass's presence AUROC and that of the two
passes' average; and false-fill and dropout AUROC at the oracle threshold, the best Youden's J on the mask's own
answers that fills at most 5% of its true zeros (G1's limit): a ceiling, not a method) and the means
over the masks per combination. ``--calibrate-on all|validation`` calibrates the thresholds again on
every sample with reads (what fit does since ce2c138) or on fit's validation samples (what it did
before) (minutes per mask). Imputation only: seconds per mask.
"""

from __future__ import annotations

import argparse
import json
import re
import warnings
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pydepmicro.benchmark.run import BenchmarkSettings, _log, load_data, model_input, variant_label
from pydepmicro.evaluate import imputation_metrics
from pydepmicro.evaluate.metrics import auroc
from pydepmicro.evaluate.masks import EvalMask
from pydepmicro.model import DepMicroDiff, _data, _sampling
from pydepmicro.model._model import MIN_OBSERVED_SHARE, _spread_samples, _split, youden_threshold

PASSES = ("vae", "mean")
LABEL = {"vae": "VAE's", "mean": "denoiser's"}
METRICS = ("pcc", "per_taxon_pcc", "false_fill", "dropout_auroc")
G1_FALSE_FILL = 0.05  # issue 5's G1: at most 5% of the true zeros filled
MODEL_DIR = re.compile(r"^(?P<data>\w+)-blind-p1-s(?P<seed>\d+)$")


def pass_estimates(model: DepMicroDiff, fed, sampler: str) -> tuple[dict, tuple]:
    """Both deterministic passes of ``model`` over ``fed`` (no missing entries: the blind input), as impute
    computes them: {"vae": est, "mean": est} in model taxon order, and what assemble needs besides."""
    h = model.hparams
    alignment = _data.align_taxa(fed, model.taxa, align=False)
    prep = _data.prepare(fed, scale=h["scale"], log_base=h["log_base"])
    cond, cond_valid = model._condition_tokens(fed)
    schedulers = _sampling.schedulers_for(sampler, h, len(model.module.block_sizes))
    skip = prep.library_sizes <= 0
    out = {name: model._estimates(prep, alignment, cond, cond_valid, schedulers, skip, 64, draws=0, seed=0,
                                  estimate=name, keep_draws=False, progress=False) for name in PASSES}
    return out, (prep, alignment, skip)


def combine(model, fed, passes, context, presence: str, abundance: str, threshold: float | None = None
            ) -> tuple[np.ndarray, int]:
    """Counts (n, q) of impute(zeros="auto") with presence from pass ``presence`` (against ``threshold``,
    default its calibrated one) and the values written into dropouts from pass ``abundance``, and how
    many zeros were filled."""
    prep, alignment, skip = context
    h = model.hparams
    est = dict(value=passes[abundance]["value"], spread=passes[abundance]["spread"],
               presence_prob=passes[presence]["presence_prob"], abundance=passes[abundance]["abundance"])
    result = _sampling.assemble(fed, prep, alignment, est, zeros="auto",
                                threshold=model.dropout_threshold(presence) if threshold is None else threshold,
                                scale=h["scale"], log_base=h["log_base"], skip=skip,
                                min_observed_share=MIN_OBSERVED_SHARE if model.drops_renormalized else None)
    return result.table.counts, result.options["n_zeros_replaced"]


def oracle_threshold(dropouts: np.ndarray, true_zeros: np.ndarray) -> float:
    """The threshold that maximises Youden's J on the mask itself (its dropouts against its true zeros)
    among those that fill at most G1's share of the true zeros: a ceiling read off the answers, not a
    method; placed as fit's calibration places its own (0.5 when none separates them)."""
    best = youden_threshold(np.r_[np.ones(len(dropouts)), np.zeros(len(true_zeros))], np.r_[dropouts, true_zeros],
                            max_fpr=G1_FALSE_FILL)
    return _sampling.DEFAULT_DROPOUT_THRESHOLD if best is None else best


def run_settings(folder: Path) -> tuple[BenchmarkSettings, str]:
    """The settings and data folder of the benchmark run that wrote ``folder`` (its run.json)."""
    latest = json.loads((folder / "run.json").read_text())["latest"]
    known = {f.name for f in fields(BenchmarkSettings)}
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in latest["settings"].items() if k in known}
    return BenchmarkSettings(**given), latest["data"]


def calibrated_on(model: DepMicroDiff) -> str:
    """The samples fit calibrated the model's dropout thresholds on: "all" (since ce2c138) or "validation"."""
    return model.training["fit"].get("dropout_threshold", {}).get("samples", "validation")


def recalibrate(model: DepMicroDiff, fed, seed: int, samples: str) -> None:
    """Calibrate the model's dropout thresholds again, as fit does, on ``samples``: "validation" (fit's
    validation samples) or "all" (every sample with reads, at most ``CALIBRATION_MAX_ROWS``, the
    trained-on ones included). On the samples fit calibrated on, the thresholds are the saved ones."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # samples without reads are left out, as fit leaves them
        rows = _data.training_rows(fed)
        if samples == "validation":  # fit's split and its choice before ce2c138, the spread's still
            fit = model.training["fit"]
            rows = _spread_samples(*_split(rows, fit.get("val_fraction", 0.1), fit.get("seed", seed)))
        model.training["fit"]["dropout_threshold"] = model._calibrate_dropout(fed, rows, seed=seed)


def rescore(folder: Path, data_dir: str | None, calibrate_on: str = "saved") -> list[dict]:
    settings, data_used = run_settings(folder)
    targets, _ = load_data(data_dir or data_used, settings)
    bench = pd.read_csv(folder / "results.csv")
    rows = []
    for model_dir in sorted((folder / "models").iterdir()):
        match = MODEL_DIR.match(model_dir.name)
        if not match:
            continue
        name, seed = match["data"], int(match["seed"])
        table = targets[name]
        mask = EvalMask.load(folder / "masks" / f"{name}-{variant_label('p1', settings)}-s{seed}.npz")
        truth, fed = model_input(table, mask, "blind", settings)
        model = DepMicroDiff.load(model_dir, device="cpu")
        saved = {k: model.dropout_threshold(k) for k in PASSES}
        own = calibrated_on(model)
        if calibrate_on != "saved":
            recalibrate(model, fed, seed, calibrate_on)
            if calibrate_on == own and any(model.dropout_threshold(k) != v for k, v in saved.items()):
                raise SystemExit(f"{model_dir}: calibrating again on fit's samples gave other thresholds "
                                 f"{[model.dropout_threshold(k) for k in PASSES]} than saved {list(saved.values())}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            passes, context = pass_estimates(model, fed, settings.sampler)
        # without a threshold: each pass's presence probability, and their average, ranking the mask's
        # dropouts against its true zeros (results.csv presence_auroc)
        true_zero = ~np.isnan(truth) & ~mask.hidden & (np.nan_to_num(truth) == 0)
        prob = {k: np.nan_to_num(_sampling.to_table_order(passes[k]["presence_prob"], context[1], table.n_taxa))
                for k in PASSES}
        raw = {k: auroc(p[mask.drawn], p[true_zero]) for k, p in
               {**prob, "average": (prob["vae"] + prob["mean"]) / 2}.items()}
        oracle = {k: oracle_threshold(p[mask.drawn], p[true_zero]) for k, p in prob.items()}

        def score(counts):  # as the benchmark reads a result (run._model_estimates)
            est = np.where(np.isnan(counts), 0.0, _log(np.nan_to_num(counts), settings.log_base))
            return imputation_metrics(truth, est, mask, regime="blind")
        for presence in PASSES:
            for abundance in PASSES:
                counts, filled = combine(model, fed, passes, context, presence, abundance)
                metrics = score(counts)
                best = score(combine(model, fed, passes, context, presence, abundance, oracle[presence])[0])
                rows.append(dict(data=name, seed=seed, presence=presence, abundance=abundance, zeros_filled=filled,
                                 threshold=model.dropout_threshold(presence), **{k: metrics[k] for k in METRICS},
                                 presence_auroc=raw[presence], average_presence_auroc=raw["average"],
                                 oracle_threshold=oracle[presence], oracle_false_fill=best["false_fill"],
                                 oracle_dropout_auroc=best["dropout_auroc"]))
        # the benchmark's row is the default, both steps from the denoiser's pass: the same numbers or a bug
        ref = bench[(bench.data == name) & (bench.regime == "blind") & (bench.variant == "p1") & (bench.seed == seed)
                    & (bench.method == "depmicrodiff") & (bench.status == "ok")]
        if len(ref) and calibrate_on in ("saved", own):
            mine = rows[-1]
            for k in (*METRICS, "presence_auroc"):
                if not np.isclose(mine[k], float(ref[k].iloc[0]), rtol=0, atol=1e-6):
                    raise SystemExit(f"{model_dir}: {k} {mine[k]} differs from the benchmark's {float(ref[k].iloc[0])}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path, help="depmicro benchmark --out folders with blind P1 main models")
    ap.add_argument("--data", help="the TCMA folder, when not where the benchmark read it (its run.json)")
    ap.add_argument("--csv", type=Path, help="also write every line here")
    ap.add_argument("--calibrate-on", choices=("saved", "validation", "all"), default="saved",
                    help="the dropout thresholds: as saved at fit; or calibrated again on fit's validation "
                         "samples, or on every sample with reads (trained-on ones included); on the samples fit "
                         "calibrated on, a check: the same thresholds")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [row for folder in args.folders for row in rescore(folder, args.data, args.calibrate_on)]
    if not rows:
        raise SystemExit("no blind P1 main model (models/NAME-blind-p1-sSEED) in those folders")
    frame = pd.DataFrame(rows)
    pd.set_option("display.width", 160)
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    means = frame.groupby(["presence", "abundance"])[[*METRICS, "zeros_filled", "presence_auroc",
                                                       "average_presence_auroc", "oracle_false_fill",
                                                       "oracle_dropout_auroc"]].mean()
    means.index = [f"presence {LABEL[p]}, abundance {LABEL[a]}" for p, a in means.index]
    print(f"\nmeans over {frame.groupby(['data', 'seed']).ngroups} masks:")
    print(means.to_string(float_format=lambda v: f"{v:.4f}"))
    for name, part in frame.groupby("data"):
        m = part.groupby(["presence", "abundance"])[list(METRICS)].mean()
        print(f"\n{name} ({part.seed.nunique()} masks):")
        print(m.to_string(float_format=lambda v: f"{v:.4f}"))
    if args.csv:
        frame.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
