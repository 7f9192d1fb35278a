"""Issue 8's CPU goal: default train + impute on COAD (2 torch threads), printed in seconds.

    python inst/scripts/cpu_goal.py [--threads 2]

Needs ../shared/data/tcma (or PYDEPMICRO_TCMA). Run it with nothing else on the machine.
"""

import argparse
import time
import warnings

import torch

from pydepmicro.datasets import load_tcma
from pydepmicro.model import DepMicroDiff

GOAL_SECONDS = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    coad = load_tcma("coad")
    start = time.perf_counter()
    model = DepMicroDiff(device="cpu").fit(coad, seed=0, progress=False)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    model.impute(coad, seed=0, progress=False)
    impute = time.perf_counter() - start
    total = fit + impute
    print(f"fit {fit:.1f} s (training {model.training['fit']['seconds']:.1f} s), impute {impute:.1f} s, "
          f"total {total:.1f} s on {args.threads} thread(s): goal <= {GOAL_SECONDS:.0f} s "
          f"{'met' if total <= GOAL_SECONDS else f'missed by {total - GOAL_SECONDS:.0f} s'}")


if __name__ == "__main__":
    main()
