"""Multi-process training with PyTorch's own DistributedDataParallel, launched by ``torchrun``.

``torchrun --nproc_per_node N -m pydepmicro.cli train ...`` (or any script that calls
:meth:`DepMicroDiff.fit`) starts N processes with ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT`` set. :func:`setup` then initialises the process group (gloo on
the CPU, nccl on CUDA, one GPU per local rank), and the trainers in :mod:`._train` wrap the module
being trained in :class:`torch.nn.parallel.DistributedDataParallel`.

Equivalence with one process. Every rank draws the same global batch and the same random numbers
(corruption, reparameterisation noise, diffusion timesteps and noise) for the *whole* global batch,
then computes the forward and backward pass on its own slice only. Each rank's loss is the global
loss's share of its slice (sums over its entries divided by the global counts, times the world size,
because DDP averages the gradients), so the averaged gradient is the gradient of the one-process
loss on the same global batch: the runs agree up to floating-point summation order. (Dropout > 0 in
the DAT draws its masks per rank and breaks that equivalence; the default is 0.)

Only rank 0 writes files (:func:`is_main_process`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import InvalidOptionError


def world_size_from_env() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def rank_from_env() -> int:
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def is_main_process() -> bool:
    """True on rank 0 (and in every single-process run): the process that writes files."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return rank_from_env() == 0


@dataclass
class DistContext:
    """The process group a training run uses: this rank, the world size, the device of this rank."""

    rank: int
    world_size: int
    device: torch.device

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's slice of a global batch (dimension 0); sizes differ by at most one row."""
        return torch.tensor_split(batch, self.world_size)[self.rank]

    def check_batch(self, batch_size: int) -> None:
        """Every rank needs at least one row of each global batch."""
        if batch_size < self.world_size:
            raise InvalidOptionError(
                f"a global batch of {batch_size} rows cannot be split over {self.world_size} processes",
                hint=f"use a batch size (--train-batch / batch_size) of at least {self.world_size}")

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        # buffers are identical on every rank (same seed, same data): no need to broadcast them
        return DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)

    def all_sum_grad(self, values: torch.Tensor) -> torch.Tensor:
        """Sum over ranks that gradients pass through (torch.distributed.nn): the backward sums the
        ranks' gradients, so a loss every rank computes from the global sum, added unscaled, gets the
        exact gradient after DDP's averaging."""
        from torch.distributed.nn.functional import all_reduce

        return all_reduce(values, op=dist.ReduceOp.SUM)

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values


_OWNED = False  # whether this module initialised the process group (and may destroy it)


def setup(device: torch.device) -> tuple[DistContext | None, torch.device]:
    """Initialise the process group when torchrun asked for more than one process.

    Returns (context or None for a single process, the device this rank trains on).
    """
    global _OWNED
    world = world_size_from_env()
    if world <= 1:
        return None, device
    if not dist.is_available():
        raise InvalidOptionError("WORLD_SIZE > 1 but this torch build has no torch.distributed",
                                 hint="run a single process, or install a torch with distributed support")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise InvalidOptionError(f"distributed training is not supported on {device.type}",
                                 hint="use --device cpu or cuda with torchrun")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
        _OWNED = True
    if dist.get_world_size() != world:
        raise InvalidOptionError(f"the process group has {dist.get_world_size()} processes, WORLD_SIZE={world}")
    return DistContext(rank=dist.get_rank(), world_size=world, device=device), device


def teardown() -> None:
    """Wait for every rank, then destroy the process group if :func:`setup` created it."""
    global _OWNED
    if _OWNED and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        _OWNED = False


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def diffusion_error(module, z0, token_cond, scheduler, t, noise, cond=None, cond_valid=None) -> torch.Tensor:
    """:meth:`LatentDiffusion.diffusion_loss` with given timesteps ``t`` (B,) and ``noise``: the sharded
    trainer draws them for the whole global batch and passes each rank its slice, so the random
    numbers match a single process."""
    return module.diffusion_loss(z0, token_cond, scheduler, cond=cond, cond_valid=cond_valid, t=t, noise=noise)


class VAEStep(torch.nn.Module):
    """The VAE's training forward as one module, so that DDP sees it (DDP hooks ``forward`` only)."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, y_in, obs_in, index, eps):
        mu, logvar = self.vae.encode(y_in, obs_in, index)
        z = mu + torch.exp(0.5 * logvar) * eps  # TaxonVAE.reparameterize with given eps
        return self.vae.decode(z, index), mu, logvar


class DATStep(torch.nn.Module):
    """The denoiser's training forward (the DAT's parameters only; the VAE is frozen)."""

    def __init__(self, module):
        super().__init__()
        self.dat = module.dat  # registered so DDP sees exactly the trained parameters
        self._module = [module]  # not a submodule: the frozen VAE stays out of DDP

    def forward(self, z0, token_cond, scheduler, t, noise, cond, cond_valid):
        return diffusion_error(self._module[0], z0, token_cond, scheduler, t, noise, cond, cond_valid)
