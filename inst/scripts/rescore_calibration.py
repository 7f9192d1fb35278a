"""A saved blind P1 benchmark model scored again, with its fit's dropout threshold and with the one the
current code's calibration gives (on every sample with reads, the trained-on ones included, since
ce2c138; models fitted before then were calibrated on fit's validation samples).

The calibration runs after training and draws from its own seeded generator, so a model fitted again
at the current code would have the same training and the new threshold: this gives the row that a new
benchmark run would write, without the fit. On a model fitted at the current code, "new" is "fit". The
"fit" row must equal the folder's results.csv row (printed beside it as "recorded"), which checks that
the scoring is the benchmark's.

    python inst/scripts/rescore_calibration.py BENCH_OUT --cancer coad --seed 0 [--data ../shared/data/tcma]

Prints one JSON line: the recorded row, the row at the fit's threshold, the row at the new one
(pooled PCC, median per-taxon PCC, false-fill, dropout AUROC, RMSE, threshold), and the new
calibration's seconds, simulated dropouts and samples.
"""

from __future__ import annotations

import json

import pandas as pd
from check_dropout_limit import saved_blind  # the same script folder
from check_presence_pass import recalibrate

from pydepmicro.benchmark.run import BenchmarkSettings, _model_estimates
from pydepmicro.evaluate.metrics import imputation_metrics

COLUMNS = ("pcc", "per_taxon_pcc", "false_fill", "dropout_auroc", "rmse")


def main() -> None:
    args, _, mask, truth, _, fed, model = saved_blind(__doc__.split("\n\n")[0], default_seed=0,
                                                      needs="models/, masks/ and results.csv")
    settings = BenchmarkSettings()  # the benchmark's draws and sampler; its log base is e, as saved_blind's
    fitted = dict(model.training["fit"]["dropout_threshold"])
    # fit's calibration at the current code (every sample with reads); the benchmark fits with seed = the mask's seed
    recalibrate(model, fed, args.seed, "all")
    new = dict(model.training["fit"]["dropout_threshold"])

    rows = {}
    for name, calibration in (("fit", fitted), ("new", new)):
        model.training["fit"]["dropout_threshold"] = calibration
        result = model.impute(fed, draws=settings.draws, sampler=settings.sampler, zeros="auto", seed=args.seed,
                              keep_draws=True, progress=False)
        est, (lower, upper), *_ = _model_estimates(result, fed, settings, 100.0)
        metrics = imputation_metrics(truth, est, mask, regime="blind", lower=lower, upper=upper)
        rows[name] = {k: round(float(metrics[k]), 4) for k in COLUMNS} | {"threshold": calibration["vae"]}
    recorded = pd.read_csv(args.out / "results.csv")
    recorded = recorded[(recorded.data == args.cancer) & (recorded.regime == "blind") & (recorded.variant == "p1")
                        & (recorded.method == "depmicrodiff") & (recorded.seed == args.seed)]
    rows["recorded"] = {k: round(float(recorded[k].iloc[0]), 4) for k in COLUMNS} if len(recorded) else None
    print(json.dumps(dict(folder=str(args.out), cancer=args.cancer, seed=args.seed, recorded=rows["recorded"],
                          fit=rows["fit"], new=rows["new"], calibration_seconds=new["seconds"],
                          dropouts=new["dropouts"], rows=new["rows"])), flush=True)


if __name__ == "__main__":
    main()
