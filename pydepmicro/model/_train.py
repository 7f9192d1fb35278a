"""Training loops: masked VAE training and denoiser training, with progress bars and loss curves.

Both loops draw mini-batches of row indices from tensors already on the device (no per-batch host
copies), corrupt them as :func:`._data.corrupt` says, and record the training loss (mean over the
steps since the last record) and, when a validation split exists, the validation loss computed with
a fixed generator, so the curve is comparable between records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ..nn.diffusion import LatentDiffusion
from ..nn.vae import TaxonVAE
from ..scheduler import NoiseScheduler
from ._data import corrupt, generation_rows
from ._device import autocast
from ._distributed import DATStep, DistContext, VAEStep


@dataclass
class TrainOptions:
    """What a training run does (stored in the saved model's config)."""

    steps: int
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    max_hide: float = 0.3
    max_drop: float = 0.3
    hide_zeros: bool = False
    # the loss is the mean over observed entries plus changed_weight x the mean over the entries that
    # training hid or dropped: without the second term those few entries (~4% of a sparse table) barely
    # steer training, and the model learns to copy what it sees rather than to impute
    changed_weight: float = 1.0
    # share of training samples hidden entirely (generation examples, DepMicroDiff.generate); for
    # the denoiser, half of them also lose their metadata, so it learns unconditional generation too
    generate_fraction: float = 0.0
    # generation rows start from a ridge regression of their latent on their metadata
    # (LatentDiffusion.fit_metadata_base) instead of the unconditional centre alone
    metadata_base: bool = False
    precision: str = "fp32"  # "bf16": forward passes under autocast (_device.autocast)
    # log base of the values: a dropout then takes its reads out of the sample (_data.corrupt);
    # None = dropped entries are only zeroed (models before drops_renormalized)
    log_base: float | None = None
    eval_every: int = 100
    warmup: int = 100
    grad_clip: float = 1.0
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "extra"}
        return {**d, **self.extra}


def _schedule(opt: torch.optim.Optimizer, options: TrainOptions):
    """Linear warmup, then cosine decay to 10% of the learning rate."""

    def factor(step: int) -> float:
        if step < options.warmup:
            return (step + 1) / options.warmup
        progress = (step - options.warmup) / max(1, options.steps - options.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _batches(n: int, batch_size: int, steps: int, generator: torch.Generator):
    """Row indices for ``steps`` batches: epochs of a random permutation (CPU generator)."""
    batch_size = min(batch_size, n)
    order = torch.randperm(n, generator=generator)
    pos = 0
    for _ in range(steps):
        if pos + batch_size > n:
            order, pos = torch.randperm(n, generator=generator), 0
        yield order[pos : pos + batch_size]
        pos += batch_size


def _corrupt(y, observed, options: TrainOptions, generator, generation: bool = True):
    """:func:`._data.corrupt` as ``options`` say (``generation=False``: no whole samples hidden)."""
    return corrupt(y, observed, max_hide=options.max_hide, max_drop=options.max_drop, hide_zeros=options.hide_zeros,
                   generator=generator, hide_all=options.generate_fraction if generation else 0.0,
                   log_base=options.log_base)


def _vae_loss(vae: TaxonVAE, y, observed, index, options: TrainOptions, beta: float, generator) -> dict:
    y_in, obs_in, changed = _corrupt(y, observed, options, generator)
    mu, logvar = vae.encode(y_in, obs_in, index)
    z = vae.reparameterize(mu, logvar, generator=generator) if vae.training else mu
    decoded = vae.decode(z, index)
    losses = vae.loss(y, observed, decoded, mu, logvar, beta=beta)
    if vae.sparsity_weight:
        uniform = torch.rand(y.shape, generator=generator, device=y.device, dtype=y.dtype)
        counts = vae.presence_counts(decoded["presence_prob"], y, observed, uniform)
        losses["sparsity_loss"] = vae.sparsity_loss(*counts)
        losses["loss"] = losses["loss"] + vae.sparsity_weight * losses["sparsity_loss"]
    if options.changed_weight and changed.any():
        on_changed = vae.loss(y, changed, decoded, mu, logvar, beta=0.0)
        losses["changed_loss"] = on_changed["presence_loss"] + on_changed["abundance_loss"]
        losses["loss"] = losses["loss"] + options.changed_weight * losses["changed_loss"]
    return losses


def train_vae(
    vae: TaxonVAE,
    datasets: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]],
    options: TrainOptions,
    *,
    seed: int,
    progress: bool,
    label: str = "VAE",
    dist: DistContext | None = None,
) -> list[dict]:
    """Train ``vae`` on one or more tables; returns the loss history.

    ``datasets``: (y, observed, taxon_index, train_rows, val_rows) per table, tensors on the
    device. Each step draws its batch from one table, chosen with probability proportional to its
    number of training rows (tables differ in taxa, so batches never mix them).

    ``dist``: with a process group (:mod:`._distributed`), each rank computes its slice of every
    global batch under DistributedDataParallel; the result matches one process.
    """
    device = datasets[0][0].device
    cpu_gen = torch.Generator().manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed + 1)
    sizes = np.array([len(d[3]) for d in datasets], dtype=float)
    choice = np.random.default_rng(seed).choice(len(datasets), size=options.steps, p=sizes / sizes.sum())
    iters = [iter(_batches(len(d[3]), options.batch_size, options.steps, cpu_gen)) for d in datasets]
    opt = _adamw(vae.parameters(), options)
    sched = _schedule(opt, options)
    history, running = [], []
    vae.train()
    if dist is not None:
        dist.check_batch(min(options.batch_size, *(len(d[3]) for d in datasets)))
    step_module = None if dist is None else dist.wrap(VAEStep(vae))
    bar = tqdm(range(options.steps), desc=f"training {label}", disable=not progress, unit="step", leave=False)
    for step in bar:
        y, obs, index, rows, _ = datasets[choice[step]]
        batch = torch.as_tensor(rows)[next(iters[choice[step]])].to(device)
        beta = vae.beta * min(1.0, (step + 1) / max(1, options.steps // 4))  # KL warm-up
        with autocast(y.device, options.precision):
            if dist is None:
                losses = _vae_loss(vae, y[batch], obs[batch], index, options, beta, gen)
            else:
                losses = _vae_loss_sharded(step_module, vae, y[batch], obs[batch], index, options, beta, gen, dist)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), options.grad_clip)
        opt.step()
        sched.step()
        if dist is not None:
            losses["loss"] = losses.pop("_global_loss")
        running.append({k: float(v.detach()) for k, v in losses.items()})
        if (step + 1) % options.eval_every == 0 or step + 1 == options.steps:
            record = {"phase": "vae", "step": step + 1,
                      **{f"train_{k}": float(np.mean([r[k] for r in running])) for k in running[0]}}
            record.update(_vae_validation(vae, datasets, options, seed))
            history.append(record)
            bar.set_postfix(loss=f"{record['train_loss']:.4f}")
            running = []
    vae.eval()
    return history


def _vae_loss_sharded(step_module, vae: TaxonVAE, y, observed, index, options: TrainOptions, beta: float,
                      generator, dist: DistContext) -> dict:
    """This rank's share of :func:`_vae_loss` on the global batch (y, observed).

    The random numbers are drawn for the global batch in the same order as :func:`_vae_loss`, then
    sliced. ``loss`` is the rank's share x world size (DDP averages gradients over ranks); the
    returned diagnostics are the global values (summed over ranks).
    """
    y_in, obs_in, changed = _corrupt(y, observed, options, generator)
    B, q = y.shape
    eps = torch.randn((B, q, vae.d_z), generator=generator, device=y.device, dtype=y.dtype)
    part = dist.shard(torch.arange(B, device=y.device))
    decoded, mu, logvar = step_module(y_in[part], obs_in[part], index, eps[part])
    local = vae.loss(y[part], observed[part], decoded, mu, logvar, beta=beta)
    n_obs = observed.sum().clamp_min(1).to(y.dtype)
    w_obs = observed[part].sum().clamp_min(1).to(y.dtype) / n_obs  # share of the global normaliser
    w_rows = len(part) / B
    weights = {"presence_loss": w_obs, "abundance_loss": w_obs, "mse": w_obs, "kl": w_rows}
    hp = vae._hparams
    loss = (hp["presence_weight"] * local["presence_loss"] + hp["abundance_weight"] * local["abundance_loss"]) * w_obs \
        + beta * local["kl"] * w_rows
    shares = {k: local[k] * w for k, w in weights.items()}
    if options.changed_weight and changed.any():
        ch = changed[part]
        if ch.any():
            on_changed = vae.loss(y[part], ch, decoded, mu, logvar, beta=0.0)
            w_ch = ch.sum().to(y.dtype) / changed.sum().to(y.dtype)
            shares["changed_loss"] = (on_changed["presence_loss"] + on_changed["abundance_loss"]) * w_ch
        else:
            shares["changed_loss"] = torch.zeros((), device=y.device, dtype=y.dtype)
        loss = loss + options.changed_weight * shares["changed_loss"]
    extra = torch.zeros((), device=y.device, dtype=y.dtype)
    if vae.sparsity_weight:
        uniform = torch.rand(y.shape, generator=generator, device=y.device, dtype=y.dtype)
        counts = vae.presence_counts(decoded["presence_prob"], y[part], observed[part], uniform[part])
        sparsity = vae.sparsity_loss(*(dist.all_sum_grad(c) for c in counts))  # a function of global counts
        shares["sparsity_loss"] = sparsity / dist.world_size  # every rank holds the global value
        extra = vae.sparsity_weight * sparsity  # unscaled: see DistContext.all_sum_grad
    shares["loss"] = loss + extra / dist.world_size
    keys = [k for k in ("loss", "presence_loss", "abundance_loss", "kl", "mse", "sparsity_loss", "changed_loss")
            if k in shares]
    total = dist.all_sum(torch.stack([torch.as_tensor(shares[k], dtype=y.dtype, device=y.device).detach()
                                      for k in keys]))
    out = {k: total[i] for i, k in enumerate(keys)}
    out["loss"] = loss * dist.world_size + extra  # for backward; DDP divides the gradient by the world size
    out["_global_loss"] = total[keys.index("loss")]
    return out


@torch.no_grad()
def _vae_validation(vae: TaxonVAE, datasets, options: TrainOptions, seed: int) -> dict:
    was = vae.training
    vae.eval()
    totals, n = {}, 0
    for y, obs, index, _, val in datasets:
        if len(val) == 0:
            continue
        rows = torch.as_tensor(val).to(y.device)
        gen = torch.Generator(device=y.device).manual_seed(seed + 7)
        losses = _vae_loss(vae, y[rows], obs[rows], index, options, vae.beta, gen)
        for k, v in losses.items():
            totals[k] = totals.get(k, 0.0) + float(v) * len(val)
        n += len(val)
    vae.train(was)
    return {f"val_{k}": v / n for k, v in totals.items()} if n else {}


def _drop_metadata(cond_valid, observed, observed_in, options: TrainOptions, generator):
    """Generation rows lose their metadata with probability 1/2 (unconditional generation)."""
    if cond_valid is None or not options.generate_fraction:
        return cond_valid
    coin = torch.rand(observed.shape[0], generator=generator, device=generator.device).to(observed.device) < 0.5
    return cond_valid & ~(generation_rows(observed, observed_in) & coin)[:, None]


@torch.no_grad()
def _encode_rows(module: LatentDiffusion, y, observed, rows: torch.Tensor, options, chunk: int = 512) -> torch.Tensor:
    """The frozen VAE's standardised latents (n, q, d_z) of the uncorrupted samples ``rows`` (zeros
    elsewhere): the denoiser's clean targets, the same at every step, so encoded once, not per batch."""
    z0 = torch.zeros(*y.shape, module.d_z, device=y.device)
    with autocast(y.device, options.precision):
        for part in rows.split(chunk):
            z0[part] = module.encode(y[part], observed[part]).float()
    return z0


def _dat_loss(module: LatentDiffusion, z0, y, obs, cond, cond_valid, scheduler, options, generator) -> torch.Tensor:
    """Mean denoising loss of a batch: ``z0`` the clean targets' latents, ``y``/``obs`` the samples that
    the training corruption turns into the condition."""
    with torch.no_grad():
        y_in, obs_in, changed = _corrupt(y, obs, options, generator)
        # the metadata base uses all of a sample's metadata; the dropout hides only the tokens
        token_cond = module.token_condition(y_in, obs_in, cond, cond_valid)
        cond_valid = _drop_metadata(cond_valid, obs, obs_in, options, generator)
    err = module.diffusion_loss(z0, token_cond, scheduler, cond=cond, cond_valid=cond_valid, generator=generator)
    loss = err.mean()
    if options.changed_weight and changed.any():
        loss = loss + options.changed_weight * err[changed].mean()
    return loss


def _dat_loss_sharded(step_module, module: LatentDiffusion, z0, y, obs, cond, cond_valid, scheduler, options,
                      generator, dist: DistContext) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's share of :func:`_dat_loss` on the global batch: (loss to backpropagate, global loss).

    Corruption, timesteps and noise are drawn for the global batch in the order of
    :func:`_dat_loss` / ``diffusion_loss`` and sliced; the frozen VAE encodes the slice only.
    ``z0``: the global batch's clean latents.
    """
    B, q = y.shape
    part = dist.shard(torch.arange(B, device=y.device))
    with torch.no_grad():
        y_in, obs_in, changed = _corrupt(y, obs, options, generator)
        token_cond = module.token_condition(y_in[part], obs_in[part], *(
            (None, None) if cond is None else (cond[part], cond_valid[part])))
        cond_valid = _drop_metadata(cond_valid, obs, obs_in, options, generator)
        z0 = z0[part]
        t = torch.randint(0, scheduler.num_train_timesteps, (B,), generator=generator, device=y.device)
        noise = torch.randn((B, q, z0.shape[-1]), generator=generator, device=y.device, dtype=z0.dtype)
    c, cv = (None, None) if cond is None else (cond[part], cond_valid[part])
    err = step_module(z0, token_cond, scheduler, t[part], noise[part], c, cv)
    loss = err.sum() / (B * q)
    if options.changed_weight and changed.any():
        ch = changed[part]
        loss = loss + options.changed_weight * err[ch].sum() / changed.sum()
    global_loss = dist.all_sum(loss.detach().reshape(1))[0]
    return loss * dist.world_size, global_loss


def _adamw(params, options: TrainOptions) -> torch.optim.AdamW:
    """AdamW, fused where torch has the kernel for the parameters' device (CPU since torch 2.4, CUDA):
    one kernel for all tensors instead of a dozen small ops per tensor, about 2 ms of a ~70 ms COAD
    CPU step."""
    params = list(params)
    try:
        return torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay, fused=True)
    except (RuntimeError, ValueError, TypeError):  # no fused kernel here (older torch, other devices)
        return torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)


#: samples the metadata base is fitted on at most (a seeded random subset of the training rows beyond it)
METADATA_BASE_MAX_ROWS = 5000


def train_denoiser(
    module: LatentDiffusion,
    y: torch.Tensor,
    observed: torch.Tensor,
    cond: torch.Tensor | None,
    cond_valid: torch.Tensor | None,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    scheduler: NoiseScheduler,
    options: TrainOptions,
    *,
    seed: int,
    progress: bool,
    dist: DistContext | None = None,
) -> list[dict]:
    """Train the DAT of ``module`` (the VAE stays frozen); returns the loss history.

    ``dist``: as in :func:`train_vae` (each rank computes its slice of every global batch).
    """
    device = y.device
    cpu_gen = torch.Generator().manual_seed(seed + 2)
    gen = torch.Generator(device=device).manual_seed(seed + 3)
    params = list(module.dat.parameters())
    opt = _adamw(params, options)
    sched = _schedule(opt, options)
    module.vae.eval()
    module.vae.requires_grad_(False)
    rows_t = torch.as_tensor(train_rows).to(device)
    _set_residual_scale(module, y[rows_t], observed[rows_t], options, seed)
    z0 = _encode_rows(module, y, observed, torch.as_tensor(np.concatenate([train_rows, val_rows])).to(device),
                      options)
    module.clear_metadata_base()
    module.metadata_base_fit = None
    if options.metadata_base and cond is not None and cond.shape[1] and options.generate_fraction:
        # a ridge regression needs no more than a few thousand samples; a cap bounds its memory
        # (samples x taxa x d_z in float64) on large tables
        base_rows = rows_t
        if len(base_rows) > METADATA_BASE_MAX_ROWS:
            pick = torch.randperm(len(base_rows), generator=torch.Generator().manual_seed(seed + 7))
            base_rows = base_rows[pick[:METADATA_BASE_MAX_ROWS].sort().values.to(base_rows.device)]
        module.metadata_base_fit = module.fit_metadata_base(z0[base_rows], cond[base_rows], cond_valid[base_rows])
    module.dat.train()
    if dist is not None:
        dist.check_batch(min(options.batch_size, len(train_rows)))
    step_module = None if dist is None else dist.wrap(DATStep(module))
    history, running = [], []
    bar = tqdm(_batches(len(train_rows), options.batch_size, options.steps, cpu_gen), total=options.steps,
               desc="training denoiser", disable=not progress, unit="step", leave=False)
    for step, idx in enumerate(bar):
        b = rows_t[idx.to(device)]
        c, cv = (None, None) if cond is None else (cond[b], cond_valid[b])
        with autocast(device, options.precision):
            if dist is None:
                loss = _dat_loss(module, z0[b], y[b], observed[b], c, cv, scheduler, options, gen)
                global_loss = loss
            else:
                loss, global_loss = _dat_loss_sharded(step_module, module, z0[b], y[b], observed[b], c, cv,
                                                      scheduler, options, gen, dist)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, options.grad_clip)
        opt.step()
        sched.step()
        running.append(float(global_loss.detach()))
        if (step + 1) % options.eval_every == 0 or step + 1 == options.steps:
            record = {"phase": "denoiser", "step": step + 1, "train_loss": float(np.mean(running))}
            if len(val_rows):
                record["val_loss"] = _dat_validation(module, z0, y, observed, cond, cond_valid, val_rows, scheduler,
                                                     options, seed)
            history.append(record)
            bar.set_postfix(loss=f"{record['train_loss']:.4f}")
            running = []
    module.dat.eval()
    return history


@torch.no_grad()
def _set_residual_scale(module, y, observed, options, seed, n_rounds: int = 4) -> None:
    """Scale of the diffusion target under the training corruption (a few passes over the rows)."""
    gen = torch.Generator(device=y.device).manual_seed(seed + 5)
    z0 = module.encode(y, observed)
    z0s, conds = [], []
    for _ in range(n_rounds):
        y_in, obs_in, _ = _corrupt(y, observed, options, gen, generation=False)
        z0s.append(z0)
        conds.append(module.token_condition(y_in, obs_in))
    if options.generate_fraction:  # one pass with nothing observed: the generation scale
        z0s.append(z0)
        conds.append(module.token_condition(torch.zeros_like(y), torch.zeros_like(observed)))
    module.set_residual_scale(torch.cat(z0s), torch.cat(conds))


@torch.no_grad()
def _dat_validation(module, z0, y, observed, cond, cond_valid, val_rows, scheduler, options, seed) -> float:
    module.dat.eval()
    gen = torch.Generator(device=y.device).manual_seed(seed + 11)
    b = torch.as_tensor(val_rows).to(y.device)
    c, cv = (None, None) if cond is None else (cond[b], cond_valid[b])
    # average over a few timestep draws: one draw per sample is a noisy estimate
    value = float(np.mean([float(_dat_loss(module, z0[b], y[b], observed[b], c, cv, scheduler, options, gen))
                           for _ in range(4)]))
    module.dat.train()
    return value
