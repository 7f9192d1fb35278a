"""The denoiser's components where the data has what they use: simulated tables with planted metadata
effects and planted taxon dependencies (issue 5, G4).

On TCMA the metadata explains about 1% of the composition (COAD, PERMANOVA on sample type) and the
dependencies are whatever the data has, so ``no_metadata``, ``no_dependency`` and ``no_ar`` changed
nothing there. Here the simulator (:func:`pydepmicro.datasets.simulate`) plants both, so a component
that works should show it:

- imputation: BENCHMARK.md's P1 mask, aware regime, the denoiser's estimate (``estimate="mean"``, the
  only estimate these components reach), the default model against ``metadata=False``,
  ``dependency="both"`` (Dep is off by default since 2026-11-22; runs before that compared the
  default with ``dependency="none"``, config ``no_dependency``) and ``n_blocks=1``, same seed, same
  mask; KNN-10 for scale;
- conditional generation: a logistic regression trained on the real table (log relative abundance)
  to tell tumour from normal, scored on samples generated from each real sample's metadata, at
  classifier-free guidances 1 (plain conditioning), 2 and 4; the real table's cross-validated AUROC
  is the ceiling, 0.5 the floor (metadata ignored). Beside it, how well a logistic regression tells
  the generated samples from the real ones (0.5 = alike): guidance should not buy the metadata's
  effect with unreal samples.

    python inst/scripts/check_components.py [--seeds 3] [--first-seed 0] [--n-samples 300] [--n-taxa 80]
        [--vae-steps 2000] [--dat-steps 2000] [--guidance 1,2,4] [--out /tmp/components] [key=value ...]

The run is resumable: rows already in ``OUT/results.csv`` are skipped.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from pydepmicro.cli_model import parse_value
from pydepmicro.datasets import simulate
from pydepmicro.evaluate import baselines_for, draw_mask, imputation_metrics, masked_log_inputs
from pydepmicro.model import _FIT_OPTIONS, DepMicroDiff
from pydepmicro.transforms import preprocess

#: name -> model options changed from the defaults
CONFIGS = {"default": {}, "no_metadata": {"metadata": False}, "with_dependency": {"dependency": "both"},
           "no_ar": {"n_blocks": 1}}
KEEP = ("pcc", "per_taxon_pcc", "per_sample_pcc", "rmse")


def _log_relative(counts: np.ndarray) -> np.ndarray:
    """The benchmark's log scale (natural log of relative abundance x 100, plus 1); empty samples stay 0."""
    return preprocess(np.nan_to_num(counts), base=np.e)


def _tumour_auroc(real, synthetic) -> tuple[float, float]:
    """(cross-validated AUROC on the real table, AUROC on the synthetic one of a model fitted on the real)."""
    label = (real.sample_meta["sample_type"] == "Primary Tumor").to_numpy()
    x_real = _log_relative(real.counts)
    clf = LogisticRegression(C=0.1, max_iter=2000)
    cv = cross_val_predict(clf, x_real, label, cv=5, method="predict_proba")[:, 1]
    clf.fit(x_real, label)
    synth_label = (synthetic.sample_meta["sample_type"] == "Primary Tumor").to_numpy()
    score = clf.predict_proba(_log_relative(synthetic.counts))[:, 1]
    return roc_auc_score(label, cv), roc_auc_score(synth_label, score)


def _two_sample_auroc(real, synthetic, seed: int) -> float:
    """Cross-validated AUROC of a logistic regression telling real from generated samples (0.5 = alike)."""
    x = np.vstack([_log_relative(real.counts), _log_relative(synthetic.counts)])
    y = np.r_[np.zeros(real.n_samples), np.ones(synthetic.n_samples)]
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    p = cross_val_predict(LogisticRegression(C=0.1, max_iter=2000), x, y, cv=folds, method="predict_proba")[:, 1]
    return roc_auc_score(y, p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--n-samples", type=int, default=300)
    ap.add_argument("--n-taxa", type=int, default=80)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--vae-steps", type=int, default=None)
    ap.add_argument("--dat-steps", type=int, default=None)
    ap.add_argument("--guidance", default="1,2,4", help="classifier-free guidances of the generation check")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="/tmp/components")
    ap.add_argument("options", nargs="*", help="DepMicroDiff and fit options as key=value, for every config")
    args = ap.parse_args()
    options = {k: parse_value(v) for k, v in (o.split("=", 1) for o in args.options)}
    fit_opts = {k: options.pop(k) for k in list(options) if k in _FIT_OPTIONS}
    steps = {k: v for k, v in (("vae_steps", args.vae_steps), ("dat_steps", args.dat_steps)) if v is not None}
    guidance = [float(w) for w in args.guidance.split(",")]
    out = Path(args.out)
    (out / "models").mkdir(parents=True, exist_ok=True)
    path = out / "results.csv"
    rows = pd.read_csv(path).to_dict("records") if path.exists() else []
    done = {(r["seed"], r["method"]) for r in rows}

    def save() -> None:
        pd.DataFrame(rows).to_csv(path.with_suffix(".tmp"), index=False)
        os.replace(path.with_suffix(".tmp"), path)

    for seed in range(args.first_seed, args.first_seed + args.seeds):
        table = simulate(args.n_samples, args.n_taxa, seed=seed).table
        mask = draw_mask(table, seed=seed, variant="p1")
        truth, x = masked_log_inputs(table, mask, "aware")
        fed = table.with_counts(np.expm1(x))  # relative abundance x 100, hidden entries NaN
        if (seed, "knn10") not in done:
            m = imputation_metrics(truth, baselines_for("aware")["knn10"](x, seed=seed), mask, regime="aware")
            rows.append({"seed": seed, "method": "knn10", **{k: m[k] for k in KEEP}})
            save()
        for name in args.configs.split(","):
            if (seed, name) in done:
                continue
            t0 = time.perf_counter()
            model = DepMicroDiff(device=args.device, **{**options, **CONFIGS[name]})
            model.fit(fed, seed=seed, progress=False, **steps, **fit_opts)
            fit_s = time.perf_counter() - t0
            result = model.impute(fed, estimate="mean", zeros="keep", seed=seed, progress=False)
            est = np.log1p(np.nan_to_num(result.table.counts))
            m = imputation_metrics(truth, est, mask, regime="aware")
            row = {"seed": seed, "method": name, **{k: m[k] for k in KEEP}, "fit_seconds": fit_s}
            rows.append(row)
            save()
            print(f"seed {seed} {name:14} pooled {m['pcc']:.3f} per-taxon {m['per_taxon_pcc']:.3f} "
                  f"(fit {fit_s:.0f} s)", flush=True)
        todo = [w for w in guidance if (seed, f"generation_g{w:g}") not in done]
        if todo:
            # a generation model (the README's settings) of the full table, kept for the other guidances
            folder = out / "models" / f"generation-s{seed}"
            if (folder / "config.json").exists():
                gen = DepMicroDiff.load(folder, device=args.device)
            else:
                gen = DepMicroDiff(device=args.device, **options)
                gen.fit(table, seed=seed, progress=False, generate_fraction=1.0, **steps, **fit_opts)
                gen.save(folder)
            for w in todo:
                t0 = time.perf_counter()
                synthetic = gen.generate(meta=table.sample_meta, seed=seed, progress=False, guidance=w)
                seconds = time.perf_counter() - t0
                real_cv, generated = _tumour_auroc(table, synthetic)
                rows.append({"seed": seed, "method": f"generation_g{w:g}", "tumour_auroc_real_cv": real_cv,
                             "tumour_auroc_generated": generated, "real_vs_generated_auroc": _two_sample_auroc(
                                 table, synthetic, seed), "sample_seconds": seconds})
                save()
                print(f"seed {seed} guidance {w:g}: tumour AUROC on generated samples {generated:.3f} (real, CV "
                      f"{real_cv:.3f}); real vs generated AUROC {rows[-1]['real_vs_generated_auroc']:.3f}", flush=True)
    frame = pd.DataFrame(rows)
    cols = [c for c in frame.columns if c not in ("seed", "method")]
    summary = frame.groupby("method", sort=False)[cols].agg(["mean", "std"]).round(4)
    print(summary.to_string())
    summary.to_csv(out / "summary.csv")


if __name__ == "__main__":
    main()
