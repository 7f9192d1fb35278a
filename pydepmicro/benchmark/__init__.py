"""The imputation benchmark of ../shared/BENCHMARK.md (issue 5), from one command.

- :mod:`.run`: :func:`run_benchmark` (both regimes, both mask variants, every baseline and
  DepMicroDiff on the same saved masks; VAE pretrained on the other datasets only) and
  :class:`BenchmarkSettings` (``BenchmarkSettings.quick_preset()`` for ``--quick``).
- :mod:`.ablations`: the ablations as configurations of the public model API.
- :mod:`.report`: summary.csv / summary.md (mean +- sd, goals met or missed with margins).
- :mod:`.figures`: the report's figures (matplotlib, Agg).

The command line is ``depmicro benchmark`` (:mod:`pydepmicro.cli_benchmark`). Results are resumable:
rows already in ``OUT/results.csv`` are not recomputed.
"""

from .ablations import ABLATIONS, NOT_AVAILABLE, Ablation, select_ablations
from .report import goals, summary_frame, write_report
from .run import BenchmarkSettings, load_data, p2_relatives, run_benchmark

__all__ = ["ABLATIONS", "NOT_AVAILABLE", "Ablation", "BenchmarkSettings", "goals", "load_data", "p2_relatives",
           "run_benchmark", "select_ablations", "summary_frame", "write_report"]
