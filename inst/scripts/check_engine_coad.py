"""First accuracy check of the engine on TCMA COAD (issue 4): BENCHMARK.md protocol P1, one seed,
both regimes, DepMicroDiff beside the per-taxon mean and KNN-10 of the same run.

    python inst/scripts/check_engine_coad.py [--seed 0] [--cancer coad] [--fast] [model options k=v ...]

Samplers side by side (issue 8; "draws" estimates so that the sampler matters, on a subset):

    python inst/scripts/check_engine_coad.py --regimes aware --estimate draws --draws 5 \
        --extra-samplers ddim:10,fractional:20,adaptive,full --sampler-samples 40

The model is trained on the masked table only (transductive, as in the paper): the hidden entries
never reach training. Masking happens on the log scale with the original totals (as for every
baseline); the model gets the masked relative abundances x 100 as its counts, so its output is on
the same scale as the truth.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from pydepmicro.cli_model import parse_value
from pydepmicro.datasets import load_tcma
from pydepmicro.evaluate import baselines_for, draw_mask, imputation_metrics, masked_log_inputs
from pydepmicro.evaluate.masks import EvalMask
from pydepmicro.model import _FIT_OPTIONS, DepMicroDiff

KEEP = ("pcc", "per_taxon_pcc", "rmse", "false_fill", "dropout_auroc", "observed_fidelity", "coverage")


def _score(result, truth, mask, regime: str) -> dict:
    """Metrics of an ImputationResult on the log scale, with the +-1.645 sd interval of its draws.
    Samples with no observed count at all (every nonzero masked) cannot be put back on the count scale
    and are left missing: they score as 0 (a failure), not skipped."""
    est = np.where(np.isnan(result.table.counts), 0.0, np.log1p(np.nan_to_num(result.table.counts)))
    spread = np.where(np.isnan(result.spread), 0.0, result.spread)
    return imputation_metrics(truth, est, mask, regime=regime, lower=np.maximum(est - 1.645 * spread, 0),
                              upper=est + 1.645 * spread)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cancer", default="coad")
    parser.add_argument("--regimes", default="aware,blind")
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--sampler", default="ddim:20")
    parser.add_argument("--estimate", default="auto",
                        help="point estimate: auto (missing entries from vae, zeros from mean), vae (the VAE's pass), "
                             "mean (the denoiser's pass) or draws")
    parser.add_argument("--save-model", help="save each regime's model to DIR-<regime>")
    parser.add_argument("--load-model", help="load each regime's model from DIR-<regime> instead of training")
    parser.add_argument("--extra-samplers", default="", help="comma-separated samplers also evaluated")
    parser.add_argument("--sampler-samples", type=int, default=None,
                        help="evaluate the extra samplers (and the main one again, for comparison) on this many "
                             "random samples only, so the slow 'full' sampler fits in CPU time")
    parser.add_argument("options", nargs="*", help="model/fit options as key=value")
    args = parser.parse_args()
    options = {k: parse_value(v) for k, v in (o.split("=", 1) for o in args.options)}
    fit_opts = {k: options.pop(k) for k in list(options) if k in _FIT_OPTIONS}

    table = load_tcma(args.cancer)
    mask = draw_mask(table, seed=args.seed, variant="p1")
    print(f"{args.cancer.upper()} {table.n_samples} x {table.n_taxa}, P1 seed {args.seed}: {mask.n_drawn} entries masked")
    rows = []
    for regime in args.regimes.split(","):
        truth, x = masked_log_inputs(table, mask, regime)
        for name, fn in baselines_for(regime).items():
            if name.startswith(("knn", "taxon_mean")):
                t0 = time.perf_counter()
                out = fn(x, seed=args.seed)
                rows.append((regime, name, time.perf_counter() - t0,
                             imputation_metrics(truth, out, mask, regime=regime)))
        fed = table.with_counts(np.expm1(x))  # relative abundance x 100, hidden entries 0 / NaN
        t0 = time.perf_counter()
        if args.load_model:
            model = DepMicroDiff.load(f"{args.load_model}-{regime}")
        else:
            model = DepMicroDiff(**options).fit(fed, seed=args.seed, **fit_opts)
        if args.save_model:
            model.save(f"{args.save_model}-{regime}", force=True)
        t_fit = time.perf_counter() - t0
        zeros = "keep" if regime == "aware" else "auto"
        extra_samplers = [s for s in args.extra_samplers.split(",") if s]
        sub = np.arange(table.n_samples)
        if args.sampler_samples and extra_samplers:
            sub = np.sort(np.random.default_rng(args.seed).choice(table.n_samples, args.sampler_samples,
                                                                  replace=False))
            extra_samplers = [args.sampler, *[s for s in extra_samplers if s != args.sampler]]
        sub_mask = EvalMask(mask.drawn[sub], mask.hidden[sub], mask.variant, mask.seed, mask.sample_ids[sub],
                            mask.taxa_ids)
        sub_fed = fed.subset(samples=fed.sample_ids[sub])
        if extra_samplers:  # warm-up, so the first sampler's time is not the first call's
            model.impute(sub_fed.subset(samples=sub_fed.sample_ids[:2]), draws=1, sampler="ddim:2", progress=False)
        for sampler in extra_samplers:
            t1 = time.perf_counter()
            extra = model.impute(sub_fed, draws=args.draws, sampler=sampler, estimate=args.estimate, zeros=zeros,
                                 seed=args.seed, progress=False)
            seconds = time.perf_counter() - t1
            label = f"depmicrodiff {sampler}" + (f" ({len(sub)} samples)" if len(sub) < table.n_samples else "")
            rows.append((regime, label, seconds, _score(extra, truth[sub], sub_mask, regime)))
        t0 = time.perf_counter() - t_fit
        result = model.impute(fed, draws=args.draws, sampler=args.sampler, estimate=args.estimate, zeros=zeros,
                              seed=args.seed)
        t_imp = time.perf_counter() - t0 - t_fit
        left = np.isnan(result.table.counts)
        rows.append((regime, f"depmicrodiff (zeros={zeros})", t_fit + t_imp, _score(result, truth, mask, regime)))
        print(f"  {regime}: {int(left.sum())} entries left missing (samples without observed counts)")
        print(f"  {regime}: fit {t_fit:.0f} s, impute {t_imp:.0f} s; peak RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB", flush=True)
    print(f"\n{'regime':7} {'method':32} {'sec':>6} " + " ".join(f"{k:>10}" for k in KEEP))
    for regime, name, sec, m in rows:
        print(f"{regime:7} {name:32} {sec:6.1f} " + " ".join(f"{m.get(k, float('nan')):10.3f}" for k in KEEP))


if __name__ == "__main__":
    main()
