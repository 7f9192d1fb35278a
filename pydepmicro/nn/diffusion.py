"""LatentDiffusion: the VAE, the Dependency-Aware Transformer and the latent statistics in one module.

Pure torch (no tables, no files): :class:`pydepmicro.model.DepMicroDiff` feeds it tensors.

Shapes: ``y`` (B, q) values on the model's log scale (0 where missing), ``observed`` (B, q) bool,
``cond`` (B, c, d_cond) metadata tokens with ``cond_valid`` (B, c); latents (B, q, d_z). Taxa are
in the model's (table) order everywhere outside this module; the AR order lives in the buffer
``ar_perm`` (position p of the AR sequence holds table column ``ar_perm[p]``).

Conditioning (paper eq. 2, our reading; DESIGN.md item 3): the VAE encodes the *observed* part of
the sample, ``mu_obs = enc(y, observed)``; the condition of taxon j is the token
``[mu_obs_j, 1 - m_j, y_j * (1 - m_j)]`` with m = 1 for missing entries. The paper zeroes the latent
of missing taxa ((1 - m) * mu_obs, ``cond_latent="observed"``); by default we keep the encoder's
context-based guess for them (``cond_latent="all"``): it is a function of the observed entries only. The diffusion
target is the latent of the complete sample, ``z0 = (enc(y_full, observed_full) - mean) / std``
(latents standardised per dimension with statistics of the training table).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..scheduler import NoiseScheduler
from .dat import DependencyAwareTransformer
from .masks import dat_attention_mask
from .vae import TaxonVAE

GENERATION_SCALINGS = ("dimension", "token")

__all__ = ["LatentDiffusion"]


class LatentDiffusion(nn.Module):
    """VAE + DAT over the q taxa of one table.

    Parameters
    ----------
    vae : TaxonVAE
        Its vocabulary must hold every taxon of the table (``vae_index`` gives their rows).
    dat : DependencyAwareTransformer
        Built with ``d_z = vae.d_z``, ``d_token_cond = vae.d_z + 2`` and ``n_taxa = q``.
    vae_index : LongTensor (q,)
        VAE vocabulary rows of the table's taxa, in table order.
    ar_perm : LongTensor (q,)
        The AR order: a permutation of 0..q-1 (table columns).
    block_sizes : sequence of int
        AR block sizes (sum q).
    dep : bool tensor (q, q), optional
        ``dep[i, j]``: taxon i depends on taxon j, table order. None = no dependencies.
    target : {"residual", "latent"}
        What the diffusion generates: "latent" = the standardised latent z0 of the complete sample;
        "residual" (default) = ``(z0 - c) / residual_std`` with c the condition latent, i.e. the
        correction to the encoder's guess from the observed entries. A denoiser that has learnt
        nothing then returns the VAE's own imputation instead of noise (measured on COAD: with the
        "latent" target the denoiser fell below the VAE alone).
    cond_latent : {"all", "observed"}
        Which VAE latents of the observed-part encoding enter the condition: "observed" zeros those
        of missing taxa (paper eq. 2, m0^c = (1 - m) * m0); "all" (default) keeps them: the encoder,
        trained to reconstruct hidden entries, gives a context-based first guess for each missing
        taxon, computed from observed values only, which the denoiser refines.
    """

    def __init__(
        self,
        vae: TaxonVAE,
        dat: DependencyAwareTransformer,
        *,
        vae_index: torch.Tensor,
        ar_perm: torch.Tensor,
        block_sizes: Sequence[int],
        dep: torch.Tensor | None = None,
        cond_latent: str = "all",
        target: str = "residual",
        generation_scaling: str = "dimension",
    ):
        super().__init__()
        if target not in ("residual", "latent"):
            raise ValueError(f"target must be 'residual' or 'latent', got {target!r}")
        self.target = target
        if generation_scaling not in GENERATION_SCALINGS:
            raise ValueError(f"generation_scaling must be one of {GENERATION_SCALINGS}, got {generation_scaling!r}")
        self.generation_scaling = generation_scaling
        if cond_latent not in ("all", "observed"):
            raise ValueError(f"cond_latent must be 'all' or 'observed', got {cond_latent!r}")
        self.cond_latent = cond_latent
        q = int(vae_index.numel())
        if sorted(int(i) for i in ar_perm) != list(range(q)):
            raise ValueError(f"ar_perm must be a permutation of 0..{q - 1}")
        if sum(block_sizes) != q or min(block_sizes) < 1:
            raise ValueError(f"block sizes {list(block_sizes)} must be positive and sum to q = {q}")
        if dat.d_z != vae.d_z or dat.config["d_token_cond"] != vae.d_z + 2 or dat.config["n_taxa"] != q:
            raise ValueError("the DAT must have d_z = vae.d_z, d_token_cond = d_z + 2 and n_taxa = q")
        self.vae, self.dat = vae, dat
        self.q, self.d_z = q, vae.d_z
        self.block_sizes = [int(b) for b in block_sizes]
        self.register_buffer("vae_index", vae_index.long().clone())
        self.register_buffer("ar_perm", torch.as_tensor(ar_perm).long().clone())
        dep = torch.zeros(q, q, dtype=torch.bool) if dep is None else torch.as_tensor(dep).bool()
        if dep.shape != (q, q):
            raise ValueError(f"dep must be ({q}, {q}), got {tuple(dep.shape)}")
        self.register_buffer("dep", dep.clone())
        self.register_buffer("latent_mean", torch.zeros(self.d_z))
        self.register_buffer("latent_std", torch.ones(self.d_z))
        self.register_buffer("residual_std", torch.ones(self.d_z))
        # residual scale of generation examples (nothing observed: the whole latent is the residual)
        self.register_buffer("generation_std", torch.ones(self.d_z))
        # generation_scaling "token": each taxon's generation target is centred and scaled on its own
        # (loc in latent units, scale relative to generation_std); "dimension" leaves them at 0 and 1
        self.register_buffer("generation_loc", torch.zeros(q, self.d_z))
        self.register_buffer("generation_scale", torch.ones(q, self.d_z))
        # generation calibration (calibrate_generation): per-taxon presence-logit offsets, and the sd of
        # the log abundance around the decoder's value (the likelihood's noise, drawn when generating)
        self.register_buffer("presence_offset", torch.zeros(q))
        self.register_buffer("abundance_sd", torch.zeros(q))
        # metadata base of generation (fit_metadata_base): a ridge regression of the latent on the
        # metadata tokens, added to the condition latent of samples with nothing observed; empty = off
        self.register_buffer("metadata_weight", torch.zeros(0, q, self.d_z))
        self.register_buffer("metadata_center", torch.zeros(0))

    # -- latents -------------------------------------------------------------------------------

    def encode(self, y: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """Standardised posterior means (B, q, d_z) of the VAE."""
        mu, _ = self.vae.encode(y, observed, self.vae_index)
        return (mu - self.latent_mean) / self.latent_std

    def decode(self, z: torch.Tensor, *, calibrated: bool = False, **kwargs) -> dict[str, torch.Tensor]:
        """Standardised latents (B, q, d_z) -> the VAE decoder's dict of (B, q) tensors (``kwargs``:
        ``presence="sample"``, ``generator``; see :meth:`TaxonVAE.decode`). ``calibrated`` adds the
        generation calibration :attr:`presence_offset` to the presence logits."""
        offset = self.presence_offset if calibrated else None
        return self.vae.decode(z * self.latent_std + self.latent_mean, self.vae_index, logit_offset=offset, **kwargs)

    @torch.no_grad()
    def calibrate_generation(self, y: torch.Tensor, observed: torch.Tensor, batch_size: int = 256,
                             iterations: int = 40) -> None:
        """Fit :attr:`presence_offset` and :attr:`abundance_sd` (q,) on complete training samples (B, q).

        Presence: the decoder is trained as an imputer; its inputs had entries hidden or zeroed, so it
        gives an observed zero some chance of being a dropout. Decoding the latent of a complete sample
        then over-states presence (simulated example: 44% of entries present against 30% in the data),
        and generated samples would be too dense. The offset delta_j solves
        mean_i sigmoid(logit_ij + delta_j) = prevalence_j over the observed entries (bisection).

        Abundance: the decoder gives the expected log abundance of a present taxon; real values scatter
        around it (the likelihood's noise). Its sd per taxon, over the observed nonzero entries (the
        pooled sd for taxa with fewer than 3), is drawn around the decoded value when generating.
        """
        self.presence_offset.zero_()
        decoded = [self.decode(self.encode(y[i : i + batch_size], observed[i : i + batch_size]))
                   for i in range(0, y.shape[0], batch_size)]
        logits = torch.cat([d["presence_logit"] for d in decoded])
        abundance = torch.cat([d["abundance"] for d in decoded])
        nonzero = ((y > 0) & observed).to(abundance.dtype)
        sq = torch.where(nonzero > 0, (torch.nan_to_num(y) - abundance) ** 2, torch.zeros_like(abundance))
        n_nz = nonzero.sum(0)
        pooled = (sq.sum() / n_nz.sum().clamp_min(1)).sqrt()
        self.abundance_sd.copy_(torch.where(n_nz >= 3, (sq.sum(0) / (n_nz - 1).clamp_min(1)).sqrt(), pooled))
        obs = observed.to(logits.dtype)
        n_obs = obs.sum(0)
        target = (n_nz / n_obs.clamp_min(1)).clamp(1e-4, 1 - 1e-4)
        lo, hi = torch.full_like(target, -20.0), torch.full_like(target, 20.0)
        for _ in range(iterations):
            mid = (lo + hi) / 2
            rate = (torch.sigmoid(logits + mid) * obs).sum(0) / n_obs.clamp_min(1)
            lo, hi = torch.where(rate < target, mid, lo), torch.where(rate < target, hi, mid)
        self.presence_offset.copy_(torch.where(n_obs > 0, (lo + hi) / 2, torch.zeros_like(lo)))

    @torch.no_grad()
    def set_latent_stats(self, y: torch.Tensor, observed: torch.Tensor, batch_size: int = 256) -> None:
        """Per-dimension mean and sd of the VAE posterior means over a training table (B, q)."""
        self.latent_mean.zero_()
        self.latent_std.fill_(1.0)
        mus = torch.cat([self.encode(y[i : i + batch_size], observed[i : i + batch_size])
                         for i in range(0, y.shape[0], batch_size)])
        flat = mus.reshape(-1, self.d_z)
        self.latent_mean.copy_(flat.mean(0))
        self.latent_std.copy_(flat.std(0).clamp_min(1e-3))

    def base(self, token_cond: torch.Tensor) -> torch.Tensor:
        """The latent the diffusion corrects (B, q, d_z): the condition latent, or zeros."""
        if self.target == "latent":
            return torch.zeros_like(token_cond[..., : self.d_z])
        return token_cond[..., : self.d_z]

    @staticmethod
    def nothing_observed(token_cond: torch.Tensor) -> torch.Tensor:
        """(B,) bool: samples with no observed taxon (generation), from the condition's observed bit."""
        return token_cond[..., -2].amax(dim=1) <= 0

    def _shift_scale(self, token_cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample target centre and scale (B, q, d_z): generation rows use their own."""
        gen = self.nothing_observed(token_cond)[:, None, None]
        base = self.base(token_cond)
        shift = torch.where(gen, base + self.generation_loc, base)
        return shift, torch.where(gen, self.generation_std * self.generation_scale, self.residual_std)

    def to_target(self, z0: torch.Tensor, token_cond: torch.Tensor) -> torch.Tensor:
        """Standardised latents -> what the diffusion models (table order)."""
        shift, scale = self._shift_scale(token_cond)
        return (z0 - shift) / scale

    def from_target(self, x: torch.Tensor, token_cond: torch.Tensor) -> torch.Tensor:
        shift, scale = self._shift_scale(token_cond)
        return x * scale + shift

    @torch.no_grad()
    def set_residual_scale(self, z0: torch.Tensor, token_cond: torch.Tensor) -> None:
        """Per-dimension sd of the residual (z0 - condition latent) over training examples (B, q, d_z),
        separately for samples with something observed (imputation) and with nothing (generation)."""
        self.residual_std.fill_(1.0)
        self.generation_std.fill_(1.0)
        self.generation_loc.zero_()
        self.generation_scale.fill_(1.0)
        if self.target != "residual":
            return
        gen = self.nothing_observed(token_cond)
        for rows, buffer in ((~gen, self.residual_std), (gen, self.generation_std)):
            if rows.sum() > 1:
                residual = z0[rows] - self.base(token_cond[rows])
                buffer.copy_(residual.reshape(-1, self.d_z).std(0).clamp_min(1e-3))
        if self.generation_scaling == "token" and gen.sum() > 1:
            residual = z0[gen] - self.base(token_cond[gen])
            self.generation_loc.copy_(residual.mean(0))
            self.generation_scale.copy_(residual.std(0).clamp_min(1e-3) / self.generation_std)

    def token_condition(self, y: torch.Tensor, observed: torch.Tensor, cond: torch.Tensor | None = None,
                        cond_valid: torch.Tensor | None = None) -> torch.Tensor:
        """Per-taxon condition (B, q, d_z + 2): [latent, observed bit, value (0 if missing)]; the
        latent of a missing taxon is zeroed when ``cond_latent == "observed"`` (paper eq. 2). A sample
        with nothing observed gets its metadata base added to the latent (:meth:`metadata_base`;
        ``cond`` (B, c, d_cond) and ``cond_valid`` (B, c) are its metadata tokens, all of them, before
        any training-time dropout)."""
        obs = observed.to(y.dtype)
        y0 = torch.where(observed, y, torch.zeros_like(y))
        z_obs = self.encode(y0, observed)
        if self.cond_latent == "observed":
            z_obs = z_obs * obs[..., None]
        if cond is not None and cond.shape[1] and self.metadata_weight.numel():
            nothing = ~observed.any(dim=1)
            z_obs = z_obs + self.metadata_base(cond, cond_valid) * nothing.to(z_obs.dtype)[:, None, None]
        return torch.cat([z_obs, obs[..., None], (y0 * obs)[..., None]], dim=-1)

    @staticmethod
    def metadata_embedding(cond: torch.Tensor, cond_valid: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Each sample's metadata tokens side by side (B, c * d_cond), zero where a token is not valid
        (a field keeps its own coefficients: a continuous field such as age does not blur the others),
        and whether the sample has any valid token (B,)."""
        valid = torch.ones(cond.shape[:2], dtype=torch.bool, device=cond.device) if cond_valid is None else cond_valid
        return (cond * valid.to(cond.dtype)[..., None]).flatten(1), valid.any(1)

    def clear_metadata_base(self) -> None:
        self.metadata_weight = torch.zeros(0, self.q, self.d_z, device=self.metadata_weight.device)
        self.metadata_center = torch.zeros(0, device=self.metadata_center.device)

    def metadata_base(self, cond: torch.Tensor, cond_valid: torch.Tensor | None) -> torch.Tensor:
        """The fitted shift of a generated sample's standardised latent given its metadata (B, q, d_z);
        zero for a sample without metadata, and everywhere before :meth:`fit_metadata_base`."""
        emb, has = self.metadata_embedding(cond, cond_valid)
        if emb.shape[1] != self.metadata_weight.shape[0]:
            raise ValueError(f"the metadata base was fitted on {self.metadata_weight.shape[0]} features, "
                             f"got {emb.shape[1]} (another number of metadata tokens)")
        shift = torch.einsum("bc,cqd->bqd", emb.to(self.metadata_weight.dtype) - self.metadata_center,
                             self.metadata_weight)
        return shift * has.to(shift.dtype)[:, None, None]

    @torch.no_grad()
    def fit_metadata_base(self, z0: torch.Tensor, cond: torch.Tensor, cond_valid: torch.Tensor | None,
                          n_penalties: int = 40) -> dict:
        """Fit :meth:`metadata_base`: ridge regression of the generation residual (z0 minus the
        unconditional centre, (n, q, d_z) over training samples) on the metadata tokens side by side
        (n, c * d_cond; :meth:`metadata_embedding`), the penalty chosen by generalised cross-validation, so that a sample's own latent cannot be
        memorised through near-unique metadata (e.g. age). Returns the penalty and the in-sample and
        cross-validated R^2."""
        self.clear_metadata_base()
        emb, has = self.metadata_embedding(cond, cond_valid)
        empty = torch.zeros(1, z0.shape[1], device=z0.device)  # the same for every sample: encoded once
        centre = self.base(self.token_condition(empty, empty > 0)) + self.generation_loc
        x = emb[has].double()
        r = (z0 - centre)[has].reshape(int(has.sum()), -1).double()
        n = x.shape[0]
        x_mean, r_mean = x.mean(0), r.mean(0)
        xc, rc = x - x_mean, r - r_mean
        unfitted = {"penalty": float("nan"), "r2": 0.0, "r2_cv": 0.0, "n": n}  # the base stays empty
        if n < 10 or float((rc**2).sum()) == 0.0 or float((xc**2).sum()) == 0.0:  # nothing to regress
            return unfitted
        u, sv, vt = torch.linalg.svd(xc, full_matrices=False)
        uty = u.T @ rc
        total = float((rc**2).sum())
        # the residual sum of squares per penalty from the SVD alone (no n x q·d_z fit per penalty):
        # the part of rc outside U's span, plus each singular direction's unexplained share
        along = (uty**2).sum(1)
        outside = total - float(along.sum())
        best = None
        for lam in (sv.max() ** 2) * torch.logspace(-6, 2, n_penalties, dtype=torch.float64):
            shrink = sv**2 / (sv**2 + lam)
            rss = outside + float((((1.0 - shrink) ** 2) * along).sum())
            free = 1.0 - float(shrink.sum()) / n
            if free <= 1e-6:  # as many effective parameters as samples: no cross-validated fit
                continue
            gcv = rss / free**2
            if best is None or gcv < best[0]:
                best = (gcv, float(lam), rss)
        if best is None:
            return unfitted
        gcv, lam, rss = best
        weight = vt.T @ ((sv / (sv**2 + lam))[:, None] * uty)  # (c * d_cond, q * d_z)
        self.metadata_weight = weight.reshape(-1, self.q, self.d_z).to(z0.dtype)
        self.metadata_center = x_mean.to(z0.dtype)
        return {"penalty": lam, "r2": 1.0 - rss / total, "r2_cv": 1.0 - gcv / total, "n": n}

    # -- AR order helpers ------------------------------------------------------------------------

    def to_ar(self, x: torch.Tensor) -> torch.Tensor:
        """Table order -> AR order along dim 1."""
        return x[:, self.ar_perm]

    def from_ar(self, x: torch.Tensor) -> torch.Tensor:
        """AR order -> table order along dim 1."""
        out = torch.empty_like(x)
        out[:, self.ar_perm] = x
        return out

    def dep_ar(self) -> torch.Tensor:
        return self.dep[self.ar_perm][:, self.ar_perm]

    def attention_mask(self, n_blocks: int, n_cond: int, cond_valid: torch.Tensor | None) -> torch.Tensor:
        """The DAT mask for the first ``n_blocks`` AR blocks."""
        sizes = self.block_sizes[:n_blocks]
        s = sum(sizes)
        return dat_attention_mask(sizes, n_cond, self.dep_ar()[:s, :s], dep_mode=self.dat.dep_mode,
                                  cond_valid=cond_valid, device=self.dep.device)

    # -- training --------------------------------------------------------------------------------

    def diffusion_loss(
        self,
        z0: torch.Tensor,
        token_cond: torch.Tensor,
        scheduler: NoiseScheduler,
        *,
        cond: torch.Tensor | None = None,
        cond_valid: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        t: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-token denoising error (B, q), table order (teacher forcing over all AR blocks at once).

        z0 (B, q, d_z) clean standardised latents and token_cond (B, q, d_z + 2), table order. One
        timestep per sample. The error is the squared error of the eps / v prediction, averaged over
        the d_z latent dimensions; the trainer decides how to weight tokens. ``t`` (B,) and ``noise``
        (like z0) are drawn from ``generator`` unless given (the sharded trainer draws them for the
        global batch and passes each rank its slice).
        """
        B = z0.shape[0]
        device = z0.device
        if t is None:
            t = torch.randint(0, scheduler.num_train_timesteps, (B,), generator=generator, device=device)
        if noise is None:
            noise = torch.randn(z0.shape, generator=generator, device=device, dtype=z0.dtype)
        z0_ar, noise_ar = self.to_ar(self.to_target(z0, token_cond)), self.to_ar(noise)
        z_t = scheduler.add_noise(z0_ar, noise_ar, t)
        target = scheduler.training_target(z0_ar, noise_ar, t)
        n_cond = 0 if cond is None else cond.shape[1]
        mask = self.attention_mask(len(self.block_sizes), n_cond, cond_valid if n_cond else None)
        pred = self.dat(
            z_t, t, block_sizes=self.block_sizes, z_clean=z0_ar, cond=cond if n_cond else None,
            taxon_index=self.ar_perm, token_cond=self.to_ar(token_cond), attn_mask=mask,
        )
        return self.from_ar((pred - target).pow(2).mean(-1, keepdim=True))[..., 0]

    # -- sampling --------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(
        self,
        token_cond: torch.Tensor,
        schedulers: Sequence[NoiseScheduler],
        *,
        cond: torch.Tensor | None = None,
        cond_valid: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        guidance: float = 1.0,
    ) -> torch.Tensor:
        """Draw clean standardised latents (B, q, d_z), table order, block by block (AR); the blocks
        are generated in the diffusion's target space (see ``target``) and mapped back at the end.

        ``guidance`` w: classifier-free guidance on the metadata tokens. Each step also predicts with
        every metadata token masked out (as in training's metadata dropout) and uses
        ``uncond + w * (cond - uncond)``: 1 = the conditional prediction alone (the default, one pass),
        0 = unconditional, above 1 the metadata's effect amplified (two passes per step).

        ``schedulers[k]`` holds the timestep set of block k (``set_timesteps`` already called).
        Block k is denoised over a sequence cut after block k: tokens of later blocks cannot reach
        block k's output through the mask (:func:`~pydepmicro.nn.masks.dat_attention_mask`), so
        leaving them out changes nothing and saves their cost. Earlier blocks enter as clean
        (generated) tokens and, re-noised to the current timestep, as noisy tokens.
        """
        B, device = token_cond.shape[0], token_cond.device
        tc_ar = self.to_ar(token_cond)
        n_cond = 0 if cond is None else cond.shape[1]
        out = torch.zeros(B, self.q, self.d_z, device=device, dtype=token_cond.dtype)
        guided = bool(n_cond) and cond_valid is not None and float(guidance) != 1.0 and bool(cond_valid.any())
        start = 0
        for k, size in enumerate(self.block_sizes):
            end = start + size
            mask = self.attention_mask(k + 1, n_cond, cond_valid if n_cond else None)
            mask_free = self.attention_mask(k + 1, n_cond, torch.zeros_like(cond_valid)) if guided else None
            sched = schedulers[k]
            z = torch.randn(B, size, self.d_z, generator=generator, device=device, dtype=out.dtype)
            done = out[:, :start]
            for t in sched.timesteps.tolist():
                if start:
                    noise = torch.randn(done.shape, generator=generator, device=device, dtype=out.dtype)
                    z_in = torch.cat([sched.add_noise(done, noise, t), z], dim=1)
                else:
                    z_in = z
                args = dict(block_sizes=self.block_sizes[: k + 1], z_clean=done if start else None,
                            cond=cond if n_cond else None, taxon_index=self.ar_perm[:end], token_cond=tc_ar[:, :end])
                pred = self.dat(z_in, t, attn_mask=mask, **args)
                if guided:
                    free = self.dat(z_in, t, attn_mask=mask_free, **args)
                    pred = free + float(guidance) * (pred - free)
                z = sched.step(pred[:, start:end], t, z, generator=generator).prev_sample
            out[:, start:end] = z
            start = end
        return self.from_target(self.from_ar(out), token_cond)

    @torch.no_grad()
    def predict_mean(
        self,
        token_cond: torch.Tensor,
        scheduler: NoiseScheduler,
        *,
        cond: torch.Tensor | None = None,
        cond_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The denoiser's estimate of E[z0 | condition] (B, q, d_z), table order, deterministic.

        Per AR block, one pass at the last timestep t = T - 1 with the noisy tokens at their mean
        (zero): there the input carries almost no signal, so the network's clean prediction is its
        regression of z0 on the condition, which is what minimises the expected squared error (a
        mean over draws estimates the same thing, with Monte Carlo noise). Earlier blocks enter as
        their own estimates, clean and re-noised (without noise) to t.
        """
        B, device = token_cond.shape[0], token_cond.device
        tc_ar = self.to_ar(token_cond)
        n_cond = 0 if cond is None else cond.shape[1]
        t = scheduler.num_train_timesteps - 1
        out = torch.zeros(B, self.q, self.d_z, device=device, dtype=token_cond.dtype)
        start = 0
        for k, size in enumerate(self.block_sizes):
            end = start + size
            mask = self.attention_mask(k + 1, n_cond, cond_valid if n_cond else None)
            done = out[:, :start]
            z = torch.zeros(B, size, self.d_z, device=device, dtype=out.dtype)
            z_in = torch.cat([scheduler.add_noise(done, torch.zeros_like(done), t), z], dim=1) if start else z
            pred = self.dat(
                z_in, t, block_sizes=self.block_sizes[: k + 1], z_clean=done if start else None,
                cond=cond if n_cond else None, taxon_index=self.ar_perm[:end],
                token_cond=tc_ar[:, :end], attn_mask=mask,
            )
            out[:, start:end] = scheduler.predict_original_and_noise(pred[:, start:end], t, z)[0]
            start = end
        return self.from_target(self.from_ar(out), token_cond)

    @property
    def config(self) -> dict[str, Any]:
        return {"block_sizes": list(self.block_sizes), "q": self.q}
