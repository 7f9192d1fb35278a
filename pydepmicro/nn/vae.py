"""TaxonVAE: maps each microbiome sample to one small latent token per taxon, and back.

DESIGN.md, "DepMicroDiff, as we implement it", item 1. Tokens are taxa; the diffusion model runs on
the latent tokens Z (B, q, d_z).

Encoder (sample y, observed/missing indicator m -> posterior N(mu, diag exp(logvar)) per token)::

    features_j = [y_j * m_j, m_j, 1(y_j > 0) * m_j]      missing entries zeroed and flagged
               (+ [u_j, 1(x_p > 0), log(1 + c_j)] with ``lineage_inputs``, below)
    token_j    = Linear(3 or 6 -> d_model)(features_j) + taxon_identity(j)
    h          = TransformerEncoder(tokens)              cross-taxon context (n_layers, pre-norm)
    mu_j, logvar_j = Linear(h_j -> d_z), Linear(h_j -> d_z)

A missing value enters nowhere but through the indicator: it is replaced by 0 with ``torch.where``
(so even NaN is harmless) before anything else sees it.

Lineage inputs (``lineage_inputs=True``; TCMA-style tables whose features are nested taxa, a genus
and its species): with x = base^y - 1 the (observed) values on the linear scale, p the taxon's
nearest ancestor among the table's taxa and c_j the sum of x over the taxa whose nearest ancestor is
j, each token also gets u_j = (x_p - c_p) / x_p clipped to [0, 1] (the share of the parent's reads
that none of its children in the table accounts for; 0 without a parent or when it is 0), whether
the parent is nonzero, and log_base(1 + c_j). A dropped taxon leaves its reads in its parent, which
is what u reads; a zero with nonzero children cannot be a true absence. Ancestors are kept per
vocabulary taxon (nearest first, :meth:`TaxonVAE.set_lineage`), so the parent of a taxon is the
nearest ancestor present in whatever subset of taxa a table holds.

Decoder (Z -> per-taxon zero-inflated reconstruction)::

    token_j        = Linear(d_z -> d_model)(z_j) + taxon_identity(j)
    h              = TransformerEncoder(tokens)
    presence_logit = Linear(h_j -> 1) + presence_bias[j]            logit p(y_j > 0)
    abundance      = softplus(Linear(h_j -> 1) + abundance_bias[j]) value of y_j when present (>= 0)
    mean           = sigmoid(presence_logit) * abundance            E[y_j]

The two output layers start at zero weight, so the untrained decoder outputs exactly the per-taxon
biases. :meth:`TaxonVAE.init_presence_bias` sets presence_bias = logit(prevalence) (clipped), and
:meth:`TaxonVAE.init_abundance_bias` sets abundance to the mean nonzero value: sparsity and scale are
right from the first step (the "sparsity-preserving decoder", DESIGN.md "Generation").
``decode(..., presence="sample")`` draws a hard 0/1 presence mask (Bernoulli, straight-through
gradient) instead of using the expected value, for generation.

Likelihood and loss (paper eq. 5-8 are a standard ELBO; our choice of likelihood): a hurdle
(zero-inflated) model on the log scale, p(y) = (1 - pi) delta_0(y) + pi N(y; a, 1/2), i.e. a
log-normal abundance in relative-abundance space. Its negative log-likelihood, up to constants, is
presence BCE on 1(y > 0) plus squared error of the abundance on nonzero entries. Both are averaged
over the OBSERVED entries only (m = 1); missing entries contribute nothing::

    presence_loss  = sum_obs BCE(presence_logit, 1(y > 0)) / n_obs
    abundance_loss = sum_obs,y>0 (abundance - y)^2 / n_obs
    kl             = mean over (B, q) tokens of KL(N(mu, sigma^2) || N(0, I)) summed over d_z
    loss           = presence_weight * presence_loss + abundance_weight * abundance_loss + beta * kl

With nothing missing this is the per-entry negative ELBO with a beta-weighted KL. ``beta`` defaults
to a small value (0.01) because latent diffusion needs informative latents rather than a tight
prior match (cf. the tiny KL weights of Stable Diffusion's autoencoder); the trainer may anneal it
(``loss(..., beta=...)``).

Taxa: the module holds a vocabulary of taxon ids (:class:`~.embeddings.TaxonEmbedding`); every call
takes ``taxon_index`` (q,) with the vocabulary rows of the table's columns, in the table's order, so
a VAE built on 106 TCMA taxa runs on any subset or reordering of them, and on a superset after
:meth:`TaxonVAE.extend`. Nothing depends on the batch size or on q.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_heads, check_int
from .embeddings import TaxonEmbedding, normalize_ids

__all__ = ["TaxonVAE"]

_PRESENCE_MODES = ("expected", "sample")


def _inverse_softplus(x: torch.Tensor) -> torch.Tensor:
    """y with softplus(y) = x, for x > 0 (stable for large x)."""
    return x + torch.log(-torch.expm1(-x))


def _transformer(d_model: int, n_layers: int, n_heads: int, mlp_ratio: float, dropout: float) -> nn.ModuleList:
    return nn.ModuleList(
        nn.TransformerEncoderLayer(
            d_model,
            n_heads,
            dim_feedforward=int(round(d_model * mlp_ratio)),
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        for _ in range(n_layers)
    )


class TaxonVAE(nn.Module):
    """Per-taxon-token VAE with a zero-inflated (presence x abundance) decoder.

    Parameters (keyword-only; stored in :attr:`config`, so ``type(m)(**m.config)`` rebuilds it)
    ----------
    vocab : sequence of str, or int
        Ordered taxon ids the module knows (an int n means ids "0" .. "n-1"). Stored in the config,
        which stays JSON; :meth:`extend` grows it.
    d_z : int
        Dimension of one latent token (one per taxon).
    d_model, n_layers, n_heads, mlp_ratio, dropout
        Size of the encoder and of the decoder transformer (each has ``n_layers`` layers);
        ``d_model`` must be divisible by ``n_heads``.
    beta : float
        Default KL weight of :meth:`loss`.
    presence_weight, abundance_weight : float
        Weights of the two reconstruction terms.
    sparsity_weight : float
        Weight of the sparsity loss (:meth:`sparsity_loss`, added by the trainer): the squared gap
        between the sparsity of hard 0/1 presence masks sampled in the forward pass and the real
        sparsity, overall and per taxon. 0 = off.
    logvar_clamp : (float, float)
        Posterior log-variances are clamped to this range (numerical safety).
    lineage_inputs : bool
        Give the encoder the lineage inputs (module docstring); taxa without known ancestors get 0.
    log_base : float
        Base of the log transform of y (the lineage inputs sum values on the linear scale).
    ancestors : sequence of sequences of str, optional
        Per vocabulary taxon, its ancestors' ids, nearest first (see :meth:`set_lineage`).

    Shapes: y, m (B, q); taxon_index (q,); mu, logvar, z (B, q, d_z); decoder outputs (B, q).

    Example
    -------
    >>> vae = TaxonVAE(vocab=["a", "b", "c"], d_z=4, d_model=16, n_heads=2)
    >>> y = torch.tensor([[0.0, 1.2, 0.3]]); m = torch.tensor([[1.0, 1.0, 0.0]])
    >>> out = vae(y, m, vae.index(["a", "b", "c"]))
    >>> out["z"].shape, out["mean"].shape
    (torch.Size([1, 3, 4]), torch.Size([1, 3]))
    """

    def __init__(
        self,
        *,
        vocab: Sequence[str] | int,
        d_z: int = 4,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        beta: float = 0.01,
        presence_weight: float = 1.0,
        abundance_weight: float = 1.0,
        sparsity_weight: float = 0.0,
        logvar_clamp: Sequence[float] = (-12.0, 8.0),
        lineage_inputs: bool = False,
        log_base: float = math.e,
        ancestors: Sequence[Sequence[str]] | None = None,
    ):
        super().__init__()
        if isinstance(vocab, int) and not isinstance(vocab, bool):
            check_int("vocab (as a count)", vocab, 1)
            vocab = [str(i) for i in range(vocab)]
        vocab = normalize_ids(vocab, what="vocab")
        if not vocab:
            raise ValueError("vocab must hold at least one taxon id")
        for name, value in [("d_z", d_z), ("d_model", d_model), ("n_layers", n_layers), ("n_heads", n_heads)]:
            check_int(name, value, 1)
        check_heads(d_model, n_heads)
        weights = [("beta", beta), ("presence_weight", presence_weight), ("abundance_weight", abundance_weight),
               ("sparsity_weight", sparsity_weight)]
        for name, value in weights:
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        lo, hi = (float(v) for v in logvar_clamp)
        if not lo < hi:
            raise ValueError(f"logvar_clamp must be (low, high) with low < high, got {logvar_clamp!r}")
        if not (isinstance(log_base, (int, float)) and math.isfinite(log_base) and log_base > 0 and log_base != 1):
            raise ValueError(f"log_base must be a finite number > 0 other than 1, got {log_base!r}")
        self._hparams: dict[str, Any] = dict(
            d_z=d_z, d_model=d_model, n_layers=n_layers, n_heads=n_heads, mlp_ratio=float(mlp_ratio),
            dropout=float(dropout), beta=float(beta), presence_weight=float(presence_weight),
            abundance_weight=float(abundance_weight), sparsity_weight=float(sparsity_weight), logvar_clamp=[lo, hi],
            lineage_inputs=bool(lineage_inputs), log_base=float(log_base),
        )  # fmt: skip
        self.d_z, self.d_model = d_z, d_model

        # keyed by taxon id: identity vectors (shared by encoder and decoder) and per-taxon output biases
        self.taxon_embedding = TaxonEmbedding(vocab=vocab, dim=d_model, init_std=0.02)
        self.presence_bias = TaxonEmbedding(vocab=vocab, dim=1, init_std=0.0)
        self.abundance_bias = TaxonEmbedding(vocab=vocab, dim=1, init_std=0.0)

        self.enc_in = nn.Linear(6 if lineage_inputs else 3, d_model)
        # per vocabulary taxon its ancestors' ids, nearest first, and their vocabulary rows (-1 = none)
        self._ancestors: list[tuple[str, ...]] = [()] * len(vocab)
        self.register_buffer("ancestor_rows", torch.full((len(vocab), 0), -1, dtype=torch.long), persistent=False)
        if ancestors is not None:
            if len(ancestors) != len(vocab):
                raise ValueError(f"ancestors has {len(ancestors)} entries for {len(vocab)} taxa")
            self.set_lineage(dict(zip(vocab, ancestors)))
        self.enc_layers = _transformer(d_model, n_layers, n_heads, mlp_ratio, dropout)
        self.enc_norm = nn.LayerNorm(d_model)
        self.mu_head = nn.Linear(d_model, d_z)
        self.logvar_head = nn.Linear(d_model, d_z)

        self.dec_in = nn.Linear(d_z, d_model)
        self.dec_layers = _transformer(d_model, n_layers, n_heads, mlp_ratio, dropout)
        self.dec_norm = nn.LayerNorm(d_model)
        self.presence_head = nn.Linear(d_model, 1)
        self.abundance_head = nn.Linear(d_model, 1)
        for head in (self.presence_head, self.abundance_head):  # untrained decoder = per-taxon biases
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    # -- configuration and taxa ---------------------------------------------------------------

    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable), with the current (possibly extended) vocabulary."""
        hparams = {k: (list(v) if isinstance(v, list) else v) for k, v in self._hparams.items()}
        return dict(vocab=list(self.vocab), **hparams, ancestors=[list(a) for a in self._ancestors])

    @property
    def vocab(self) -> tuple[str, ...]:
        return self.taxon_embedding.vocab

    @property
    def beta(self) -> float:
        return self._hparams["beta"]

    def _keyed(self) -> tuple[TaxonEmbedding, ...]:
        return (self.taxon_embedding, self.presence_bias, self.abundance_bias)

    def index(self, taxa_ids: Iterable[Any]) -> torch.Tensor:
        """Vocabulary rows of a table's taxa: LongTensor (q,). Unknown ids raise IdMismatchError."""
        return self.taxon_embedding.index(taxa_ids)

    def extend(self, new_ids: Iterable[Any]) -> int:
        """Add taxa not yet known; returns how many were added.

        New identity rows start at the mean embedding plus small noise (so new taxa start as an
        "average taxon" yet are distinguishable); new presence/abundance biases at the mean bias
        (call :meth:`init_presence_bias` / :meth:`init_abundance_bias` with the new table after).
        Parameters are replaced: build optimizers after extending.
        """
        ids = normalize_ids(new_ids)
        n = self.taxon_embedding.extend(ids, init="mean", noise_std=self.taxon_embedding.init_std)
        for table in (self.presence_bias, self.abundance_bias):
            table.extend(ids, init="mean")
        self._ancestors += [()] * (len(self.vocab) - len(self._ancestors))
        self._set_ancestor_rows()
        return n

    @property
    def ancestors(self) -> dict[str, tuple[str, ...]]:
        """Known ancestors of each vocabulary taxon (ids, nearest first; empty when unknown)."""
        return dict(zip(self.vocab, self._ancestors))

    def set_lineage(self, ancestors: Mapping[str, Sequence[str]]) -> int:
        """Set the ancestors (ids, nearest first) of the vocabulary taxa in ``ancestors``; returns how many.

        Ids outside the vocabulary are ignored, both as keys and as ancestors (a table this VAE encodes
        holds vocabulary taxa only). See :func:`pydepmicro.evaluate.masks.lineage_ancestors`.
        """
        rows = {t: i for i, t in enumerate(self.vocab)}
        n = 0
        for taxon, chain in ancestors.items():
            i = rows.get(str(taxon))
            if i is None:
                continue
            self._ancestors[i] = tuple(str(a) for a in chain if str(a) in rows and str(a) != str(taxon))
            n += 1
        self._set_ancestor_rows()
        return n

    def _set_ancestor_rows(self) -> None:
        rows = {t: i for i, t in enumerate(self.vocab)}
        depth = max((len(a) for a in self._ancestors), default=0)
        table = torch.full((len(self.vocab), depth), -1, dtype=torch.long)
        for i, chain in enumerate(self._ancestors):
            table[i, : len(chain)] = torch.tensor([rows[a] for a in chain], dtype=torch.long)
        self.ancestor_rows = table.to(self.taxon_embedding.weight.device)

    def table_parents(self, taxon_index: torch.Tensor) -> torch.Tensor:
        """Column of each column's nearest ancestor among the table's columns: (q,) long, -1 = none."""
        idx = self._check_index(taxon_index)
        q = idx.shape[0]
        position = torch.full((len(self.vocab),), -1, dtype=torch.long, device=idx.device)
        position[idx] = torch.arange(q, device=idx.device)
        chains = self.ancestor_rows.to(idx.device)[idx]  # (q, depth)
        if chains.shape[1] == 0:
            return torch.full((q,), -1, dtype=torch.long, device=idx.device)
        cols = torch.where(chains >= 0, position[chains.clamp_min(0)], torch.full_like(chains, -1))
        found = cols >= 0
        first = found.long().argmax(1)  # the first (nearest) ancestor present
        parent = cols.gather(1, first[:, None])[:, 0]
        return torch.where(found.any(1), parent, torch.full_like(parent, -1))

    def lineage_features(self, y_obs: torch.Tensor, taxon_index: torch.Tensor) -> torch.Tensor:
        """The three lineage inputs (B, q, 3) of observed values y_obs (B, q; missing entries 0).

        [u_j, 1(x_p > 0), log_base(1 + c_j)]: see the module docstring.
        """
        parent = self.table_parents(taxon_index)
        ln_base = math.log(self._hparams["log_base"])
        x = torch.expm1(y_obs.float() * ln_base).clamp_min(0)
        has = parent >= 0
        p = parent.clamp_min(0)
        children = torch.zeros_like(x).index_add_(1, p[has], x[:, has])  # c_j: sum over j's children
        x_parent = torch.where(has, x[:, p], torch.zeros_like(x))
        rest = torch.where(has, children[:, p], torch.zeros_like(x))
        unaccounted = torch.where(x_parent > 0, (x_parent - rest) / x_parent.clamp_min(1e-12), torch.zeros_like(x))
        feats = [unaccounted.clamp(0.0, 1.0), (x_parent > 0).to(x.dtype), torch.log1p(children) / ln_base]
        return torch.stack(feats, dim=-1).to(y_obs.dtype)

    def transfer_from(self, other: "TaxonVAE") -> int:
        """Take all weights from a (pretrained) ``other`` VAE of the same size; returns the shared taxa.

        Shared layers are copied as they are; keyed tables (taxon identity, presence and abundance
        biases) copy the rows of the taxon ids both vocabularies hold and leave the others alone.
        """
        if not isinstance(other, TaxonVAE):
            raise TypeError(f"transfer_from expects a TaxonVAE, got {type(other).__name__}")
        sizes = ("d_z", "d_model", "n_layers", "n_heads", "mlp_ratio", "logvar_clamp", "lineage_inputs")
        diff = [f"{k} {other._hparams[k]} -> {self._hparams[k]}" for k in sizes
                if other._hparams.get(k) != self._hparams.get(k)]
        if diff:
            raise ValueError(f"cannot transfer between VAEs of different sizes: {', '.join(diff)}")
        keyed = {f"{name}.embedding.weight" for name, mod in self.named_modules() if isinstance(mod, TaxonEmbedding)}
        state = {k: v for k, v in other.state_dict().items() if k not in keyed}
        self.load_state_dict(state, strict=False)  # the keyed tables are the only keys left out
        counts = [mine.transfer_from(theirs) for mine, theirs in zip(self._keyed(), other._keyed())]
        # lineage the other VAE knew and this one does not (e.g. a target table without taxonomy)
        mine = self.ancestors
        self.set_lineage({t: a for t, a in other.ancestors.items() if t in mine and a and not mine[t]})
        return counts[0]

    @torch.no_grad()
    def init_presence_bias(
        self, prevalence: torch.Tensor | Sequence[float], taxon_index: torch.Tensor | None = None, *, eps: float = 1e-3
    ) -> None:
        """presence_bias[taxon_index] = logit(clip(prevalence, eps, 1 - eps)).

        ``prevalence`` (q,): fraction of observed samples in which each taxon is nonzero; with the
        zero-initialised presence head the untrained decoder then reproduces it exactly.
        ``taxon_index`` (q,) defaults to the whole vocabulary in order.
        """
        idx = self._check_index(taxon_index)
        p = torch.as_tensor(prevalence, dtype=torch.float32).reshape(-1)
        if p.shape[0] != idx.shape[0]:
            raise ValueError(f"{p.shape[0]} prevalences for {idx.shape[0]} taxa")
        if not torch.isfinite(p).all() or (p < 0).any() or (p > 1).any():
            raise ValueError("prevalence must lie in [0, 1]")
        p = p.clamp(eps, 1 - eps)
        w = self.presence_bias.weight
        w[idx.to(w.device), 0] = torch.logit(p).to(w)

    @torch.no_grad()
    def init_abundance_bias(
        self, mean_nonzero: torch.Tensor | Sequence[float], taxon_index: torch.Tensor | None = None, *, floor: float = 1e-3
    ) -> None:
        """abundance_bias[taxon_index] = softplus^-1(mean_nonzero): the untrained abundance head
        returns each taxon's mean nonzero value (shape (q,); values below ``floor`` are raised to it)."""
        idx = self._check_index(taxon_index)
        a = torch.as_tensor(mean_nonzero, dtype=torch.float32).reshape(-1)
        if a.shape[0] != idx.shape[0]:
            raise ValueError(f"{a.shape[0]} abundances for {idx.shape[0]} taxa")
        if not torch.isfinite(a).all():
            raise ValueError("mean_nonzero must be finite")
        w = self.abundance_bias.weight
        w[idx.to(w.device), 0] = _inverse_softplus(a.clamp_min(floor)).to(w)

    @torch.no_grad()
    def init_from_data(self, y: torch.Tensor, m: torch.Tensor | None = None, taxon_index: torch.Tensor | None = None) -> None:
        """Both bias inits from a training matrix y (B, q) with indicator m (observed entries only).

        Taxa never observed nonzero get prevalence 0 (clipped) and the overall mean nonzero value.
        """
        y, obs = self._check_inputs(y, m)
        nz = obs & (y > 0)
        n_obs = obs.sum(0)
        prevalence = nz.sum(0) / n_obs.clamp_min(1)
        prevalence = torch.where(n_obs > 0, prevalence, prevalence.new_tensor(0.5))
        y0 = torch.where(nz, y, torch.zeros_like(y))
        overall = y0.sum() / nz.sum().clamp_min(1) if nz.any() else y.new_tensor(1.0)
        mean_nonzero = torch.where(nz.sum(0) > 0, y0.sum(0) / nz.sum(0).clamp_min(1), overall)
        self.init_presence_bias(prevalence, taxon_index)
        self.init_abundance_bias(mean_nonzero, taxon_index)

    # -- checks ------------------------------------------------------------------------------

    def _check_index(self, taxon_index, q: int | None = None) -> torch.Tensor:
        device = self.taxon_embedding.weight.device
        if taxon_index is None:
            if q is not None and q != len(self.vocab):
                raise ValueError(f"taxon_index is required: {q} taxa but the vocabulary holds {len(self.vocab)}")
            return torch.arange(len(self.vocab), device=device)
        if not isinstance(taxon_index, torch.Tensor) and any(isinstance(i, str) for i in taxon_index):
            return self.index(taxon_index)  # ids given instead of rows
        idx = torch.as_tensor(taxon_index, device=device)
        if idx.ndim != 1 or idx.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise ValueError(f"taxon_index must be an integer tensor of shape (q,), got {idx.dtype} {tuple(idx.shape)}")
        if q is not None and idx.shape[0] != q:
            raise ValueError(f"taxon_index has {idx.shape[0]} entries but the data has {q} taxa")
        if idx.numel() and (idx.min() < 0 or idx.max() >= len(self.vocab)):
            raise ValueError(f"taxon_index out of range for a vocabulary of {len(self.vocab)} taxa")
        return idx.long()

    @staticmethod
    def _check_inputs(y: torch.Tensor, m: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """y (B, q) float, m (B, q) -> (y, observed bool). m=None: observed = finite entries of y."""
        if not isinstance(y, torch.Tensor) or y.ndim != 2:
            raise ValueError(f"y must be a tensor of shape (B, q), got {getattr(y, 'shape', type(y))}")
        if not y.is_floating_point():
            y = y.float()
        if m is None:
            obs = torch.isfinite(y)
        else:
            if m.shape != y.shape:
                raise ValueError(f"m must have the shape of y {tuple(y.shape)}, got {tuple(m.shape)}")
            obs = m.to(device=y.device) > 0.5 if m.dtype != torch.bool else m.to(y.device)
        if not torch.isfinite(y[obs]).all():
            raise ValueError("observed entries of y (m = 1) must be finite; flag missing values with m = 0")
        return y, obs

    # -- encoder / decoder -------------------------------------------------------------------

    def encode(
        self, y: torch.Tensor, m: torch.Tensor | None = None, taxon_index: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters: y (B, q), m (B, q) 1 = observed, taxon_index (q,) -> mu, logvar (B, q, d_z)."""
        y, obs = self._check_inputs(y, m)
        idx = self._check_index(taxon_index, y.shape[1])
        obs_f = obs.to(y.dtype)
        y_obs = torch.where(obs, y, torch.zeros_like(y))  # masked values (even NaN) never enter
        feats = torch.stack([y_obs, obs_f, (y_obs > 0).to(y.dtype)], dim=-1)
        if self._hparams["lineage_inputs"]:
            feats = torch.cat([feats, self.lineage_features(y_obs, idx)], dim=-1)
        x = self.enc_in(feats) + self.taxon_embedding(idx)
        for layer in self.enc_layers:
            x = layer(x)
        h = self.enc_norm(x)
        lo, hi = self._hparams["logvar_clamp"]
        return self.mu_head(h), self.logvar_head(h).clamp(lo, hi)

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I); same shape as mu."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(
        self,
        z: torch.Tensor,
        taxon_index: torch.Tensor | None = None,
        *,
        presence: str = "expected",
        generator: torch.Generator | None = None,
        logit_offset: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Latent tokens z (B, q, d_z) -> dict of (B, q) tensors.

        Keys: ``abundance`` (>= 0, value when present), ``presence_logit``, ``presence_prob``,
        ``mean``. With ``presence="expected"`` mean = presence_prob * abundance (E[y]); with
        ``presence="sample"`` a hard mask ``presence_mask`` ~ Bernoulli(presence_prob) is drawn,
        mean = mask * abundance, and gradients pass to presence_prob straight through.
        ``logit_offset`` (q,) is added to the presence logits (a calibration, see
        :meth:`~pydepmicro.nn.diffusion.LatentDiffusion.set_presence_offset`).
        """
        if presence not in _PRESENCE_MODES:
            raise ValueError(f"presence must be one of {_PRESENCE_MODES}, got {presence!r}")
        if z.ndim != 3 or z.shape[-1] != self.d_z:
            raise ValueError(f"z must be (B, q, {self.d_z}), got {tuple(z.shape)}")
        idx = self._check_index(taxon_index, z.shape[1])
        x = self.dec_in(z) + self.taxon_embedding(idx)
        for layer in self.dec_layers:
            x = layer(x)
        h = self.dec_norm(x)
        presence_logit = self.presence_head(h)[..., 0] + self.presence_bias(idx)[:, 0]
        if logit_offset is not None:
            presence_logit = presence_logit + logit_offset
        abundance = F.softplus(self.abundance_head(h)[..., 0] + self.abundance_bias(idx)[:, 0])
        prob = torch.sigmoid(presence_logit)
        out = dict(abundance=abundance, presence_logit=presence_logit, presence_prob=prob)
        if presence == "sample":
            hard = torch.bernoulli(prob.detach(), generator=generator)
            out["presence_mask"] = hard
            out["mean"] = (hard + prob - prob.detach()) * abundance
        else:
            out["mean"] = prob * abundance
        return out

    # -- loss --------------------------------------------------------------------------------

    @property
    def sparsity_weight(self) -> float:
        return self._hparams["sparsity_weight"]

    @staticmethod
    def presence_counts(
        presence_prob: torch.Tensor, y: torch.Tensor, observed: torch.Tensor, uniform: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-taxon counts over observed entries, each (q,): sampled presences, real presences, entries.

        The presence mask is hard, ``1(uniform < presence_prob)`` with ``uniform`` (B, q) ~ U(0, 1)
        (a Bernoulli draw), and passes gradients to ``presence_prob`` straight through. Counts are sums
        over the batch, so sharded training can add them up across processes before
        :meth:`sparsity_loss`.
        """
        obs = observed.to(presence_prob.dtype)
        hard = (uniform < presence_prob.detach()).to(presence_prob.dtype)
        sampled = hard + presence_prob - presence_prob.detach()
        real = ((y > 0) & observed).to(presence_prob.dtype)
        return (sampled * obs).sum(0), (real * obs).sum(0), obs.sum(0)

    @staticmethod
    def sparsity_loss(sampled: torch.Tensor, real: torch.Tensor, n_obs: torch.Tensor) -> torch.Tensor:
        """Squared gap between generated and real sparsity, overall plus the mean over taxa.

        Inputs are the (q,) counts of :meth:`presence_counts`; taxa without observed entries are
        left out. Sparsity = 1 - presence rate, so the gaps are those of the presence rates.
        """
        total = n_obs.sum().clamp_min(1.0)
        overall = (sampled.sum() - real.sum()) / total
        seen = n_obs > 0
        if not seen.any():
            return overall * 0.0
        per_taxon = (sampled[seen] - real[seen]) / n_obs[seen]
        return overall.pow(2) + per_taxon.pow(2).mean()

    def loss(
        self,
        y: torch.Tensor,
        m: torch.Tensor | None,
        decoded: dict[str, torch.Tensor],
        mu: torch.Tensor,
        logvar: torch.Tensor,
        *,
        beta: float | None = None,
    ) -> dict[str, torch.Tensor]:
        """Loss terms (scalars) on observed entries only; see the module docstring.

        Returns ``loss``, ``presence_loss``, ``abundance_loss``, ``kl`` and the diagnostic ``mse``
        (mean squared error of ``decoded["mean"]`` on observed entries; not part of ``loss``).
        """
        y, obs = self._check_inputs(y, m)
        beta = self.beta if beta is None else float(beta)
        obs_f = obs.to(y.dtype)
        n_obs = obs_f.sum().clamp_min(1.0)
        y0 = torch.where(obs, y, torch.zeros_like(y))
        present = (y0 > 0).to(y.dtype)
        bce = F.binary_cross_entropy_with_logits(decoded["presence_logit"], present, reduction="none")
        presence_loss = (bce * obs_f).sum() / n_obs
        abundance_loss = ((decoded["abundance"] - y0) ** 2 * present * obs_f).sum() / n_obs
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1).mean()
        mse = ((decoded["mean"] - y0) ** 2 * obs_f).sum() / n_obs
        loss = (
            self._hparams["presence_weight"] * presence_loss
            + self._hparams["abundance_weight"] * abundance_loss
            + beta * kl
        )
        return dict(loss=loss, presence_loss=presence_loss, abundance_loss=abundance_loss, kl=kl, mse=mse)

    def forward(
        self,
        y: torch.Tensor,
        m: torch.Tensor | None = None,
        taxon_index: torch.Tensor | None = None,
        *,
        sample: bool | None = None,
        beta: float | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Encode, draw z (``sample``: default True in training mode, z = mu in eval), decode, loss.

        Returns the :meth:`decode` dict plus ``mu``, ``logvar``, ``z`` (B, q, d_z) and the
        :meth:`loss` terms.
        """
        mu, logvar = self.encode(y, m, taxon_index)
        if sample is None:
            sample = self.training
        z = self.reparameterize(mu, logvar, generator=generator) if sample else mu
        out = self.decode(z, taxon_index)
        out.update(mu=mu, logvar=logvar, z=z)
        out.update(self.loss(y, m, out, mu, logvar, beta=beta))
        return out
