"""Imputation: sampler settings, batched draws from the denoiser, and the zeros policy.

Per entry and draw d the model gives the decoder's presence probability p_d and abundance a_d
(value when present) from a drawn latent; its estimate is E[y | z_d] = p_d a_d. Over the draws:

- ``value``  = mean_d p_d a_d      (point estimate of a missing entry; zeros="impute")
- ``spread`` = sd_d p_d a_d
- ``presence_prob`` = mean_d p_d   (for an observed zero: the probability that it is a dropout)
- ``abundance`` = mean_d a_d       (the value used for a zero judged a dropout, zeros="auto")

With ``estimate`` "auto" (the default), "vae" or "mean" the value, presence probability and
abundance come instead from deterministic passes, and the draws only give the spread: ``"vae"``
decodes the VAE encoder's posterior mean given the observed entries (the latent the denoiser
corrects); ``"mean"`` decodes the denoiser's estimate of E[z0 | observed]
(:meth:`~pydepmicro.nn.diffusion.LatentDiffusion.predict_mean`; for the ``vae`` sampler it is the
same as ``"vae"``); ``"auto"`` takes missing (NaN) entries from the VAE's pass and everything about
zeros (presence probability, abundance, the value ``zeros="impute"`` writes) from the denoiser's:
on the TCMA selection masks (seeds 10-11) the VAE's pass filled missing entries better (aware
regime) and the denoiser's judged and filled zeros better (blind regime; README, "Estimate, draws
and samplers").
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import InvalidOptionError
from ..scheduler import DDIMScheduler, DDPMScheduler
from ..table import MicrobiomeTable
from ._data import Alignment, Prepared
from ._device import autocast
from ._result import ImputationResult

SAMPLERS = ("ddim", "ddpm", "full", "fractional", "adaptive", "vae")
ESTIMATES = ("auto", "vae", "mean", "draws")
#: estimates from deterministic passes (draws only for the spread; draws=0 allowed)
PASS_ESTIMATES = ("auto", "vae", "mean")
#: the deterministic pass that gives each estimate's values of missing (NaN) entries (impute's closure
#: runs only that one): for "auto" the VAE's, the better one on TCMA's aware selection masks (README,
#: "Estimate, draws and samplers"); for "draws", the denoiser's, the draws' own mean
VALUE_PASS = {"auto": "vae", "vae": "vae", "mean": "mean", "draws": "mean"}
#: the deterministic pass that gives each estimate's presence probabilities (which zeros="auto" thresholds)
#: and the values written into zeros: for "auto" the denoiser's, the better one on TCMA's blind selection
#: masks (README, "Estimate, draws and samplers"); "draws" takes them from the draws themselves
ZEROS_PASS = {"auto": "mean", "vae": "vae", "mean": "mean", "draws": None}
#: zeros="auto" threshold where the model has none calibrated (estimate="draws", models saved before the calibration)
DEFAULT_DROPOUT_THRESHOLD = 0.5


def parse_estimate(estimate: str) -> str:
    value = str(estimate).strip().lower()
    if value not in ESTIMATES:
        raise InvalidOptionError(f"unknown estimate {estimate!r}",
                                 hint="use 'auto' (the default: missing entries from the VAE's pass, zeros from the "
                                      "denoiser's), 'vae' (the VAE's posterior-mean pass), 'mean' (the denoiser's "
                                      "posterior-mean pass) or 'draws' (mean over the draws)")
    return value


def parse_sampler(sampler: str) -> tuple[str, int | None]:
    """"ddim:25" -> ("ddim", 25); "full" -> ("full", None); checks names and numbers."""
    name, _, arg = str(sampler).strip().lower().partition(":")
    if name not in SAMPLERS:
        raise InvalidOptionError(f"unknown sampler {sampler!r}",
                                 hint="use ddim:K, ddpm:K, full, fractional:n (n = 2, 3, 4, 20, ...), adaptive or vae")
    if name in ("full", "adaptive", "vae"):
        if arg:
            raise InvalidOptionError(f"sampler {name!r} takes no number, got {sampler!r}", hint=f"use {name}")
        return name, None
    default = {"ddim": 25, "ddpm": 100, "fractional": 4}[name]
    try:
        k = int(arg) if arg else default
    except ValueError:
        raise InvalidOptionError(f"sampler {sampler!r}: {arg!r} is not a whole number", hint=f"e.g. {name}:{default}")
    if k < 1:
        raise InvalidOptionError(f"sampler {sampler!r}: the number must be >= 1", hint=f"e.g. {name}:{default}")
    return name, k


def schedulers_for(sampler: str, hparams: dict, n_blocks: int) -> list:
    """One scheduler per AR block with its timestep set (only "adaptive" differs between blocks)."""
    name, k = parse_sampler(sampler)
    if name == "vae":
        return []  # no diffusion: the VAE's own posterior given the observed entries (an ablation)
    T = hparams["num_train_timesteps"]
    config = dict(num_train_timesteps=T, prediction_type=hparams["prediction_type"])
    if k is not None and k > T:
        raise InvalidOptionError(f"sampler {sampler!r} asks for more than the model's {T} timesteps",
                                 hint=f"use a number <= {T}")
    out = []
    for block in range(n_blocks):
        if name == "ddim":
            sched = DDIMScheduler(**config)
            sched.set_timesteps("ddim", num_inference_steps=k)
        else:
            sched = DDPMScheduler(**config)
            if name == "ddpm":
                sched.set_timesteps("ddim", num_inference_steps=k)  # evenly spaced set, ancestral steps
            elif name == "full":
                sched.set_timesteps("full")
            elif name == "fractional":
                sched.set_timesteps("fractional", n=k)
            else:
                sched.set_timesteps("adaptive", block_index=block, n_blocks=n_blocks)
        out.append(sched)
    return out


# ---------------------------------------------------------------------- memory-bounded batching

MEMORY_LIMIT_ENV = "PYDEPMICRO_MEMORY_LIMIT"  # bytes; overrides what the device reports (tests, shared machines)
MEMORY_FRACTION = 0.8  # of the available memory that imputation may plan to use
_SAFETY = 1.5  # allocator slack, temporaries the estimate does not name


def available_memory(device: torch.device) -> int | None:
    """Bytes that one imputation may use on ``device``: ``$PYDEPMICRO_MEMORY_LIMIT`` when set, else
    free GPU memory (CUDA) or available RAM (CPU: psutil, /proc/meminfo or sysconf); None if unknown."""
    env = os.environ.get(MEMORY_LIMIT_ENV)
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise InvalidOptionError(f"{MEMORY_LIMIT_ENV}={env!r} is not a number of bytes", hint="e.g. 8e9")
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def sequence_bytes(module, n_taxa: int, n_cond: int) -> int:
    """Estimated peak bytes of one sequence (one sample x one draw) in a forward pass (float32).

    Per transformer layer and token: the residual stream, its norm, q/k/v, the attention output and
    projection and the 4x MLP hidden layer (~12 x d_model floats), plus the attention scores and their
    softmax (2 x heads x L^2 floats). Without autograd a layer's activations are freed before the next
    layer runs, so the number of layers does not multiply the peak (their weights are already resident).
    The DAT sees up to ``n_cond + 2 q`` tokens (condition, clean and noisy latents); the VAE ``q``.
    """
    dat, vae = module.dat, module.vae
    L = n_cond + 2 * n_taxa
    dat_bytes = 4 * (12 * L * dat.d_model + 2 * dat.config["n_heads"] * L * L)
    vae_bytes = 4 * (12 * n_taxa * vae.d_model + 2 * vae.config["n_heads"] * n_taxa * n_taxa)
    return int(_SAFETY * max(dat_bytes, vae_bytes))


def plan_batch(
    module,
    *,
    n_samples: int,
    n_taxa: int,
    n_cond: int,
    draws: int,
    batch_size: int,
    keep_draws: bool,
    device: torch.device,
    memory_limit: int | None = None,
) -> int:
    """Samples per forward pass that fit the memory (``memory_limit`` bytes, default: what the device has).

    The requested ``batch_size`` (sequences = samples x draws) is kept when it fits and lowered, with a
    warning, when it does not. A request that cannot fit at all raises :class:`InvalidOptionError`
    naming the option to change (``draws`` / ``keep_draws``; ``batch_size`` is already at one sample).
    """
    per_batch = max(1, batch_size // max(draws, 1))
    limit = available_memory(device) if memory_limit is None else int(memory_limit)
    if limit is None:
        return per_batch
    budget = MEMORY_FRACTION * limit
    mib = 2**20
    # results held on the host whatever the batch: 4 (n, q) float64 arrays, plus every draw with keep_draws
    fixed = 8 * n_samples * n_taxa * (4 + (draws if keep_draws else 0))
    if device.type == "cpu" and fixed > budget:
        if keep_draws:
            raise InvalidOptionError(
                f"keeping {draws} draws of {n_samples} samples x {n_taxa} taxa needs ~{fixed / mib:,.0f} MiB, "
                f"more than the {budget / mib:,.0f} MiB available",
                hint="leave out keep_draws (--keep-draws), use fewer draws (--draws), or impute the table in parts")
        raise InvalidOptionError(
            f"the results for {n_samples} samples x {n_taxa} taxa need ~{fixed / mib:,.0f} MiB, more than the "
            f"{budget / mib:,.0f} MiB available", hint="impute the table in parts (subsets of samples)")
    if device.type == "cpu":
        budget -= fixed
    seq = sequence_bytes(module, n_taxa, n_cond)
    per_sample = seq * max(draws, 1)
    fit = int(budget // per_sample)
    if fit >= min(per_batch, max(n_samples, 1)):
        return per_batch
    if fit >= 1:
        warnings.warn(
            f"an impute batch of {per_batch * max(draws, 1)} sequences (batch_size={batch_size}) needs "
            f"~{per_batch * per_sample / mib:,.0f} MiB, more than the {budget / mib:,.0f} MiB available on {device}; "
            f"using {fit * max(draws, 1)} sequences per pass (set batch_size / --impute-batch "
            f"{fit * max(draws, 1)} to choose it yourself)", stacklevel=3)
        return fit
    max_draws = int(budget // seq)
    hint = (f"use at most {max_draws} draws (--draws / draws={max_draws}); batch_size (--impute-batch) cannot "
            f"go below one sample's draws" if max_draws >= 1 else
            "the model does not fit even one sequence: use a device with more memory (--device) or a model "
            "with fewer taxa")
    raise InvalidOptionError(
        f"one sample with {draws} draws needs ~{per_sample / mib:,.1f} MiB per forward pass "
        f"({n_taxa} taxa, {n_cond} condition tokens), more than the {budget / mib:,.1f} MiB available on {device}",
        hint=hint)


@torch.no_grad()
def draw_estimates(
    module,
    y: torch.Tensor,
    observed: torch.Tensor,
    cond: torch.Tensor | None,
    cond_valid: torch.Tensor | None,
    schedulers: list,
    *,
    draws: int,
    seed: int,
    batch_size: int,
    device: torch.device,
    progress: bool,
    keep_draws: bool,
    skip: torch.Tensor,
    estimate: str = "draws",
    mean_scheduler=None,
    memory_limit: int | None = None,
    precision: str = "fp32",
) -> dict[str, np.ndarray]:
    """Run the sampler over every sample not in ``skip`` (n,) bool; arrays (n, q) in model taxon order.

    ``draws`` may be 0 with ``estimate`` "auto", "vae" or "mean": no draws, the spread is NaN.
    ``batch_size`` (sequences per pass) is lowered when it would not fit the memory (:func:`plan_batch`;
    ``memory_limit`` in bytes, default: what the device has).
    """
    module.eval()
    n, q = y.shape
    rows = torch.nonzero(~skip).flatten()
    per_batch = plan_batch(module, n_samples=n, n_taxa=q, n_cond=0 if cond is None else cond.shape[1], draws=draws,
                           batch_size=batch_size, keep_draws=keep_draws, device=torch.device(device),
                           memory_limit=memory_limit)
    gen = torch.Generator(device=device).manual_seed(int(seed))
    out = {k: np.full((n, q), np.nan) for k in ("value", "spread", "presence_prob", "abundance", "zero_value")}
    all_draws = np.full((draws, n, q), np.nan) if keep_draws else None
    chunks = [rows[i : i + per_batch] for i in range(0, len(rows), per_batch)]
    for chunk in tqdm(chunks, desc="imputing", unit="batch", disable=not progress, leave=False):
        with autocast(torch.device(device), precision):
            _impute_chunk(module, chunk, y, observed, cond, cond_valid, schedulers, out, all_draws, draws=draws,
                          estimate=estimate, mean_scheduler=mean_scheduler, gen=gen, device=device)
    if keep_draws:
        out["draws"] = all_draws
    return out


def _impute_chunk(module, chunk, y, observed, cond, cond_valid, schedulers, out, all_draws, *, draws, estimate,
                  mean_scheduler, gen, device) -> None:
    """One batch of :func:`draw_estimates`: fills ``out`` (and ``all_draws``) at the chunk's rows."""
    q = y.shape[1]
    yb, ob = y[chunk].to(device), observed[chunk].to(device)
    c = cv = None
    if cond is not None:
        c, cv = cond[chunk.to(cond.device)], cond_valid[chunk.to(cond.device)]
    tc = module.token_condition(yb, ob, c, cv)
    idx = chunk.numpy()
    if estimate in PASS_ESTIMATES:
        decoded = {name: _decode_pass(module, name, yb, ob, tc, c, cv, schedulers, mean_scheduler)
                   for name in dict.fromkeys((VALUE_PASS[estimate], ZEROS_PASS[estimate]))}
        value = decoded[VALUE_PASS[estimate]]
        prob, abund = decoded[ZEROS_PASS[estimate]]
        out["value"][idx] = value[0] * value[1]
        out["presence_prob"][idx], out["abundance"][idx], out["zero_value"][idx] = prob, abund, prob * abund
    if not draws:
        return
    if schedulers:
        rep = (lambda v: None if v is None else v.repeat_interleave(draws, dim=0))
        dec = module.decode(module.sample(rep(tc), schedulers, cond=rep(c), cond_valid=rep(cv), generator=gen))
    else:
        mu, logvar = module.vae.encode(yb, ob, module.vae_index)
        mu, logvar = mu.repeat_interleave(draws, dim=0), logvar.repeat_interleave(draws, dim=0)
        dec = module.vae.decode(module.vae.reparameterize(mu, logvar, generator=gen), module.vae_index)
    shape = (len(chunk), draws, q)
    est = (dec["presence_prob"] * dec["abundance"]).reshape(shape).double().cpu().numpy()
    out["spread"][idx] = est.std(1, ddof=1) if draws > 1 else 0.0
    if estimate == "draws":
        out["value"][idx] = out["zero_value"][idx] = est.mean(1)
        out["presence_prob"][idx] = dec["presence_prob"].reshape(shape).double().cpu().numpy().mean(1)
        out["abundance"][idx] = dec["abundance"].reshape(shape).double().cpu().numpy().mean(1)
    if all_draws is not None:
        all_draws[:, idx] = est.transpose(1, 0, 2)


def _decode_pass(module, name, yb, ob, tc, c, cv, schedulers, mean_scheduler) -> tuple[np.ndarray, np.ndarray]:
    """Presence probability and abundance (chunk, q) from one deterministic pass: ``"mean"`` the
    denoiser's, ``"vae"`` the VAE's (also ``"mean"`` with sampler "vae": there is no denoiser to run)."""
    if name == "mean" and schedulers:
        dec = module.decode(module.predict_mean(tc, mean_scheduler, cond=c, cond_valid=cv))
    else:
        dec = module.vae.decode(module.vae.encode(yb, ob, module.vae_index)[0], module.vae_index)
    return tuple(dec[k].double().cpu().numpy() for k in ("presence_prob", "abundance"))


def to_table_order(array: np.ndarray, alignment: Alignment, n_cols: int) -> np.ndarray:
    """Model-order (…, n, q_model) -> table order (…, n, n_cols); NaN for table taxa the model lacks."""
    full = np.full(array.shape[:-1] + (n_cols,), np.nan)
    have = alignment.model_cols >= 0
    full[..., alignment.model_cols[have]] = array[..., have]
    return full


def assemble(
    table: MicrobiomeTable,
    prep: Prepared,
    alignment: Alignment,
    est: dict[str, np.ndarray],
    *,
    zeros: str,
    threshold: float,
    scale: float,
    log_base: float,
    skip: np.ndarray,
    min_observed_share: float | None = None,
) -> ImputationResult:
    """Apply the zeros policy, keep observed entries, convert back to counts.

    ``est``: (n, q_model) arrays ``value`` (written into missing entries), ``spread``, ``presence_prob``,
    ``abundance`` (written into a zero judged a dropout) and optionally ``zero_value`` (written into every
    zero by ``zeros="impute"``; default ``value``).
    ``min_observed_share``: the model puts a replaced zero back as its share of the complete sample
    (it was trained with dropouts taken out of the sample, :func:`._data.corrupt` ``log_base``), while the
    observed entries are relative to the reads that were read. The replaced zeros are then rescaled by
    1 / (1 - their summed share), with that share capped at 1 - ``min_observed_share``, so that observed
    plus replaced entries form one sample. None: replaced zeros are written as they come (older models).
    """
    Q = table.n_taxa
    value, spread, prob, abund, zero_value = (to_table_order(est[k], alignment, Q) for k in
                                              ("value", "spread", "presence_prob", "abundance",
                                               "zero_value" if "zero_value" in est else "value"))
    modelled = ~np.isnan(value)
    log_in = prep.values
    missing = np.isnan(log_in) & modelled
    zero = (log_in == 0) & modelled
    values = log_in.copy()
    values[missing] = value[missing]
    if zeros == "impute":
        replace = zero
        values[replace] = zero_value[replace]
    elif zeros == "auto":
        replace = zero & (prob > threshold)
        values[replace] = abund[replace]
    else:
        replace = np.zeros_like(zero)
    if min_observed_share is not None and replace.any():
        linear = np.expm1(values * np.log(log_base))
        lost = np.minimum(np.where(replace, linear, 0.0).sum(1, keepdims=True) / scale, 1.0 - min_observed_share)
        values = np.where(replace, np.log1p(linear / (1.0 - lost)) / np.log(log_base), values)
    imputed = missing | replace
    counts = table.counts.copy()
    library = np.asarray(prep.library_sizes, dtype=float)[:, None]
    filled = np.expm1(values * np.log(log_base)) / scale * library
    counts[imputed] = np.maximum(filled[imputed], 0.0)
    dropout_prob = np.where(zero, prob, np.nan)
    result_table = table.with_counts(counts)
    draws = est.get("draws")
    return ImputationResult(
        table=result_table, values=values, imputed=imputed, spread=spread, presence_prob=prob,
        dropout_prob=dropout_prob, draws=None if draws is None else to_table_order(draws, alignment, Q),
        options=dict(n_missing_filled=int(missing.sum()), n_zeros_replaced=int(replace.sum()),
                     n_missing_left=int(np.isnan(counts).sum()), n_samples_skipped=int(skip.sum()),
                     n_taxa_not_in_model=alignment.n_extra, n_model_taxa_absent=alignment.n_absent),
    )


# ---------------------------------------------------------------------- generation


@torch.no_grad()
def draw_samples(
    module,
    n: int,
    cond: torch.Tensor | None,
    cond_valid: torch.Tensor | None,
    schedulers: list,
    *,
    seed: int,
    batch_size: int,
    device: torch.device,
    progress: bool,
    precision: str = "fp32",
    guidance: float = 1.0,
) -> dict[str, np.ndarray]:
    """Draw ``n`` whole samples (nothing observed); arrays (n, q) in model taxon order.

    Keys: ``present`` (hard 0/1 presence mask, Bernoulli(presence_prob) drawn by the decoder, with
    the calibrated presence logits), ``abundance`` (log-scale value when present: the decoder's value
    plus N(0, abundance_sd^2) noise, the likelihood's scatter) and ``presence_prob``. ``cond`` (n, c, dim) with
    ``cond_valid`` (n, c) conditions each sample on its metadata; invalid tokens are ignored;
    ``guidance`` as in :meth:`~pydepmicro.nn.diffusion.LatentDiffusion.sample`.
    """
    module.eval()
    q = module.q
    per_batch = plan_batch(module, n_samples=n, n_taxa=q, n_cond=0 if cond is None else cond.shape[1], draws=1,
                           batch_size=batch_size, keep_draws=False, device=torch.device(device))
    gen = torch.Generator(device=device).manual_seed(int(seed))
    out = {k: np.zeros((n, q)) for k in ("present", "abundance", "presence_prob")}
    chunks = [np.arange(i, min(i + per_batch, n)) for i in range(0, n, per_batch)]
    for idx in tqdm(chunks, desc="generating", unit="batch", disable=not progress, leave=False):
        empty = torch.zeros(len(idx), q, device=device)
        c = cv = None
        if cond is not None:
            c, cv = cond[idx].to(device), cond_valid[idx].to(device)
        tc = module.token_condition(empty, empty > 0, c, cv)
        with autocast(torch.device(device), precision):
            z = module.sample(tc, schedulers, cond=c, cond_valid=cv, generator=gen, guidance=guidance)
            dec = module.decode(z, presence="sample", generator=gen, calibrated=True)
        noise = torch.randn(dec["abundance"].shape, generator=gen, device=device) * module.abundance_sd
        out["present"][idx] = dec["presence_mask"].double().cpu().numpy()
        out["abundance"][idx] = (dec["abundance"] + noise).clamp_min(1e-3).double().cpu().numpy()
        out["presence_prob"][idx] = dec["presence_prob"].double().cpu().numpy()
    return out


def richness(drawn: dict[str, np.ndarray]) -> np.ndarray:
    """Present taxa per drawn sample (n,), as :func:`to_counts` will write them (at least one)."""
    return np.maximum((drawn["present"] > 0.5).sum(1), 1)


def to_counts(drawn: dict[str, np.ndarray], library_sizes: np.ndarray, *, scale: float, log_base: float) -> np.ndarray:
    """Drawn samples -> counts (n, q): relative abundances of the present taxa, closed to 1 and
    scaled to each sample's library size; a present taxon keeps at least one read, so rounding never
    changes the sparsity the decoder drew. A sample drawn with no taxon present gets its most
    probable taxon (empty samples are drawn on purpose, by ``generate(empty_fraction=)``, not by chance)."""
    present = drawn["present"] > 0.5
    none = ~present.any(1)
    present[none, np.argmax(drawn["presence_prob"][none], axis=1)] = True
    relative = np.expm1(np.maximum(drawn["abundance"], 0.0) * np.log(log_base)) / scale
    relative = np.where(present, np.maximum(relative, 1e-12), 0.0)
    share = relative / relative.sum(1, keepdims=True)
    counts = np.rint(share * np.asarray(library_sizes, dtype=float)[:, None])
    return np.where(present, np.maximum(counts, 1.0), 0.0)


def depth_by_richness(library_sizes: np.ndarray, richness: np.ndarray, n_bins: int = 10) -> dict:
    """Read depth given richness, from training samples (n,): richness bins of about equal counts
    (``edges``, on the number of present taxa) and the percentiles 0..100 of the depth in each bin.

    Depth and richness go together in real tables (TCMA: Pearson r of log depth with the number of
    present taxa 0.79 on COAD, 0.88 on STAD): a deep sample shows more taxa. Drawing depth apart
    from the drawn presence pattern puts rich samples at shallow depths, where each rare taxon's
    single read is a large share.
    """
    lib = np.asarray(library_sizes, dtype=float)
    rich = np.asarray(richness, dtype=float)
    edges = np.unique(np.quantile(rich, np.linspace(0, 1, n_bins + 1)))
    bins = _richness_bins(rich, edges)
    percentiles = [np.percentile(lib[bins == b], np.arange(101)) if (bins == b).any() else
                   np.percentile(lib, np.arange(101)) for b in range(max(len(edges) - 1, 1))]
    return {"edges": [float(e) for e in edges],
            "percentiles": [[round(float(v), 3) for v in p] for p in percentiles]}


def draw_depths(richness: np.ndarray, by_richness: dict, rng: np.random.Generator) -> np.ndarray:
    """Depths (n,) for samples with ``richness`` present taxa: a draw from their richness bin."""
    bins = _richness_bins(np.asarray(richness, dtype=float), np.asarray(by_richness["edges"], dtype=float))
    table = np.asarray(by_richness["percentiles"], dtype=float)
    u = rng.uniform(0, 100, len(bins))
    low = np.minimum(np.floor(u).astype(int), 99)  # linear interpolation on the 0..100 grid (np.interp per row)
    return table[bins, low] + (u - low) * (table[bins, low + 1] - table[bins, low])


def _richness_bins(richness: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each richness value: edges[b] <= r < edges[b + 1], the outer bins open-ended."""
    return np.searchsorted(edges[1:-1], richness, side="right")
