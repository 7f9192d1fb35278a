"""The benchmark runner: BENCHMARK.md's protocol, every method on the same saved masks.

For each dataset, seed and mask variant one mask is drawn (10% of the observed nonzero entries)
and saved as ``masks/<data>-<variant>-s<seed>.npz``; every method of both regimes sees that mask.
For each regime the input is the truth on the log scale (relative abundance x 100,
``log_base(x + 1)``) with the hidden entries set to 0 (blind) or NaN (aware).

- Baselines (:data:`pydepmicro.evaluate.BASELINES`) impute that log-scale matrix.
- DepMicroDiff is trained on the masked table only (transductive, as in the paper: hidden entries
  never reach training) and gets the masked relative abundances x 100 as its counts, so its output
  counts are on the truth's scale; the estimate is ``log_base(count + 1)``. Its VAE is pretrained on
  the *other* datasets of the run (never the target) and then fine-tuned on the target
  (:meth:`~pydepmicro.model.DepMicroDiff.pretrain_vae`, as ``depmicro train --pretrained``). Zeros
  policy: ``keep`` in the aware regime (zeros are known true zeros), ``auto`` in the blind regime
  (a zero is replaced when the model judges it a dropout). In the aware regime the model is also
  given each sample's original total (``library_size``, 100 in these units), as the baselines see
  the masked values on that scale; in the blind regime it knows only the observed total, as after a
  real dropout. Before this, the aware model estimated the missing share (``closure``): on COAD P2
  seed 0 that gave pooled / per-taxon PCC / RMSE 0.490 / 0.142 / 1.232 against 0.672 / 0.228 /
  0.747 for a model trained and imputing with the totals (README, "Missing reads are part of the
  sample").
- Samples with no visible nonzero entry left (every nonzero hidden: common in P2, where a drawn
  entry hides the superkingdom/phylum totals of its sample; 16-18% of P2's drawn entries on TCMA)
  are imputed in the aware regime, where their totals are given; in the blind regime they look like
  samples without reads, and the model leaves them alone: their entries are then scored as 0 (a
  failure, not skipped). ``n_drawn_unscorable`` counts the drawn entries in such samples (baselines
  impute them like any other). Before the aware model imputed them, it left them alone too: COAD /
  STAD / HNSC P2 seed 0, pooled / per-taxon PCC 0.672 / 0.247, 0.278 / 0.091, 0.402 / 0.376 against
  0.924 / 0.357, 0.832 / 0.617, 0.871 / 0.632 with them imputed (the same saved models).

P2, as BENCHMARK.md's text defines it: drawing (i, j) also hides, in sample i, every ancestor and
descendant of taxon j among the table's taxa (``p2_lineage="full"``, lineages from the table's
taxonomy), and - "zeros are never masked" - only the relatives that are nonzero in sample i
(``p2_hide_zeros=False``). That hides about 5 entries per drawn entry on TCMA (COAD 5.4, STAD 5.0,
HNSC 5.3), the number BENCHMARK.md states. Its KNN-10 reference numbers for P2 (COAD 0.955 / 0.52)
are *not* reproduced by this rule (KNN-10 aware, 3 seeds: COAD 0.83 / 0.08): the superkingdom and
phylum features are ancestors of almost everything, so a drawn entry hides most of its sample's
high-rank totals. They are reproduced by relatives restricted to family rank and below
(``p2_lineage="family"``, about 2 entries hidden per drawn entry; KNN-10 COAD 0.954 / 0.53, STAD
0.897 / 0.79, HNSC 0.894 / 0.55 vs 0.955 / 0.52, 0.893 / 0.79, 0.887 / 0.54), which is kept as an
option so the two can be compared. ``p2_hide_zeros=True`` also hides zero relatives (the default of
:func:`pydepmicro.evaluate.draw_mask`; same input in the blind regime).
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import InvalidOptionError, UnreadableFileError
from ..evaluate import (
    REGIMES,
    VARIANTS,
    EvalMask,
    baselines_for,
    draw_mask,
    grouped_pcc,
    imputation_metrics,
    lineage_relatives,
    masked_log_inputs,
)
from ..evaluate.baselines import BASELINES
from ..evaluate.masks import _RANK_LEVEL
from ..evaluate.metrics import auroc
from ..model._model import DEFAULTS, IMPUTE_DRAWS, IMPUTE_SAMPLER, SPREAD_Z
from ..table import MicrobiomeTable
from ..text import metadata_columns
from ._measure import Meter, process_peak_mb
from ._store import ResultStore, write_text_atomic
from .ablations import ABLATIONS, QUICK_ABLATIONS, Ablation, with_references

MODEL = "depmicrodiff"
P2_LINEAGES = ("full", "family")
EVALUATED = ("coad", "stad", "hnsc")

#: the tiny model of ``--quick``: a path check, not a measurement
#: (no metadata conditioning and F-tests only for Dep: the text encoder's loading and the MI
#: permutations cost seconds per trained model)
QUICK_MODEL = dict(d_z=4, vae_d_model=16, vae_layers=1, vae_heads=2, d_model=16, n_layers=1, n_heads=2,
                   metadata=False, dependency="ftest")
QUICK_FIT = dict(vae_steps=15, dat_steps=15, batch_size=32)


@dataclass
class BenchmarkSettings:
    """What one benchmark run does. Defaults: BENCHMARK.md in full.

    Attributes
    ----------
    seeds : int
        Number of seeds: ``first_seed`` .. ``first_seed + seeds - 1`` (masks and model seeds).
    first_seed : int
        The first of them (default 0). Lets processes share one run's seeds (``seeds=1, first_seed=3``
        runs seed 3 only) and write to separate folders that are merged afterwards.
    cancers : tuple of str
        Evaluated datasets of a TCMA folder; the rest of the folder is the pretraining pool.
    regimes, variants : tuples
        ``blind``/``aware`` and ``p1``/``p2``.
    methods : tuple of str or None
        ``depmicrodiff`` and baseline names (:data:`pydepmicro.evaluate.BASELINES`); None = all.
    ablations : tuple of str
        Ablation names (:data:`.ablations.ABLATIONS`).
    ablation_regimes, ablation_variants : tuples
        Where ablations run (default: the paper's setting, blind P1).
    model, fit : dict
        DepMicroDiff hyperparameters / fit options over the package defaults.
    pretrain : bool
        Pretrain the VAE on the other datasets.
    pretrain_steps : int
    draws, sampler
        Draws per sample and their sampler: by default impute's (5 x DDIM-10), the draws that fit
        calibrates the spread for, so that the coverage column is what users get.
    device : str
    max_samples, pool_max_samples : int or None
        Random subset of samples of each evaluated / pretraining table (None = all).
    fraction : float
        Share of observed nonzero entries masked.
    p2_lineage : {"full", "family"}
        P2 relatives: every ancestor and descendant, or only those at family rank and below.
    p2_hide_zeros : bool
        P2 also hides relatives that are zero in the sample (default: only nonzero ones).
    log_base : float
    quick : bool
        Marks a ``--quick`` run in the report.
    """

    seeds: int = 5
    first_seed: int = 0
    cancers: tuple = EVALUATED
    regimes: tuple = REGIMES
    variants: tuple = VARIANTS
    methods: tuple | None = None
    ablations: tuple = tuple(ABLATIONS)
    ablation_regimes: tuple = ("blind",)
    ablation_variants: tuple = ("p1",)
    model: dict = field(default_factory=dict)
    fit: dict = field(default_factory=dict)
    pretrain: bool = True
    pretrain_steps: int = 2000
    draws: int = IMPUTE_DRAWS  # the package's impute defaults, for which fit calibrates the spread
    sampler: str = IMPUTE_SAMPLER
    device: str = "auto"
    max_samples: int | None = None
    pool_max_samples: int | None = None
    fraction: float = 0.1
    p2_lineage: str = "full"
    p2_hide_zeros: bool = False
    log_base: float = math.e
    quick: bool = False

    @classmethod
    def quick_preset(cls, **overrides) -> BenchmarkSettings:
        """A path check that runs in seconds: tiny model without metadata (F-test Dep), one seed, one
        dataset, 80 samples (40 per pretraining table), no IterativeImputer (seconds per call), two
        ablations."""
        base = dict(seeds=1, cancers=EVALUATED[:1], model=dict(QUICK_MODEL), fit=dict(QUICK_FIT),
                    pretrain_steps=10, draws=2, sampler="ddim:4", max_samples=80, pool_max_samples=40,
                    ablations=QUICK_ABLATIONS, quick=True,
                    methods=(MODEL, *[b for b in BASELINES if not b.startswith("iterative")]))
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)

    def check(self) -> BenchmarkSettings:
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1:
            raise InvalidOptionError(f"seeds must be a positive integer, got {self.seeds!r}")
        if isinstance(self.first_seed, bool) or not isinstance(self.first_seed, int) or self.first_seed < 0:
            raise InvalidOptionError(f"first_seed must be a non-negative integer, got {self.first_seed!r}")
        for name, allowed in (("regimes", REGIMES), ("variants", VARIANTS),
                              ("ablation_regimes", REGIMES), ("ablation_variants", VARIANTS)):
            bad = [v for v in getattr(self, name) if v not in allowed]
            if bad:
                raise InvalidOptionError(f"unknown {name[:-1]} {bad[0]!r}", hint=f"use {', '.join(allowed)}")
        if self.methods is not None:
            bad = [m for m in self.methods if m != MODEL and m not in BASELINES]
            if bad:
                raise InvalidOptionError(f"unknown method {bad[0]!r}",
                                         hint=f"use {MODEL} or baselines {', '.join(BASELINES)}")
        bad = [a for a in self.ablations if a not in ABLATIONS]
        if bad:
            raise InvalidOptionError(f"unknown ablation {bad[0]!r}", hint=f"use {', '.join(ABLATIONS)}")
        if self.p2_lineage not in P2_LINEAGES:
            raise InvalidOptionError(f"p2_lineage must be one of {P2_LINEAGES}, got {self.p2_lineage!r}")
        from ..model import DepMicroDiff

        DepMicroDiff(device="cpu", **{**self.model, "log_base": self.log_base})  # checks the hyperparameters
        return self

    def wants(self, method: str) -> bool:
        return self.methods is None or method in self.methods


# ---------------------------------------------------------------------- data


def _subsample(table: MicrobiomeTable, n: int | None, seed: int = 0) -> MicrobiomeTable:
    if n is None or n >= table.n_samples:
        return table
    idx = np.sort(np.random.default_rng(seed).choice(table.n_samples, size=int(n), replace=False))
    return table.subset(samples=table.sample_ids[idx])


def load_data(data, settings: BenchmarkSettings) -> tuple[dict, dict]:
    """Evaluated tables and the pretraining pool, by name.

    ``data`` is a TCMA folder (``<cancer>/counts_taxa_x_files.csv``; evaluated = ``settings.cancers``,
    pool = every cancer of the folder), the word ``example`` (the package's simulated example, no
    pool), or a table file readable by :func:`pydepmicro.io.read_table` (no pool).
    """
    from ..datasets import TCMA_CANCERS, load_example, load_tcma

    if str(data) == "example":
        targets = {"example": load_example()}
        pool: dict = {}
    else:
        path = Path(data)
        if path.is_dir():
            names = [c for c in dict.fromkeys([*settings.cancers, *TCMA_CANCERS])
                     if (path / c / "counts_taxa_x_files.csv").is_file()]
            missing = [c for c in settings.cancers if c not in names]
            if missing:
                raise UnreadableFileError(f"no TCMA table for {', '.join(missing)}", path=str(path),
                                          hint="give the folder that holds coad/, stad/, ... (../shared/data/tcma)")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tables = {c: load_tcma(c, path) for c in names}
            targets = {c: tables[c] for c in settings.cancers}
            pool = tables
        elif path.is_file():
            from ..io import read_table

            targets, pool = {path.stem: read_table(path)}, {}
        else:
            raise UnreadableFileError("benchmark data not found", path=str(path),
                                      hint="give a TCMA folder (../shared/data/tcma), a table file, or 'example'")
    targets = {k: _subsample(t, settings.max_samples) for k, t in targets.items()}
    pool = {k: _subsample(t, settings.pool_max_samples) for k, t in pool.items()}
    return targets, pool


def p2_relatives(table: MicrobiomeTable, lineage: str = "full") -> np.ndarray | None:
    """The relatives matrix of the P2 mask (None when the table has no taxonomy).

    ``full``: every ancestor and descendant present in the table. ``family``: only pairs of taxa
    that are both at family rank or below (a taxon's rank from the taxonomy's ``rank`` column, else
    its deepest filled lineage column).
    """
    tax = table.taxonomy
    if tax is None or tax.shape[1] == 0:
        return None
    rel = lineage_relatives(tax, table.taxa_ids)
    if lineage == "full":
        return rel
    frame = tax.loc[table.taxa_ids]
    rank_col = next((c for c in frame.columns if str(c).strip().lower() == "rank"), None)
    lineage_cols = [(c, _RANK_LEVEL[str(c).strip().lower()]) for c in frame.columns
                    if str(c).strip().lower() in _RANK_LEVEL]
    level = np.full(table.n_taxa, np.nan)
    for j in range(table.n_taxa):
        rank = str(frame[rank_col].iat[j]).strip().lower() if rank_col is not None else ""
        filled = [lv for c, lv in lineage_cols if pd.notna(frame[c].iat[j]) and str(frame[c].iat[j]).strip()]
        level[j] = _RANK_LEVEL.get(rank, max(filled) if filled else np.nan)  # else: the deepest filled rank
    low = level >= _RANK_LEVEL["family"]
    return rel & low[:, None] & low[None, :]


def variant_label(variant: str, settings: BenchmarkSettings) -> str:
    """The mask variant as results.csv names it: ``p1``, ``p2`` (BENCHMARK.md's rule), or for another
    P2 rule ``p2_family`` / ``p2_full_zeros`` / ``p2_family_zeros``, so rows and saved masks of
    different rules never mix in one folder."""
    if variant != "p2" or (settings.p2_lineage == "full" and not settings.p2_hide_zeros):
        return variant
    return f"p2_{settings.p2_lineage}" + ("_zeros" if settings.p2_hide_zeros else "")


def _mask(out: Path, name: str, table: MicrobiomeTable, variant: str, seed: int,
          settings: BenchmarkSettings) -> EvalMask:
    """The saved mask of (data, variant, seed), drawn and saved on first use."""
    path = out / "masks" / f"{name}-{variant_label(variant, settings)}-s{seed}.npz"
    if path.is_file():
        mask = EvalMask.load(path)
        if mask.sample_ids.equals(table.sample_ids) and mask.taxa_ids.equals(table.taxa_ids):
            return mask
        raise InvalidOptionError(f"the saved mask {path} was drawn from another table (ids differ)",
                                 hint="use a new --out folder, or delete masks/ and results.csv there")
    lineage = None
    if variant == "p2":
        lineage = p2_relatives(table, settings.p2_lineage)
        if lineage is None:
            lineage = np.zeros((table.n_taxa, table.n_taxa), dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mask = draw_mask(table, fraction=settings.fraction, seed=seed, variant=variant, lineage=lineage,
                         hide_zeros=settings.p2_hide_zeros)
    mask.save(path)
    return mask


# ---------------------------------------------------------------------- run info


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info(device: str = "auto") -> dict:
    import torch

    info = {"host": platform.node(), "platform": platform.platform(), "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(), "cpus": _cpu_count(), "torch": torch.__version__,
            "pydepmicro": __version__, "device": device,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    commit = _git("rev-parse", "HEAD")
    if commit:
        info["commit"] = commit + ("-dirty" if _git("status", "--porcelain", "--untracked-files=no") else "")
    return info


def _cpu_count() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _write_run_info(out: Path, settings: BenchmarkSettings, data, command: str | None) -> dict:
    path = out / "run.json"
    runs = []
    if path.is_file():
        try:
            runs = json.loads(path.read_text()).get("runs", [])
        except (ValueError, OSError):
            runs = []
    entry = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": command or " ".join(sys.argv),
             "data": str(data), "settings": _jsonable(asdict(settings)), "machine": machine_info(settings.device)}
    runs.append(entry)
    info = {"latest": entry, "runs": runs}
    write_text_atomic(json.dumps(info, indent=2), path)
    return info


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# ---------------------------------------------------------------------- model jobs


@dataclass(frozen=True)
class _Job:
    method: str
    kind: str
    model: tuple  # sorted (key, value) overrides over the package defaults (only those that differ)
    fit: tuple
    pretrain: bool
    sampler: str
    note: str = ""
    estimate: str = "auto"
    zeros: str | None = None  # None: the regime's policy
    dropout_threshold: float | None = None  # None: the model's calibrated one

    @property
    def train_key(self) -> tuple:
        return (self.model, self.fit, self.pretrain)


def _frozen(d: dict) -> tuple:
    return tuple(sorted(d.items()))


def _overrides(model: dict) -> dict:
    """The hyperparameters of ``model`` that differ from the package defaults, so that equal
    configurations get equal training keys (``ar_alpha_0.9`` is the default decay: not trained twice)."""
    return {k: v for k, v in model.items() if k not in DEFAULTS or DEFAULTS[k] != v}


def _jobs(settings: BenchmarkSettings, ablations: list[str], can_pretrain: bool,
          has_metadata: bool = True) -> list[_Job]:
    """The main job and the ablations' for one table. ``can_pretrain``: other tables to pretrain on;
    ``has_metadata``: the table has metadata to condition on (without it, ``metadata=False`` is the
    main configuration, and its row repeats the reference's numbers instead of training again)."""
    model = {**settings.model, "log_base": settings.log_base}
    main = _Job(MODEL, "model", _frozen(_overrides(model)), _frozen(settings.fit), settings.pretrain and can_pretrain,
                settings.sampler)
    jobs = {MODEL: main}
    for name in ablations:
        a: Ablation = ABLATIONS[name]
        pretrain = main.pretrain if a.pretrain is None else (a.pretrain and can_pretrain)
        changed = {**model, **a.model}
        if not has_metadata and changed.get("metadata") is False:
            changed = dict(model)  # no metadata to leave out
        job = _Job(f"{MODEL}/{name}", "ablation", _frozen(_overrides(changed)), _frozen({**settings.fit, **a.fit}),
                   pretrain, a.sampler or settings.sampler, estimate=a.estimate or main.estimate, zeros=a.zeros,
                   dropout_threshold=a.dropout_threshold)
        ref = jobs.get(f"{MODEL}/{a.reference}" if a.reference else MODEL)
        if ref is not None and ((job.train_key, job.sampler, job.estimate, job.zeros, job.dropout_threshold)
                                == (ref.train_key, ref.sampler, ref.estimate, ref.zeros, ref.dropout_threshold)):
            what = "the main model" if ref is main else ref.method.removeprefix(f"{MODEL}/")
            job = replace(job, note=f"same configuration as {what} (numbers repeated)")
        jobs[job.method] = job
    return list(jobs.values())


def _log(values: np.ndarray, base: float) -> np.ndarray:
    return np.log1p(values) / math.log(base)


def model_input(table: MicrobiomeTable, mask, regime: str, settings: BenchmarkSettings
                ) -> tuple[np.ndarray, MicrobiomeTable]:
    """Truth on the benchmark's log scale (n, q) and the masked table DepMicroDiff is fed: relative
    abundance x 100, hidden entries 0 (blind) or NaN (aware)."""
    truth, x = masked_log_inputs(table, mask, regime, base=settings.log_base)
    return truth, table.with_counts(np.power(settings.log_base, x) - 1.0)


def _model_estimates(result, fed: MicrobiomeTable, settings: BenchmarkSettings, scale: float):
    """Point estimate, the model's 90% interval, the 5-95% quantiles of its draws and the presence
    probability, all on the truth's log scale; NaN (samples the model left alone) -> 0.

    The model's interval is value +- 1.645 spread on its own log scale (the spread is calibrated at fit
    for that interval, :meth:`~pydepmicro.model.DepMicroDiff.spread_scale`); the draws' quantiles are the
    interval before that calibration (results.csv ``coverage_draws``)."""
    base = settings.log_base
    counts = result.table.counts
    left = np.isnan(counts)
    est = np.where(left, 0.0, _log(np.nan_to_num(counts), base))
    lib = np.nansum(fed.counts, axis=1, keepdims=True)  # the model's library sizes
    to_scale = lambda v: _log(lib / scale * (np.power(base, v) - 1.0), base)

    def interval(lo, hi):
        lo, hi = to_scale(np.maximum(lo, 0.0)), to_scale(np.maximum(hi, 0.0))
        return (np.where(np.isfinite(lo), np.minimum(lo, hi), est), np.where(np.isfinite(hi), np.maximum(lo, hi), est))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lower, upper = interval(result.values - SPREAD_Z * result.spread, result.values + SPREAD_Z * result.spread)
        drawn = (est, est)
        if result.draws is not None and len(result.draws):
            drawn = interval(*np.nanquantile(result.draws, [0.05, 0.95], axis=0))
    presence = np.nan_to_num(result.presence_prob, nan=0.0)
    return est, (lower, upper), drawn, presence, int(left.sum())


class _Pretrained:
    """The VAE pretrained on the other datasets, per (data, seed), cached in memory and on disk."""

    def __init__(self, out: Path, settings: BenchmarkSettings, echo):
        self.out, self.settings, self.echo = out, settings, echo
        self.cache: dict = {}

    def get(self, name: str, seed: int, pool: list, model_kwargs: dict):
        from ..model import DepMicroDiff

        key = (name, seed, _frozen(model_kwargs))
        if key in self.cache:
            return self.cache[key]
        path = self.out / "models" / f"pretrained-{name}-s{seed}"
        model = None
        if path.is_dir():
            try:
                model = DepMicroDiff.load(path, device=self.settings.device)
                wanted = DepMicroDiff(device="cpu", **model_kwargs).hparams
                vae_keys = [k for k in model.hparams if k.startswith(("vae_", "d_z", "scale", "log_base", "lineage_inputs"))]
                if any(model.hparams[k] != wanted[k] for k in vae_keys):
                    model = None  # another VAE configuration: pretrain again
            except Exception:  # an unreadable cache is only a cache
                model = None
        seconds = mem = gpu = float("nan")
        if model is None:
            self.echo(f"  pretraining the VAE on {', '.join(n for n, _ in pool)} ({self.settings.pretrain_steps} steps)")
            model = DepMicroDiff(device=self.settings.device, **model_kwargs)
            with warnings.catch_warnings(), Meter(model.device) as m:
                warnings.simplefilter("ignore")  # all-zero samples of the pool are skipped
                model.pretrain_vae([t for _, t in pool], steps=self.settings.pretrain_steps, seed=seed,
                                   progress=False)
            seconds, mem, gpu = m.seconds, m.mem_mb, m.gpu_mb
            path.parent.mkdir(exist_ok=True)
            model.save(path, force=True)
        else:
            seconds = float(model.training.get("pretrain", {}).get("seconds", float("nan")))
        self.cache[key] = (model, seconds, mem, gpu)
        return self.cache[key]


def _new_model(job: _Job, settings: BenchmarkSettings, pretrained):
    from ..model import DepMicroDiff

    fresh = DepMicroDiff(device=settings.device, **dict(job.model))
    if pretrained is None:
        return fresh
    model = pretrained.copy()
    model.hparams = dict(fresh.hparams)  # the pretrained VAE's sizes are the same (checked by fit's transfer)
    return model


@dataclass
class _Recorded:
    """Fit cost read back from a saved model (memory unknown)."""

    seconds: float
    mem_mb: float = float("nan")
    gpu_mb: float = float("nan")


def _saved_main(path: Path, settings: BenchmarkSettings, job: _Job):
    """The main model saved by an earlier run, if it has this run's hyperparameters."""
    from ..model import DepMicroDiff

    if not path.is_dir():
        return None
    try:
        model = DepMicroDiff.load(path, device=settings.device)
    except Exception:  # an unreadable cache is only a cache
        return None
    wanted = DepMicroDiff(device="cpu", **dict(job.model)).hparams
    if not model.is_fitted or any(model.hparams.get(k) != v for k, v in wanted.items() if k != "text_encoder"):
        return None
    return model


# ---------------------------------------------------------------------- the run


def run_benchmark(data, out, settings: BenchmarkSettings | None = None, *, echo=print,
                  command: str | None = None, report: bool = True) -> pd.DataFrame:
    """Run the benchmark into folder ``out`` and return results.csv as a DataFrame.

    Rows already in ``out/results.csv`` with status ``ok`` are skipped, so an interrupted run
    continues where it stopped (same settings expected; masks are reused from ``out/masks``).
    With ``report`` the summary and figures are (re)written at the end.
    """
    settings = (settings or BenchmarkSettings()).check()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)
    (out / "models").mkdir(exist_ok=True)
    targets, pool = load_data(data, settings)
    _write_run_info(out, settings, data, command)
    store = ResultStore(out)
    ablations = with_references(settings.ablations)
    pretrainer = _Pretrained(out, settings, echo)
    start = time.perf_counter()
    for name, table in targets.items():
        others = [(n, t) for n, t in pool.items() if n != name]
        jobs = _jobs(settings, ablations, can_pretrain=bool(others),
                     has_metadata=bool(metadata_columns(table.sample_meta)))
        echo(f"{name}: {table.n_samples} samples x {table.n_taxa} taxa; pretraining pool: "
             f"{', '.join(n for n in pool if n != name) or 'none'}")
        for seed in range(settings.first_seed, settings.first_seed + settings.seeds):
            for variant in settings.variants:
                mask = _mask(out, name, table, variant, seed, settings)
                for regime in settings.regimes:
                    ctx = dict(data=name, regime=regime, variant=variant_label(variant, settings), seed=seed,
                               mask=mask, table=table)
                    _run_baselines(ctx, settings, store, echo)
                    run_jobs = [j for j in jobs if (j.kind == "model" and settings.wants(MODEL))
                                or (j.kind == "ablation" and regime in settings.ablation_regimes
                                    and variant in settings.ablation_variants)]
                    _run_model_jobs(ctx, run_jobs, settings, store, pretrainer, others, out, echo)
    echo(f"benchmark done in {time.perf_counter() - start:.0f} s; process peak memory {process_peak_mb():.0f} MiB")
    frame = ResultStore(out).frame()  # as written to results.csv
    if report:
        from .report import write_report

        write_report(out, echo=echo)
    return frame


def _row(ctx: dict, method: str, kind: str, metrics: dict, **extra) -> dict:
    table = ctx["table"]
    return {"data": ctx["data"], "regime": ctx["regime"], "variant": ctx["variant"], "method": method,
            "seed": ctx["seed"], "kind": kind, "status": "ok", **metrics,
            "n_samples": table.n_samples, "n_taxa": table.n_taxa, **extra}


def _taxon_frame(ctx: dict, method: str, truth, est) -> pd.DataFrame:
    mask = ctx["mask"]
    values = grouped_pcc(truth, est, mask.drawn, axis=0)
    return pd.DataFrame({"data": ctx["data"], "regime": ctx["regime"], "variant": ctx["variant"],
                         "method": method, "seed": ctx["seed"], "taxon": list(mask.taxa_ids),
                         "name": _taxon_names(ctx["table"]), "pcc": values, "n_drawn": mask.drawn.sum(axis=0)})


def _taxon_names(table: MicrobiomeTable) -> list[str]:
    """The taxonomy's ``name`` column, else the deepest filled lineage value, else the id."""
    tax = table.taxonomy
    if tax is None or tax.shape[1] == 0:
        return list(table.taxa_ids)
    frame = tax.loc[table.taxa_ids]
    cols = [c for c in frame.columns if str(c).strip().lower() == "name"]
    cols += [c for c in reversed(frame.columns) if str(c).strip().lower() in _RANK_LEVEL]
    out = []
    for j, taxon in enumerate(table.taxa_ids):
        value = next((frame[c].iat[j] for c in cols if pd.notna(frame[c].iat[j]) and str(frame[c].iat[j]).strip()),
                     taxon)
        out.append(str(value))
    return out


def _failed(ctx: dict, method: str, kind: str, exc: Exception) -> dict:
    return _row(ctx, method, kind, {}, status=f"error: {type(exc).__name__}: {exc}"[:300])


def _run_baselines(ctx: dict, settings: BenchmarkSettings, store: ResultStore, echo) -> None:
    truth = x = None
    for method, fn in baselines_for(ctx["regime"]).items():
        if not settings.wants(method) or store.done(ctx["data"], ctx["regime"], ctx["variant"], method, ctx["seed"]):
            continue
        if truth is None:
            truth, x = masked_log_inputs(ctx["table"], ctx["mask"], ctx["regime"], base=settings.log_base)
        try:
            with Meter() as m:
                est = fn(x, seed=ctx["seed"])
            metrics = imputation_metrics(truth, est, ctx["mask"], regime=ctx["regime"])
        except Exception as exc:  # one failing method must not stop the run
            store.add(_failed(ctx, method, "baseline", exc))
            echo(f"  {ctx['regime']}/{ctx['variant']}/s{ctx['seed']} {method}: FAILED {exc}")
            continue
        store.add(_row(ctx, method, "baseline", metrics, impute_seconds=m.seconds, impute_mem_mb=m.mem_mb,
                       device="cpu"), _taxon_frame(ctx, method, truth, est))
        echo(f"  {ctx['regime']}/{ctx['variant']}/s{ctx['seed']} {method:24} pcc {metrics['pcc']:.3f}  "
             f"per-taxon {metrics['per_taxon_pcc']:.3f}  false-fill {metrics['false_fill']:.3f}  ({m.seconds:.1f} s)")


def _run_model_jobs(ctx, jobs, settings, store, pretrainer, others, out: Path, echo) -> None:
    # an ablation of the zeros policy is blind-only: the aware regime's zeros are known true zeros
    pending = [j for j in jobs if not store.done(ctx["data"], ctx["regime"], ctx["variant"], j.method, ctx["seed"])
               and not (j.zeros and ctx["regime"] == "aware")]
    if not pending:
        return
    truth, fed = model_input(ctx["table"], ctx["mask"], ctx["regime"], settings)
    scale = 100.0
    zeros = "keep" if ctx["regime"] == "aware" else "auto"
    # aware: the baselines see the masked values on the scale of the original totals, so the model is told
    # those totals too (fed sums to 100 with its missing entries); blind: a dropout's reads are never counted,
    # so the model, like a real sequencing run, knows only the observed total
    known = {"library_size": np.full(fed.n_samples, scale)} if ctx["regime"] == "aware" else {}
    by_train: dict = {}
    for job in pending:
        by_train.setdefault(job.train_key, []).append(job)
    main_train = next((j.train_key for j in jobs if j.kind == "model"), None)
    # train the main configuration first: sampler ablations reuse it
    for train_key in sorted(by_train, key=lambda k: k != main_train):
        group = by_train[train_key]
        first = group[0]
        label = f"{ctx['regime']}/{ctx['variant']}/s{ctx['seed']}"
        saved = out / "models" / f"{ctx['data']}-{ctx['regime']}-{ctx['variant']}-s{ctx['seed']}"
        try:
            pre, pre_s = None, float("nan")
            if first.pretrain:
                pre, pre_s, _, _ = pretrainer.get(ctx["data"], ctx["seed"], others, dict(first.model))
            model = _saved_main(saved, settings, first) if train_key == main_train and all(
                j.kind == "ablation" for j in group) else None
            if model is not None:  # resuming sampler ablations: the main model is on disk
                fit_m = _Recorded(model.training.get("fit", {}).get("seconds", float("nan")))
            else:
                model = _new_model(first, settings, pre)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    with Meter(model.device) as fit_m:
                        model.fit(fed, seed=ctx["seed"], progress=False, **known, **dict(first.fit))
                if train_key == main_train:
                    model.save(saved, force=True, curves=False)
        except Exception as exc:
            for job in group:
                store.add(_failed(ctx, job.method, job.kind, exc))
            echo(f"  {label} {first.method}: training FAILED {type(exc).__name__}: {exc}")
            continue
        done_samplers: dict = {}
        for job in group:
            try:
                policy = job.zeros or zeros
                how = (job.sampler, job.estimate, policy, job.dropout_threshold)
                if how not in done_samplers:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        with Meter(model.device) as imp_m:
                            result = model.impute(fed, draws=settings.draws, sampler=job.sampler, zeros=policy,
                                                  dropout_threshold=job.dropout_threshold, estimate=job.estimate,
                                                  seed=ctx["seed"], keep_draws=True,
                                                  progress=False, **known)
                    est, (lower, upper), drawn, presence, _ = _model_estimates(result, fed, settings, scale)
                    metrics = imputation_metrics(truth, est, ctx["mask"], regime=ctx["regime"], lower=lower,
                                                 upper=upper)
                    metrics["coverage_draws"] = imputation_metrics(truth, est, ctx["mask"], regime=ctx["regime"],
                                                                   lower=drawn[0], upper=drawn[1])["coverage"]
                    mask = ctx["mask"]
                    left = int(mask.drawn[~(np.nansum(fed.counts, axis=1) > 0)].sum())
                    true_zero = ~np.isnan(truth) & ~mask.hidden & (np.nan_to_num(truth) == 0)
                    metrics["presence_auroc"] = auroc(presence[mask.drawn], presence[true_zero])
                    done_samplers[how] = (est, metrics, imp_m, left)
                est, metrics, imp_m, left = done_samplers[how]
            except Exception as exc:
                store.add(_failed(ctx, job.method, job.kind, exc))
                echo(f"  {label} {job.method}: imputation FAILED {type(exc).__name__}: {exc}")
                continue
            config = {k: v for k, v in dict(job.model).items() if k != "log_base"}
            config.update({f"fit.{k}": v for k, v in dict(job.fit).items()})
            store.add(_row(ctx, job.method, job.kind, metrics, fit_seconds=fit_m.seconds,
                           impute_seconds=imp_m.seconds, pretrain_seconds=pre_s if job.pretrain else float("nan"),
                           fit_mem_mb=fit_m.mem_mb, impute_mem_mb=imp_m.mem_mb, fit_gpu_mb=fit_m.gpu_mb,
                           impute_gpu_mb=imp_m.gpu_mb, device=str(model.device), sampler=job.sampler,
                           draws=settings.draws, pretrained=bool(job.pretrain), n_drawn_unscorable=left,
                           config=json.dumps(config, sort_keys=True), note=job.note or None),
                      _taxon_frame(ctx, job.method, truth, est))
            echo(f"  {label} {job.method:24} pcc {metrics['pcc']:.3f}  per-taxon {metrics['per_taxon_pcc']:.3f}  "
                 f"false-fill {metrics['false_fill']:.3f}  auroc {metrics['dropout_auroc']:.3f}  "
                 f"(fit {fit_m.seconds:.0f} s, impute {imp_m.seconds:.1f} s)")
