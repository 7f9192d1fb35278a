"""The copula baseline (MIDASim-style) on TCMA COAD and STAD: issue 7's generation goals, 3 seeds.

Usage (from the repository root; OMP_NUM_THREADS=1 recommended):

    python inst/scripts/eval_copula_tcma.py [--tcma ../shared/data/tcma] [--cancers coad,stad]
        [--seeds 3] [--permutations 199] [--out /tmp/copula_tcma] [--no-holdout]

Two protocols per cancer and seed:

- ``in-sample``: fit on the whole table, draw as many samples, compare with the whole table (what a
  generator trained on all of the data is usually scored with);
- ``held-out``: fit on a random half, draw as many samples as the other half, compare with that
  unseen half (the clean two-sample test: a generator that copies its training table is not rewarded;
  see the AUROC note in :mod:`pydepmicro.evaluate.ecology`).

Writes ``results.csv`` (one row per cancer x protocol x seed) and ``summary.md`` into ``--out`` and
prints the summary. UniFrac uses TCMA's NCBI lineage table (``<tcma>/taxonomy``).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from pydepmicro.datasets import load_tcma, tcma_root
from pydepmicro.evaluate.copula import CopulaGenerator
from pydepmicro.evaluate.ecology import evaluate_generation


def _row(rep: dict) -> dict:
    row = {
        "sparsity_real": rep["sparsity"]["real"], "sparsity_syn": rep["sparsity"]["synthetic"],
        "sparsity_dev_rel": rep["sparsity"]["relative"], "sparsity_dev_abs": rep["sparsity"]["absolute"],
        "all_zero_real": rep["sparsity"]["all_zero_samples_real"],
        "all_zero_syn": rep["sparsity"]["all_zero_samples_synthetic"],
        "prev_pearson": rep["prevalence"]["pearson"], "prev_spearman": rep["prevalence"]["spearman"],
        "auroc": rep["classifier"]["auroc"], "auroc_matched": rep["classifier"].get("matched", np.nan),
        "auroc_floor": rep["classifier"].get("floor", np.nan),
    }
    for metric, res in rep["beta"].items():
        short = {"braycurtis": "bc", "weighted_unifrac": "wuf", "unweighted_unifrac": "uuf"}[metric]
        if "skipped" in res:
            continue
        row[f"{short}_R2"] = res["value"]["R2"]
        row[f"{short}_p"] = res["value"]["p"]
        row[f"{short}_R2_matched"] = res["matched"]["R2"]
        row[f"{short}_R2_floor"] = res["floor"]["R2"]
        row[f"{short}_R2_ratio"] = res["matched"]["R2"] / res["floor"]["R2"]
        row[f"{short}_gap"] = res["value"]["gap"]
        row[f"{short}_gap_floor"] = res["floor"]["gap"]
        row[f"{short}_permdisp_p"] = res["value"]["permdisp_p"]
    return row


def _markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (no tabulate dependency)."""
    heads = [" / ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in frame.columns]
    lines = ["| metric | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    lines += [f"| {idx} | " + " | ".join(map(str, row)) + " |" for idx, row in zip(frame.index, frame.to_numpy())]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tcma", default=None)
    ap.add_argument("--cancers", default="coad,stad")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--permutations", type=int, default=199)
    ap.add_argument("--out", default="/tmp/copula_tcma")
    ap.add_argument("--no-holdout", action="store_true")
    args = ap.parse_args()
    root = tcma_root(args.tcma)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for cancer in args.cancers.split(","):
        real = load_tcma(cancer, root, with_metadata=False)
        for seed in range(args.seeds):
            protocols = ["in-sample"] + ([] if args.no_holdout else ["held-out"])
            for protocol in protocols:
                t0 = time.time()
                if protocol == "in-sample":
                    train, test = real, real
                else:
                    perm = np.random.default_rng(1000 + seed).permutation(real.n_samples)
                    half = real.n_samples // 2
                    train = real.subset(samples=real.sample_ids[perm[:half]])
                    test = real.subset(samples=real.sample_ids[perm[half:]])
                syn = CopulaGenerator().fit(train).sample(test.n_samples, seed=seed)
                rep = evaluate_generation(test, syn, tcma_taxonomy=root / "taxonomy", seed=seed,
                                          permutations=args.permutations, n_splits=5, classifier="forest",
                                          classifier_splits=2)
                row = {"cancer": cancer, "protocol": protocol, "seed": seed, "n_real": test.n_samples,
                       **_row(rep), "seconds": time.time() - t0}
                rows.append(row)
                print(f"{cancer} {protocol} seed {seed}: sparsity dev {100 * row['sparsity_dev_rel']:.2f}%, "
                      f"prevalence r {row['prev_pearson']:.4f}, AUROC {row['auroc']:.3f}, "
                      f"BC R2 {row['bc_R2_matched']:.4f} vs floor {row['bc_R2_floor']:.4f} "
                      f"({row['seconds']:.0f}s)", flush=True)
                pd.DataFrame(rows).to_csv(out / "results.csv", index=False)
    frame = pd.DataFrame(rows)
    cols = ["sparsity_dev_rel", "all_zero_real", "all_zero_syn", "prev_pearson", "auroc", "auroc_matched",
            "auroc_floor", "bc_R2_matched", "bc_R2_floor", "bc_R2_ratio", "wuf_R2_ratio", "uuf_R2_ratio"]
    cols = [c for c in cols if c in frame]
    mean = frame.groupby(["cancer", "protocol"])[cols].mean()
    sd = frame.groupby(["cancer", "protocol"])[cols].std()
    table = mean.map(lambda v: f"{v:.4g}") + " ± " + sd.map(lambda v: f"{v:.2g}")
    text = (f"# Copula baseline on TCMA ({args.seeds} seeds, mean ± sd)\n\n"
            f"Goals: sparsity_dev_rel <= 0.02, prev_pearson >= 0.99, auroc <= 0.65, R2 ratio "
            f"(matched / real-vs-real floor) <= 2.\n\n{_markdown(table.T)}\n")
    (out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
