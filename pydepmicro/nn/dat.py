"""Dependency-Aware Transformer (DAT): the denoiser of DepMicroDiff's latent diffusion.

Input sequence (see :mod:`pydepmicro.nn.masks` for the layout and the attention rules)::

    [ c condition tokens | clean latents of AR blocks 0..K-2 | noisy latents z_t of all s taxa ]

Each token is a d_model vector built from its parts::

    condition : cond_in(cond)                                           + kind[0]
    clean     : z_in(z_clean) + taxon identity + token_cond_in(token_cond)  + kind[1]
    noisy     : z_in(z_t)     + taxon identity + token_cond_in(token_cond)  + kind[2] + time(t)

then ``n_layers`` pre-norm blocks (masked multi-head self-attention through
:func:`torch.nn.functional.scaled_dot_product_attention`, then an MLP), and a head on the noisy
positions only that predicts eps (or v; the scheduler's ``prediction_type`` decides how the output is
read, the module does not care).

Taxon identity: either an ``nn.Embedding`` of ``n_taxa`` rows keyed by ``taxon_index`` (so weights
transfer between datasets sharing taxa), or a tensor ``taxon_emb`` given per call (e.g. taxonomy
embeddings; projected from ``d_taxon`` when ``d_taxon > 0``). ``token_cond`` carries per-taxon
conditioning such as the observed latent m0^c and the observed/missing bit (DESIGN.md, item 3).

Training, one step: split taxa into blocks (``ar_block_sizes``), noise all of z_0 (one timestep per
sample, or per block expanded to tokens with ``block_ids``), feed ``z_clean = z_0``, take the loss on
the output. Inference: denoise block k with the same layout; everything the mask hides from block k
(later blocks, their clean slots) may hold placeholders (e.g. zeros).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_heads, check_int
from .masks import DEP_MODES, dat_attention_mask, dat_layout

__all__ = ["DATBlock", "DependencyAwareTransformer", "TimestepEmbedding", "sinusoidal_embedding"]


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps: shape t.shape + (dim,)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / max(half, 1))
    args = t.to(torch.float32)[..., None] * freqs
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class TimestepEmbedding(nn.Module):
    """t (any shape) -> sinusoidal(t) -> Linear -> SiLU -> Linear: shape t.shape + (d_model,)."""

    def __init__(self, d_model: int, d_freq: int | None = None):
        super().__init__()
        self.d_freq = d_freq or d_model
        self.mlp = nn.Sequential(nn.Linear(self.d_freq, d_model), nn.SiLU(), nn.Linear(d_model, d_model))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal_embedding(t, self.d_freq))


class _MaskedSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.dropout = dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x (B, L, D); mask bool (L, L) or (B, L, L), True = may attend
        B, L, D = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
        attn_mask = mask[:, None] if mask.ndim == 3 else mask
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(out.transpose(1, 2).reshape(B, L, D))


class DATBlock(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x), mask), then x + MLP(LN(x)). Shapes (B, L, D)."""

    def __init__(self, d_model: int, n_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = _MaskedSelfAttention(d_model, n_heads, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        hidden = int(round(d_model * mlp_ratio))
        self.mlp = nn.Sequential(
            nn.Linear(d_model, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, d_model), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


class DependencyAwareTransformer(nn.Module):
    """Denoiser over taxon latent tokens with block-autoregressive, dependency-aware attention.

    Parameters (keyword-only; stored in :attr:`config`, so ``type(m)(**m.config)`` rebuilds it)
    ----------
    d_z : int
        Dimension of one latent token (the VAE's per-taxon latent); input and output dimension.
    d_model, n_layers, n_heads, mlp_ratio, dropout
        Transformer size; ``d_model`` must be divisible by ``n_heads``.
    d_cond : int
        Dimension of condition tokens (e.g. 384 for MiniLM sentence embeddings); 0 = no conditions.
    d_token_cond : int
        Dimension of per-taxon conditioning features (e.g. d_z + 1 for m0^c and the mask bit);
        0 = none.
    n_taxa : int
        Rows of the taxon-identity ``nn.Embedding`` (a vocabulary of taxa); 0 = no table.
    d_taxon : int
        Dimension of per-call ``taxon_emb`` tensors, projected to d_model; 0 = they are d_model.
    d_taxonomy : int
        Width of fixed per-taxon features (``taxonomy_features`` buffer, (n_taxa, d_taxonomy), e.g.
        hyperbolic taxonomy coordinates, :mod:`.hyperbolic`), mapped linearly and added to the taxon
        identity; 0 = none. Set them with :meth:`set_taxonomy_features`.
    dep_mode : {"open", "restrict"}
        How the dependency matrix enters the mask (:func:`~pydepmicro.nn.masks.dat_attention_mask`).

    Example
    -------
    >>> m = DependencyAwareTransformer(d_z=4, d_model=32, n_layers=2, n_heads=4, d_cond=8, n_taxa=7)
    >>> z_t, z0 = torch.randn(2, 7, 4), torch.randn(2, 7, 4)
    >>> out = m(z_t, torch.tensor([10, 500]), z_clean=z0, block_sizes=[2, 2, 3],
    ...         cond=torch.randn(2, 2, 8), dep=torch.zeros(7, 7, dtype=torch.bool))
    >>> out.shape
    torch.Size([2, 7, 4])
    """

    def __init__(
        self,
        *,
        d_z: int,
        d_model: int = 128,
        n_layers: int = 4,
        n_heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        d_cond: int = 0,
        d_token_cond: int = 0,
        n_taxa: int = 0,
        d_taxon: int = 0,
        dep_mode: str = "open",
        d_taxonomy: int = 0,
    ):
        super().__init__()
        for name, value, low in [
            ("d_z", d_z, 1), ("d_model", d_model, 1), ("n_layers", n_layers, 1), ("n_heads", n_heads, 1),
            ("d_cond", d_cond, 0), ("d_token_cond", d_token_cond, 0), ("n_taxa", n_taxa, 0), ("d_taxon", d_taxon, 0),
            ("d_taxonomy", d_taxonomy, 0),
        ]:  # fmt: skip
            check_int(name, value, low)
        check_heads(d_model, n_heads)
        if dep_mode not in DEP_MODES:
            raise ValueError(f"dep_mode must be one of {DEP_MODES}, got {dep_mode!r}")
        self.config: dict[str, Any] = dict(
            d_z=d_z, d_model=d_model, n_layers=n_layers, n_heads=n_heads, mlp_ratio=float(mlp_ratio),
            dropout=float(dropout), d_cond=d_cond, d_token_cond=d_token_cond, n_taxa=n_taxa, d_taxon=d_taxon,
            dep_mode=dep_mode, d_taxonomy=d_taxonomy,
        )  # fmt: skip
        if d_taxonomy and not n_taxa:
            raise ValueError("d_taxonomy needs n_taxa > 0 (the features are per taxon)")
        self.d_z, self.d_model, self.dep_mode = d_z, d_model, dep_mode

        self.z_in = nn.Linear(d_z, d_model)
        self.kind_embedding = nn.Embedding(3, d_model)  # condition / clean / noisy
        self.time_embedding = TimestepEmbedding(d_model)
        self.cond_in = nn.Linear(d_cond, d_model) if d_cond else None
        self.token_cond_in = nn.Linear(d_token_cond, d_model) if d_token_cond else None
        self.taxon_embedding = nn.Embedding(n_taxa, d_model) if n_taxa else None
        self.taxon_in = nn.Linear(d_taxon, d_model) if d_taxon else None
        self.taxonomy_in = nn.Linear(d_taxonomy, d_model) if d_taxonomy else None
        if d_taxonomy:
            self.register_buffer("taxonomy_features", torch.zeros(n_taxa, d_taxonomy))
        self.blocks = nn.ModuleList(DATBlock(d_model, n_heads, mlp_ratio, dropout) for _ in range(n_layers))
        self.norm_out = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, d_z)
        for emb in (self.kind_embedding, self.taxon_embedding):
            if emb is not None:
                nn.init.normal_(emb.weight, std=0.02)

    # ------------------------------------------------------------------------------------------

    @torch.no_grad()
    def set_taxonomy_features(self, features: torch.Tensor) -> None:
        """Fixed per-taxon features (n_taxa, d_taxonomy), in the order of the taxon identity rows."""
        if self.taxonomy_in is None:
            raise ValueError("this module was built with d_taxonomy=0")
        features = torch.as_tensor(features, dtype=self.taxonomy_features.dtype)
        if features.shape != self.taxonomy_features.shape:
            raise ValueError(f"taxonomy features must be {tuple(self.taxonomy_features.shape)}, "
                             f"got {tuple(features.shape)}")
        self.taxonomy_features.copy_(features)

    def attention_mask(
        self,
        block_sizes: Sequence[int],
        n_cond: int = 0,
        dep: torch.Tensor | None = None,
        cond_valid: torch.Tensor | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """The boolean mask this module uses (shape (L, L) or (B, L, L)); see ``dat_attention_mask``."""
        return dat_attention_mask(
            block_sizes, n_cond, dep, dep_mode=self.dep_mode, cond_valid=cond_valid, device=device
        )

    def _taxon_identity(self, s: int, taxon_index, taxon_emb, device) -> torch.Tensor | None:
        if taxon_emb is not None:
            if taxon_index is not None:
                raise ValueError("give taxon_index or taxon_emb, not both")
            emb = taxon_emb.to(device)
            if self.taxon_in is not None:
                emb = self.taxon_in(emb)
            if emb.shape[-2:] != (s, self.d_model):
                raise ValueError(f"taxon_emb must be (s, d) or (B, s, d) giving d_model={self.d_model} per taxon, s={s}")
            return emb if emb.ndim == 3 else emb[None]
        if self.taxon_embedding is None:
            if taxon_index is not None:
                raise ValueError("taxon_index given but the module has no taxon embedding (n_taxa=0)")
            return None
        if taxon_index is None:
            if s > self.taxon_embedding.num_embeddings:
                raise ValueError(f"{s} taxa but the taxon embedding has {self.taxon_embedding.num_embeddings} rows")
            taxon_index = torch.arange(s, device=device)
        taxon_index = torch.as_tensor(taxon_index, device=device)
        if taxon_index.shape[-1] != s:
            raise ValueError(f"taxon_index must have s={s} entries per sample, got shape {tuple(taxon_index.shape)}")
        emb = self.taxon_embedding(taxon_index)
        if self.taxonomy_in is not None:
            emb = emb + self.taxonomy_in(self.taxonomy_features[taxon_index])
        return emb if emb.ndim == 3 else emb[None]

    def forward(
        self,
        z_noisy: torch.Tensor,
        t: torch.Tensor | int,
        *,
        block_sizes: Sequence[int],
        z_clean: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
        cond_valid: torch.Tensor | None = None,
        dep: torch.Tensor | None = None,
        taxon_index: torch.Tensor | None = None,
        taxon_emb: torch.Tensor | None = None,
        token_cond: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict eps (or v) for every noisy taxon token.

        Parameters
        ----------
        z_noisy : (B, s, d_z)
            Noisy latents z_t of all taxa, in AR order (block 0 first).
        t : int, (B,) or (B, s)
            Timestep(s): one per sample, or one per token (e.g. per AR block).
        block_sizes : sequence of K ints summing to s
        z_clean : (B, s, d_z) or (B, s - block_sizes[-1], d_z), optional
            Clean latents; only those of blocks 0..K-2 are used (a full (B, s, d_z) tensor is cut).
            Required when K > 1.
        cond : (B, c, d_cond), optional
            Condition tokens (c may be 0). ``cond_valid`` (B, c) bool marks real ones.
        dep : bool (s, s) or (B, s, s), optional
            Dependency matrix in AR order, ``dep[i, j]``: taxon i depends on taxon j.
        taxon_index : long (s,) or (B, s), optional
            Rows of the taxon embedding (default ``arange(s)`` when the module has one).
        taxon_emb : (s, d) or (B, s, d), optional
            Taxon identity vectors instead of the embedding table.
        token_cond : (B, s, d_token_cond), optional
            Per-taxon conditioning features, added to both the clean and the noisy token.
        attn_mask : bool (L, L) or (B, L, L), optional
            A precomputed :meth:`attention_mask` (saves rebuilding it every call).

        Returns
        -------
        (B, s, d_z)
        """
        if z_noisy.ndim != 3 or z_noisy.shape[-1] != self.d_z:
            raise ValueError(f"z_noisy must be (B, s, {self.d_z}), got {tuple(z_noisy.shape)}")
        B, s, _ = z_noisy.shape
        device = z_noisy.device
        lay = dat_layout(block_sizes, 0 if cond is None else int(cond.shape[1]))
        if lay.n_taxa != s:
            raise ValueError(f"block sizes {list(block_sizes)} sum to {lay.n_taxa}, but z_noisy has {s} taxa")
        c, s_clean = lay.n_cond, lay.n_clean

        # -- tokens ------------------------------------------------------------------------------
        ident = self._taxon_identity(s, taxon_index, taxon_emb, device)
        extra = 0 if ident is None else ident
        if token_cond is not None:
            if self.token_cond_in is None:
                raise ValueError("token_cond given but the module was built with d_token_cond=0")
            extra = extra + self.token_cond_in(token_cond)
        elif self.token_cond_in is not None:
            raise ValueError(f"token_cond of shape (B, s, {self.config['d_token_cond']}) is required")

        t = torch.as_tensor(t, device=device)
        if t.ndim == 0:
            t = t.expand(B)
        if t.shape not in ((B,), (B, s)):
            raise ValueError(f"t must be a scalar, (B,) or (B, s), got {tuple(t.shape)}")
        temb = self.time_embedding(t)
        temb = temb[:, None, :] if t.ndim == 1 else temb
        noisy = self.z_in(z_noisy) + self.kind_embedding.weight[2] + temb + extra
        parts = []

        if c:
            if self.cond_in is None:
                raise ValueError("condition tokens given but the module was built with d_cond=0")
            parts.append(self.cond_in(cond) + self.kind_embedding.weight[0])
        if s_clean:
            if z_clean is None:
                raise ValueError("z_clean is required when there is more than one AR block")
            if z_clean.shape[1] == s:
                z_clean = z_clean[:, :s_clean]
            if z_clean.shape != (B, s_clean, self.d_z):
                raise ValueError(f"z_clean must be (B, {s}, {self.d_z}) or (B, {s_clean}, {self.d_z}), got {tuple(z_clean.shape)}")
            extra_clean = extra if isinstance(extra, int) else extra[:, :s_clean]
            parts.append(self.z_in(z_clean) + self.kind_embedding.weight[1] + extra_clean)
        parts.append(noisy)
        x = torch.cat([p.expand(B, -1, -1) for p in parts], dim=1)

        # -- attention ---------------------------------------------------------------------------
        if attn_mask is None:
            attn_mask = self.attention_mask(block_sizes, c, dep, cond_valid, device=device)
        elif attn_mask.shape[-2:] != (lay.length, lay.length):
            raise ValueError(f"attn_mask must be ({lay.length}, {lay.length}), got {tuple(attn_mask.shape)}")
        attn_mask = attn_mask.to(device=device, dtype=torch.bool)
        for block in self.blocks:
            x = block(x, attn_mask)
        return self.head(self.norm_out(x[:, lay.noisy]))
