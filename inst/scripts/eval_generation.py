"""Generation fidelity (issue 7): DepMicroDiff beside the copula baseline (MIDASim-style), 3 seeds.

Usage (from the repository root; OMP_NUM_THREADS=1 recommended):

    python inst/scripts/eval_generation.py [--tcma ../shared/data/tcma] [--datasets simulated,coad,stad]
        [--seeds 3] [--first-seed 0] [--generators copula,depmicro,depmicro-meta] [--vae-steps 2000] [--dat-steps 1000]
        [--sampler ddim:50] [--permutations 199] [--holdout] [--out /tmp/generation] [key=value ...]
    python inst/scripts/eval_generation.py --merge RUN1 RUN2 --out DIR [the runs' settings]

``key=value`` are DepMicroDiff hyperparameters and fit options (e.g. ``d_model=64
generate_fraction=0.3``).

Datasets: ``simulated`` is the packaged example (200 simulated samples x 60 taxa, tree from its
taxonomy); ``coad``, ``stad``, ... are TCMA tables (UniFrac on TCMA's NCBI lineage table).

Generators, each fitted on the same table per seed:

- ``copula``: :class:`pydepmicro.evaluate.copula.CopulaGenerator`;
- ``depmicro``: :meth:`DepMicroDiff.generate` without metadata (unconditional);
- ``depmicro-meta``: the same fitted model, one sample conditioned on each real sample's metadata.

Protocols: ``in-sample`` (fit on the whole table, draw as many samples, compare with the whole table);
``held-out`` with ``--holdout`` (fit on a random half, compare with the unseen other half);
``reads-only`` with ``--reads-only`` (fit on and compare with the samples that have reads: TCMA
tables hold samples whose every count was removed, which DepMicroDiff never trains on nor draws).

The run is resumable: ``results.csv`` rows already there are skipped; fitted DepMicroDiff models
are kept in ``models/``. Writes ``summary.md`` (mean +- sd, goals met or missed) and, for seed 0,
one overview figure per dataset and generator.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from pydepmicro.cli_model import parse_value
from pydepmicro.datasets import load_example, load_tcma, tcma_root
from pydepmicro.evaluate.copula import CopulaGenerator
from pydepmicro.evaluate.ecology import evaluate_generation, plot_generation
from pydepmicro.model import _FIT_OPTIONS, DepMicroDiff

GOALS = {"sparsity_dev_rel": ("<=", 0.02), "prev_pearson": (">=", 0.99), "auroc": ("<=", 0.65),
         "bc_R2_ratio": ("<=", 2.0)}
KEY = ["dataset", "generator", "protocol", "seed"]


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


def _load(name: str, root):
    if name == "simulated":
        return load_example(), None
    return load_tcma(name, root, with_metadata=True), root / "taxonomy"


def _split(real, protocol: str, seed: int):
    if protocol == "in-sample":
        return real, real
    if protocol == "reads-only":
        with_reads = real.subset(samples=real.sample_ids[np.nansum(real.counts, axis=1) > 0])
        return with_reads, with_reads
    perm = np.random.default_rng(1000 + seed).permutation(real.n_samples)
    half = real.n_samples // 2
    return real.subset(samples=real.sample_ids[perm[:half]]), real.subset(samples=real.sample_ids[perm[half:]])


def _depmicro(train, folder: Path, seed: int, args, options: dict) -> DepMicroDiff:
    if (folder / "config.json").exists():
        return DepMicroDiff.load(folder, device=args.device)
    fit = {k: v for k, v in options.items() if k in _FIT_OPTIONS}
    model = DepMicroDiff(device=args.device, **{k: v for k, v in options.items() if k not in _FIT_OPTIONS})
    model.fit(train, vae_steps=args.vae_steps, dat_steps=args.dat_steps, seed=seed, progress=False, **fit)
    model.save(folder)
    return model


def _summary(frame: pd.DataFrame, args) -> str:
    cols = ["sparsity_dev_rel", "all_zero_syn", "prev_pearson", "prev_spearman", "auroc", "auroc_matched",
            "auroc_floor", "bc_R2_matched", "bc_R2_floor", "bc_R2_ratio", "wuf_R2_ratio", "uuf_R2_ratio",
            "fit_seconds", "sample_seconds"]
    cols = [c for c in cols if c in frame]
    groups = frame.groupby(["dataset", "protocol", "generator"], sort=False)
    mean, sd = groups[cols].mean(), groups[cols].std()
    table = mean.map(lambda v: f"{v:.4g}") + " ± " + sd.map(lambda v: "nan" if pd.isna(v) else f"{v:.2g}")
    table.insert(0, "seeds", groups["seed"].nunique().astype(str))
    lines = ["# Generation fidelity (mean ± sd over seeds; the seeds row says how many)", "",
             f"DepMicroDiff: VAE {args.vae_steps} / denoiser {args.dat_steps} steps, sampler {args.sampler}, "
             f"options {args.options or 'defaults'}. Copula: CopulaGenerator defaults.", "",
             "Goals: relative sparsity deviation <= 2%, prevalence Pearson r >= 0.99, classifier AUROC <= 0.65, "
             "PERMANOVA R² (matched sizes) <= 2 x the real-vs-real floor.", "", _markdown(table.T), "",
             "## Goals, per dataset and generator (means over seeds)", "",
             "| dataset | protocol | generator | seeds | " + " | ".join(GOALS) + " |", "|---" * (len(GOALS) + 4) + "|"]
    seeds = groups["seed"].nunique()
    for key, row in mean.iterrows():
        cells = []
        for col, (op, goal) in GOALS.items():
            if col not in row or pd.isna(row[col]):
                cells.append("–")
                continue
            met = row[col] <= goal if op == "<=" else row[col] >= goal
            cells.append(f"{row[col]:.3g} {'met' if met else 'MISSED'}")
        lines.append("| " + " | ".join(key) + f" | {seeds[key]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tcma", default=None)
    ap.add_argument("--datasets", default="simulated,coad,stad")
    ap.add_argument("--generators", default="copula,depmicro,depmicro-meta")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="seeds FIRST .. FIRST+SEEDS-1 (to split seeds over processes; --merge joins them)")
    ap.add_argument("--vae-steps", type=int, default=2000)
    ap.add_argument("--dat-steps", type=int, default=1000)
    ap.add_argument("--sampler", default="ddim:50")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--permutations", type=int, default=199)
    ap.add_argument("--out", default="/tmp/generation")
    ap.add_argument("--holdout", action="store_true")
    ap.add_argument("--reads-only", action="store_true",
                    help="also score against the real samples with reads only (TCMA STAD has 39%% empty samples; "
                         "the copula is refitted on them, DepMicroDiff never trains on empty samples)")
    ap.add_argument("--merge", nargs="+", metavar="DIR",
                    help="only combine the results.csv of these runs (same settings) into --out's summary")
    ap.add_argument("options", nargs="*", help="DepMicroDiff and fit options as key=value")
    args = ap.parse_args()
    if args.merge:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        frame = pd.concat([pd.read_csv(Path(d) / "results.csv") for d in args.merge], ignore_index=True)
        frame.to_csv(out / "results.csv", index=False)
        (out / "summary.md").write_text(_summary(frame, args))
        print((out / "summary.md").read_text())
        return
    options = {k: parse_value(v) for k, v in (o.split("=", 1) for o in args.options)}
    names = args.datasets.split(",")
    root = tcma_root(args.tcma) if any(n != "simulated" for n in names) else None
    out = Path(args.out)
    (out / "models").mkdir(parents=True, exist_ok=True)
    done = pd.read_csv(out / "results.csv") if (out / "results.csv").exists() else pd.DataFrame(columns=KEY)
    rows = done.to_dict("records")
    have = {tuple(str(r[k]) for k in KEY) for r in rows}
    for name in names:
        real, taxonomy = _load(name, root)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            protocols = (["in-sample"] + (["held-out"] if args.holdout else [])
                         + (["reads-only"] if args.reads_only else []))
            for protocol in protocols:
                train, test = _split(real, protocol, seed)
                model = None
                for generator in args.generators.split(","):
                    if (name, generator, protocol, str(seed)) in have:
                        continue
                    t0 = time.time()
                    if generator == "copula":
                        fitted = CopulaGenerator().fit(train)
                        t1 = time.time()
                        syn = fitted.sample(test.n_samples, seed=seed)
                    else:
                        if model is None:
                            # DepMicroDiff trains on the samples with reads only, so "reads-only" reuses the
                            # in-sample model (same training rows, seed and settings)
                            fitted_as = "in-sample" if protocol == "reads-only" else protocol
                            model = _depmicro(train, out / "models" / f"{name}-{fitted_as}-{seed}", seed, args, options)
                        t1 = time.time()
                        meta = test.sample_meta if generator == "depmicro-meta" else None
                        if meta is not None and not model.metadata_columns:
                            print(f"{name}: the model uses no metadata; {generator} skipped", flush=True)
                            continue
                        syn = model.generate(None if meta is not None else test.n_samples, meta=meta,
                                             sampler=args.sampler, seed=seed, progress=False)
                    t2 = time.time()
                    rep = evaluate_generation(test, syn, tcma_taxonomy=taxonomy, seed=seed,
                                              permutations=args.permutations, n_splits=5, classifier="forest",
                                              classifier_splits=2)
                    row = {"dataset": name, "generator": generator, "protocol": protocol, "seed": seed,
                           "n_real": test.n_samples, **_row(rep), "fit_seconds": t1 - t0, "sample_seconds": t2 - t1}
                    rows.append(row)
                    if seed == 0:
                        plot_generation(test, syn, out / f"{name}-{protocol}-{generator}.png", seed=seed)
                    print(f"{name} {generator} {protocol} seed {seed}: sparsity dev {100 * row['sparsity_dev_rel']:.2f}%, "
                          f"prevalence r {row['prev_pearson']:.4f}, AUROC {row['auroc']:.3f}, "
                          f"BC R2 ratio {row['bc_R2_ratio']:.2f} (fit {t1 - t0:.0f}s, sample {t2 - t1:.0f}s)",
                          flush=True)
                    frame = pd.DataFrame(rows)
                    frame.to_csv(out / "results.csv.tmp", index=False)
                    os.replace(out / "results.csv.tmp", out / "results.csv")
    frame = pd.DataFrame(rows)
    text = _summary(frame, args)
    (out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
