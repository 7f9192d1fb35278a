"""Blind P2 (G3): how much of the gap to the fill-every-zero baselines is the samples the mask empties?

Reads a ``depmicro benchmark`` folder with a saved blind P2 model of one cancer and seed. A P2 mask
hides a drawn entry's whole lineage, so some samples lose every read; DepMicroDiff does not impute a
sample without reads, while the baselines fill its zeros with taxon-level values. This scores, on all
drawn entries and on those of the samples left with reads:

- the model with every zero judged a dropout (``dropout_threshold=1e-6``: the abundance expected when
  present, the ``zeros_all_dropouts`` ablation);
- the blind baselines that fill every zero (taxon mean, KNN-10 zeros as missing, SoftImpute,
  IterativeImputer), on the same mask.

    python inst/scripts/check_p2_fill.py BENCH_OUT --cancer coad --seed 0 [--data ../shared/data/tcma]

Prints, per method, pooled and median per-taxon PCC on both sets of entries.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from check_dropout_limit import saved_blind  # the same script folder

from pydepmicro.benchmark.ablations import ABLATIONS
from pydepmicro.benchmark.run import BenchmarkSettings, _model_estimates, baselines_for
from pydepmicro.evaluate.metrics import imputation_metrics

FILL_ALL = ("taxon_mean_fill_zeros", "knn10_zeros_as_missing", "softimpute_fill_zeros", "iterative_fill_zeros")


def main() -> None:
    args, _, mask, truth, x, fed, model = saved_blind(__doc__.split("\n\n")[0], default_seed=0, variant="p2")
    has_reads = np.nansum(fed.counts, axis=1) > 0
    with_reads = dataclasses.replace(mask, drawn=mask.drawn & has_reads[:, None])
    print(f"{args.out} {args.cancer} seed {args.seed}: {int(mask.drawn.sum())} drawn entries, "
          f"{int((mask.drawn & ~has_reads[:, None]).sum())} of them in samples the mask leaves without reads")
    settings = BenchmarkSettings()
    result = model.impute(fed, draws=settings.draws, sampler=settings.sampler, seed=args.seed, keep_draws=True,
                          dropout_threshold=ABLATIONS["zeros_all_dropouts"].dropout_threshold, progress=False)
    estimates = {"depmicrodiff/zeros_all_dropouts": _model_estimates(result, fed, settings, 100.0)[0]}
    blind = baselines_for("blind")
    estimates.update({name: blind[name](x, seed=args.seed) for name in FILL_ALL})
    for name, est in estimates.items():
        every = imputation_metrics(truth, est, mask, regime="blind")
        kept = imputation_metrics(truth, est, with_reads, regime="blind")
        print(f"  {name:32} all drawn: pooled {every['pcc']:.3f} per-taxon {every['per_taxon_pcc']:.3f} | "
              f"samples with reads: pooled {kept['pcc']:.3f} per-taxon {kept['per_taxon_pcc']:.3f}", flush=True)


if __name__ == "__main__":
    main()
