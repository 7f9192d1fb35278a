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
from ._data import corrupt


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


def _vae_loss(vae: TaxonVAE, y, observed, index, options: TrainOptions, beta: float, generator) -> dict:
    y_in, obs_in, changed = corrupt(y, observed, max_hide=options.max_hide, max_drop=options.max_drop,
                                    hide_zeros=options.hide_zeros, generator=generator)
    mu, logvar = vae.encode(y_in, obs_in, index)
    z = vae.reparameterize(mu, logvar, generator=generator) if vae.training else mu
    decoded = vae.decode(z, index)
    losses = vae.loss(y, observed, decoded, mu, logvar, beta=beta)
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
) -> list[dict]:
    """Train ``vae`` on one or more tables; returns the loss history.

    ``datasets``: (y, observed, taxon_index, train_rows, val_rows) per table, tensors on the
    device. Each step draws its batch from one table, chosen with probability proportional to its
    number of training rows (tables differ in taxa, so batches never mix them).
    """
    device = datasets[0][0].device
    cpu_gen = torch.Generator().manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed + 1)
    sizes = np.array([len(d[3]) for d in datasets], dtype=float)
    choice = np.random.default_rng(seed).choice(len(datasets), size=options.steps, p=sizes / sizes.sum())
    iters = [iter(_batches(len(d[3]), options.batch_size, options.steps, cpu_gen)) for d in datasets]
    opt = torch.optim.AdamW(vae.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    sched = _schedule(opt, options)
    history, running = [], []
    vae.train()
    bar = tqdm(range(options.steps), desc=f"training {label}", disable=not progress, unit="step", leave=False)
    for step in bar:
        y, obs, index, rows, _ = datasets[choice[step]]
        batch = torch.as_tensor(rows)[next(iters[choice[step]])].to(device)
        beta = vae.beta * min(1.0, (step + 1) / max(1, options.steps // 4))  # KL warm-up
        losses = _vae_loss(vae, y[batch], obs[batch], index, options, beta, gen)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), options.grad_clip)
        opt.step()
        sched.step()
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


def _dat_loss(module: LatentDiffusion, y, obs, cond, cond_valid, scheduler, options, generator) -> torch.Tensor:
    with torch.no_grad():
        z0 = module.encode(y, obs)
        y_in, obs_in, changed = corrupt(y, obs, max_hide=options.max_hide, max_drop=options.max_drop,
                                        hide_zeros=options.hide_zeros, generator=generator)
        token_cond = module.token_condition(y_in, obs_in)
    err = module.diffusion_loss(z0, token_cond, scheduler, cond=cond, cond_valid=cond_valid, generator=generator)
    loss = err.mean()
    if options.changed_weight and changed.any():
        loss = loss + options.changed_weight * err[changed].mean()
    return loss


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
) -> list[dict]:
    """Train the DAT of ``module`` (the VAE stays frozen); returns the loss history."""
    device = y.device
    cpu_gen = torch.Generator().manual_seed(seed + 2)
    gen = torch.Generator(device=device).manual_seed(seed + 3)
    params = list(module.dat.parameters())
    opt = torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)
    sched = _schedule(opt, options)
    module.vae.eval()
    module.vae.requires_grad_(False)
    rows_t = torch.as_tensor(train_rows).to(device)
    _set_residual_scale(module, y[rows_t], observed[rows_t], options, seed)
    module.dat.train()
    history, running = [], []
    bar = tqdm(_batches(len(train_rows), options.batch_size, options.steps, cpu_gen), total=options.steps,
               desc="training denoiser", disable=not progress, unit="step", leave=False)
    for step, idx in enumerate(bar):
        b = rows_t[idx.to(device)]
        c, cv = (None, None) if cond is None else (cond[b], cond_valid[b])
        loss = _dat_loss(module, y[b], observed[b], c, cv, scheduler, options, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, options.grad_clip)
        opt.step()
        sched.step()
        running.append(float(loss.detach()))
        if (step + 1) % options.eval_every == 0 or step + 1 == options.steps:
            record = {"phase": "denoiser", "step": step + 1, "train_loss": float(np.mean(running))}
            if len(val_rows):
                record["val_loss"] = _dat_validation(module, y, observed, cond, cond_valid, val_rows, scheduler,
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
    z0s, conds = [], []
    for _ in range(n_rounds):
        y_in, obs_in, _ = corrupt(y, observed, max_hide=options.max_hide, max_drop=options.max_drop,
                                  hide_zeros=options.hide_zeros, generator=gen)
        z0s.append(module.encode(y, observed))
        conds.append(module.token_condition(y_in, obs_in))
    module.set_residual_scale(torch.cat(z0s), torch.cat(conds))


@torch.no_grad()
def _dat_validation(module, y, observed, cond, cond_valid, val_rows, scheduler, options, seed) -> float:
    module.dat.eval()
    gen = torch.Generator(device=y.device).manual_seed(seed + 11)
    b = torch.as_tensor(val_rows).to(y.device)
    c, cv = (None, None) if cond is None else (cond[b], cond_valid[b])
    # average over a few timestep draws: one draw per sample is a noisy estimate
    value = float(np.mean([float(_dat_loss(module, y[b], observed[b], c, cv, scheduler, options, gen))
                           for _ in range(4)]))
    module.dat.train()
    return value
