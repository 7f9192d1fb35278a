"""Speed benchmark of the engine (issue 8): training time, imputation throughput per sampler, peak
memory and scaling over simulated tables, for each device present.

    python inst/scripts/bench_speed.py --quick              # a few minutes on a 2-core CPU
    python inst/scripts/bench_speed.py                      # full sizes (GPU: 500..50,000 samples, 100..2,000 taxa)
    python inst/scripts/bench_speed.py --device cuda --json results.json

The header names the machine, the command and the commit, so the printed figures can be committed as
they are. Training times are split into the VAE and denoiser phases (timed around the trainers); an
"epoch" is n_train / batch_size steps. Throughput is samples imputed per second of ``impute`` (the
mean pass plus the draws; ``mean-only`` has draws=0). Peak memory: CUDA, torch's peak allocation
for each measurement; CPU, the process's peak resident set so far (it never goes down).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from pydepmicro.datasets import load_tcma, simulate
from pydepmicro.model import DepMicroDiff
from pydepmicro.model import _model as model_impl

SAMPLERS = [("mean-only", dict(draws=0, sampler="ddim:20")), ("ddim:10", dict(sampler="ddim:10")),
            ("ddim:20", dict(sampler="ddim:20")), ("fractional:20", dict(sampler="fractional:20")),
            ("adaptive", dict(sampler="adaptive")), ("full", dict(sampler="full"))]


def header(args) -> list[str]:
    repo = Path(__file__).resolve().parents[2]

    def git(*cmd):
        try:
            return subprocess.run(["git", *cmd], cwd=repo, capture_output=True, text=True, timeout=10,
                                  check=False).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"

    dirty = " (uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
    lines = [f"# pydepmicro speed benchmark, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
             f"command: {' '.join([Path(sys.executable).name, *sys.argv])}",
             f"commit: {git('rev-parse', 'HEAD')}{dirty}",
             (f"machine: {platform.node()} | {platform.platform()} | {platform.processor() or platform.machine()} | "
              f"{os.cpu_count()} CPU cores (torch threads {torch.get_num_threads()})"),
             f"python {platform.python_version()}, torch {torch.__version__}"]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            lines.append(f"GPU {i}: {p.name}, {p.total_memory / 2**30:.0f} GiB")
    return lines


class PhaseTimer:
    """Times the VAE and denoiser phases of fit() by wrapping the trainers the model calls."""

    def __init__(self):
        self.seconds = {}

    @contextmanager
    def installed(self):
        originals = {name: getattr(model_impl, name) for name in ("train_vae", "train_denoiser")}

        def timed(name, fn):
            def run(*a, **k):
                _sync()
                t0 = time.perf_counter()
                out = fn(*a, **k)
                _sync()
                self.seconds[name] = time.perf_counter() - t0
                return out
            return run

        for name, fn in originals.items():
            setattr(model_impl, name, timed(name, fn))
        try:
            yield self
        finally:
            for name, fn in originals.items():
                setattr(model_impl, name, fn)


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _reset_peak(device):
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train(table, device, *, vae_steps, dat_steps, batch_size=64, dependency=None, metadata="auto"):
    """Fit the package's default model (``dependency=None``: the default, no Dep) and time its phases."""
    timer = PhaseTimer()
    _reset_peak(device)
    options = {} if dependency is None else {"dependency": dependency}
    model = DepMicroDiff(device=str(device), metadata=metadata, **options)
    t0 = time.perf_counter()
    with timer.installed():
        model.fit(table, vae_steps=vae_steps, dat_steps=dat_steps, batch_size=batch_size, progress=False)
    total = time.perf_counter() - t0
    n_train = model.training["fit"]["n_train"]
    steps_per_epoch = max(1, n_train / batch_size)
    vae_step = timer.seconds["train_vae"] / vae_steps
    dat_step = timer.seconds["train_denoiser"] / dat_steps
    row = dict(n_samples=table.n_samples, n_taxa=table.n_taxa, n_train=n_train, vae_steps=vae_steps,
               dat_steps=dat_steps, fit_s=total, vae_ms_per_step=1e3 * vae_step, dat_ms_per_step=1e3 * dat_step,
               vae_s_per_epoch=vae_step * steps_per_epoch, dat_s_per_epoch=dat_step * steps_per_epoch,
               other_s=total - timer.seconds["train_vae"] - timer.seconds["train_denoiser"],
               peak_mib=_peak_mib(device))
    return model, row


def impute_rate(model, table, device, name, options, *, max_samples=None, draws=5):
    if max_samples is not None and table.n_samples > max_samples:
        table = table.subset(samples=table.sample_ids[:max_samples])
    opts = {"draws": draws, **options}
    _reset_peak(device)
    _sync()
    t0 = time.perf_counter()
    model.impute(table, progress=False, **opts)
    _sync()
    seconds = time.perf_counter() - t0
    return dict(sampler=name, draws=opts["draws"], n_samples=table.n_samples, seconds=seconds,
                samples_per_s=table.n_samples / seconds, peak_mib=_peak_mib(device))


def fmt_row(row: dict, keys) -> str:
    def f(v):
        return f"{v:,.3g}" if isinstance(v, float) else str(v)
    return "| " + " | ".join(f(row[k]) for k in keys) + " |"


def table_md(rows, keys) -> list[str]:
    return ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys), *(fmt_row(r, keys) for r in rows)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs and small tables (CPU: a few minutes)")
    parser.add_argument("--device", action="append", help="cpu, cuda, ... (repeatable; default: every device present)")
    parser.add_argument("--tcma", help="TCMA folder (default: pydepmicro.datasets.tcma_root)")
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    devices = [torch.device(d) for d in (args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]))]
    for line in header(args):
        print(line)
    results = {"header": header(args), "devices": {}}
    if args.quick:
        coad_steps = dict(vae_steps=100, dat_steps=100)
        full_subset, impute_subset, sizes = 4, 32, [(500, 100), (2000, 100), (500, 200)]
        scale_steps, scale_impute = dict(vae_steps=20, dat_steps=20), 64
    else:
        coad_steps = dict(vae_steps=2000, dat_steps=1000)  # the defaults
        full_subset, impute_subset = 64, None
        sizes = [(n, 100) for n in (500, 5000, 20000, 50000)] + [(2000, q) for q in (500, 1000, 2000)] + [(20000, 1000)]
        scale_steps, scale_impute = dict(vae_steps=200, dat_steps=200), 2000
    coad = load_tcma("coad", args.tcma)
    for device in devices:
        print(f"\n## device {device}")
        res = results["devices"][str(device)] = {}
        if device.type == "cpu" and not args.quick:
            sizes_here = [s for s in sizes if s[0] * s[1] <= 500 * 1000]  # the big tables are for GPUs
        else:
            sizes_here = sizes
        model, row = train(coad, device, **coad_steps)
        res["coad_train"] = row
        print(f"\n### training on COAD ({coad.n_samples} samples x {coad.n_taxa} taxa, batch 64, "
              f"{coad_steps['vae_steps']} VAE + {coad_steps['dat_steps']} denoiser steps)")
        print("\n".join(table_md([row], ["n_train", "fit_s", "vae_ms_per_step", "dat_ms_per_step", "vae_s_per_epoch",
                                         "dat_s_per_epoch", "other_s", "peak_mib"])))
        print("(other_s: dependency tests, metadata encoding and setup; CPU peak is the process's so far)", flush=True)
        rates = []
        for name, options in SAMPLERS:
            subset = full_subset if name == "full" else impute_subset
            rates.append(impute_rate(model, coad, device, name, options, max_samples=subset, draws=args.draws))
            print(f"  {name}: {rates[-1]['samples_per_s']:.1f} samples/s", file=sys.stderr, flush=True)
        res["coad_impute"] = rates
        print(f"\n### imputation throughput on COAD ({args.draws} draws unless said; 'full' on "
              f"{full_subset} samples, the others on {impute_subset or 'all'})")
        print("\n".join(table_md(rates, ["sampler", "draws", "n_samples", "seconds", "samples_per_s", "peak_mib"])))
        scale = []
        for n, q in sizes_here:
            table = simulate(n, q, seed=0, metadata=False).table
            _, row = train(table, device, **scale_steps, dependency="ftest", metadata=False)
            rate = impute_rate(_, table, device, "ddim:10", dict(sampler="ddim:10"), max_samples=scale_impute,
                               draws=args.draws)
            row.update(impute_samples_per_s=rate["samples_per_s"], impute_peak_mib=rate["peak_mib"])
            scale.append(row)
            print(f"  simulated {n} x {q}: fit {row['fit_s']:.1f} s", file=sys.stderr)
        res["scaling"] = scale
        print(f"\n### scaling on simulated tables ({scale_steps['vae_steps']} + {scale_steps['dat_steps']} steps, "
              f"dependency ftest, no metadata; imputation ddim:10 on up to {scale_impute} samples)")
        print("\n".join(table_md(scale, ["n_samples", "n_taxa", "fit_s", "vae_ms_per_step", "dat_ms_per_step",
                                         "dat_s_per_epoch", "other_s", "peak_mib", "impute_samples_per_s",
                                         "impute_peak_mib"])))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
