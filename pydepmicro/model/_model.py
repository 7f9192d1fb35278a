"""DepMicroDiff: the user-facing model class (scvi-tools style: a thin class over a pure torch module).

Workflow::

    model = DepMicroDiff()                      # hyperparameters (keyword-only) = the config
    model.pretrain_vae([read, esca, stad])      # optional: VAE on other tables (paper IV-d)
    model.fit(coad)                             # fine-tune the VAE, find Dep, train the denoiser
    result = model.impute(coad, draws=8)        # ImputationResult; observed entries kept exactly
    model.save("coad_model")                    # config.json + model.safetensors + taxa.tsv
    model = DepMicroDiff.load("coad_model")

Data flow: table -> :mod:`pydepmicro.transforms` (log of relative abundance x 100) -> VAE latents ->
denoiser -> decoder -> table. See :mod:`pydepmicro.nn.diffusion` for the conditioning.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from statistics import NormalDist
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from .. import __version__
from ..dependency._prepare import check_number
from ..errors import InvalidOptionError, InvalidValueError
from ..nn.dat import DependencyAwareTransformer
from ..nn.diffusion import GENERATION_SCALINGS, LatentDiffusion
from ..nn.masks import ar_block_sizes
from ..nn.vae import TaxonVAE
from ..scheduler import DDPMScheduler
from ..table import MicrobiomeTable
from ..transforms import inverse_log_transform
from . import _data, _distributed, _sampling
from ._device import resolve_device, resolve_precision
from ._result import ImputationResult
from ._train import TrainOptions, train_denoiser, train_vae

AR_ORDERS = ("prevalence", "table", "random")
DEPENDENCY_METHODS = ("both", "ftest", "mi", "none")
# impute(closure=True): mean passes that set each sample's observed share (the final pass is the
# imputation itself), and the lowest share allowed, so that a sample whose observed entries the model
# judges negligible cannot blow its imputed counts up without bound
CLOSURE_PASSES = 2
MIN_OBSERVED_SHARE = 0.05
# pretrain_vae's learning rate (see its docstring for the measurement behind it)
PRETRAIN_LR = 3e-3

# fit's calibration of the zeros="auto" threshold (DepMicroDiff._calibrate_dropout): rounds of simulated
# dropouts on every sample with reads, one per sample and round (32 rounds: 1,728 dropouts on COAD's 54
# validation samples, the samples it used until ce2c138; the threshold is noisy with few, as 4 rounds
# of the earlier up-to-30% drops showed: it moved by up to 0.3 with their seed) and the most samples used
# (a bound on its time for large tables)
CALIBRATION_ROUNDS = 32
CALIBRATION_MAX_ROWS = 250
# ... and of the spread (DepMicroDiff._calibrate_spread): rounds of hidden entries (each an imputation
# with draws), the least share of nonzero entries a round may hide (a model trained with max_hide=0 is
# still calibrated), the fewest validation samples it uses (else the training ones), the most samples
# used, and the interval the spread is scaled for (estimate +- 1.645 spread holds 90%)
SPREAD_ROUNDS = 2
SPREAD_MIN_VAL_ROWS = 10
SPREAD_MIN_HIDE = 0.1
SPREAD_MAX_ROWS = 1000
SPREAD_LEVEL = 0.90
SPREAD_Z = NormalDist().inv_cdf((1 + SPREAD_LEVEL) / 2)  # 1.645
# impute's defaults, which the spread is calibrated with
IMPUTE_DRAWS = 5
IMPUTE_SAMPLER = "ddim:10"

# 2 heads (head size 16), not 4: at these widths attention time grows with the number of heads
# (each head scores every token pair), and 2 heads halved COAD training time on the CPU without losing
# accuracy (docs/speed/README.md, "Two heads instead of four")
DEFAULTS: dict[str, Any] = dict(
    d_z=4, vae_d_model=32, vae_layers=2, vae_heads=2, vae_beta=0.001, vae_sparsity_weight=0.0,
    d_model=32, n_layers=2, n_heads=2, dropout=0.0,
    n_blocks=4, ar_alpha=0.9, ar_order="prevalence", dep_mode="open", dependency="none", cond_latent="all",
    target="residual",
    prediction_type="v_prediction", num_train_timesteps=1000,
    metadata="auto", metadata_mode="field", metadata_base=True, text_encoder=None,
    taxonomy_embedding="none", taxonomy_dim=8, lineage_inputs="auto",
    generation_scaling="dimension", scale=100.0, log_base=math.e,
)  # fmt: skip


class DepMicroDiff:
    """Latent diffusion imputer for sparse microbiome tables (Sadia & Cheng, arXiv 2507.23676).

    Parameters (keyword-only; see ``DEFAULTS``)
    ----------
    d_z : int
        Size of the latent token of one taxon.
    vae_d_model, vae_layers, vae_heads, vae_beta
        VAE transformer size and KL weight.
    vae_sparsity_weight : float
        Weight of the VAE's sparsity loss (hard sampled presence masks pulled to the real sparsity,
        overall and per taxon; :meth:`~pydepmicro.nn.vae.TaxonVAE.sparsity_loss`). 0 = off, the
        default: on COAD (P1, aware) a weight of 1 lowered the VAE's imputation from 0.956 to 0.937
        pooled PCC, and generated samples get their sparsity from the decoder's calibration instead
        (:meth:`~pydepmicro.nn.diffusion.LatentDiffusion.calibrate_generation`).
    d_model, n_layers, n_heads, dropout
        Dependency-Aware Transformer size.
    n_blocks : int
        Number of AR blocks (1 = no autoregression); sizes by Algorithm 1 with decay ``ar_alpha``.
        With one block every taxon token already sees every other, so the dependency mask opens
        nothing and Dep has no effect. ``n_blocks=1`` is the fast option: on five TCMA masks it imputed
        as well as 4 blocks with 4x faster draws (docs/benchmark/README.md, "The AR blocks"), but
        it generates worse samples (COAD, 3 seeds: classifier AUROC 0.975 against 0.959).
    ar_order : {"prevalence", "table", "random"}
        Order of taxa in the AR sequence: most prevalent first (default; the best-measured taxa are
        generated first and condition the rarer ones), the table's order, or a seeded random order.
    dep_mode : {"open", "restrict"}
        How the dependency matrix enters the attention mask (:mod:`pydepmicro.nn.masks`).
    dependency : {"none", "both", "ftest", "mi"}
        How Dep is found at :meth:`fit` (:func:`pydepmicro.dependency.dependency_matrix`); "none"
        (the default) leaves it empty, so the AR blocks' mask alone shapes attention. The paper's
        model uses both tests ("both"). Dep showed no effect in any of our measurements: imputation
        on TCMA (dense and selective Dep) and on simulated tables with planted dependencies, and
        generation on COAD (docs/benchmark/README.md, "The dependency mask on its own"); finding it
        costs fit time. :meth:`fit` also takes a precomputed graph (``dep=``).
    target : {"residual", "latent"}
        What the diffusion generates: the correction to the VAE's guess (default) or the latent
        itself; see :class:`pydepmicro.nn.diffusion.LatentDiffusion`.
    cond_latent : {"all", "observed"}
        Condition on the VAE's latents of every taxon (default) or of observed taxa only (paper
        eq. 2); see :class:`pydepmicro.nn.diffusion.LatentDiffusion`.
    prediction_type : {"v_prediction", "epsilon"}
    num_train_timesteps : int
        T of the cosine schedule.
    metadata : {"auto", True, False}
        Condition on the table's sample metadata: "auto" when it has usable columns.
    metadata_mode : {"field", "sample"}
        One condition token per metadata field, or one per sample (:func:`pydepmicro.text.encode_metadata`).
    metadata_base : bool
        Generation only (``generate_fraction > 0``): a sample drawn from nothing starts from a ridge
        regression of the latent on its metadata tokens (penalty by generalised cross-validation)
        instead of one centre for all, and the diffusion models the
        rest (:meth:`~pydepmicro.nn.diffusion.LatentDiffusion.fit_metadata_base`). Classifier-free
        guidance then amplifies only what the denoiser adds. Imputation is unchanged. On by default:
        on 4 simulated tables, generating for metadata the model never saw, it raised the share of
        the tumour-normal effect reproduced on every one (slope 0.21 / -0.04 / 0.11 / -0.12 without
        it, 0.52 / 0.05 / 1.11 / 0.25 with it) at unchanged realism (docs/benchmark/README.md).
    text_encoder : str or None
        Local path or cached hub name of a BERT-family model; None = packaged all-MiniLM-L6-v2.
    taxonomy_embedding : {"none", "poincare"}
        "poincare": embed the table's taxonomy tree in a ``taxonomy_dim``-dimensional Poincare ball
        (:mod:`pydepmicro.nn.hyperbolic`) and add a linear map of each taxon's coordinates to its
        denoiser token; needs the table's taxonomy.
    taxonomy_dim : int
        Dimension of that embedding.
    lineage_inputs : {"auto", True, False}
        For tables whose features are nested taxa (TCMA: a genus and its species): the VAE's encoder
        also reads, for each taxon, the share of its parent's reads that none of the parent's children
        accounts for, whether the parent is present, and its children's total
        (:class:`~pydepmicro.nn.vae.TaxonVAE`); a dropped taxon leaves its reads in its parent. The
        lineage comes from the tables' taxonomy at :meth:`pretrain_vae` and :meth:`fit` and is saved
        with the model. "auto" (default) and True both turn it on; True also warns when no taxon of
        the table has an ancestor among its taxa (the inputs are then 0, as for flat tables). On the
        default since 2026-11-22: on 11 TCMA blind P1 masks it raised the ranking of dropouts above
        true zeros on every one (presence AUROC +0.001 to +0.007) and dropout AUROC by 0.004 on the
        mean, at unchanged pooled and per-taxon PCC (docs/benchmark/README.md, "Lineage inputs").
    generation_scaling : {"dimension", "token"}
        How the denoiser's target is standardised for generation (nothing observed): one scale per
        latent dimension, or each taxon's token centred and scaled on its own over the training samples.
    scale, log_base : float
        The transform: log_base(x / total x scale + 1). The default base is e (BENCHMARK.md).
    device : str
        "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
    precision : {"auto", "fp32", "bf16"}
        "auto": bfloat16 autocast on a GPU that supports it, float32 elsewhere. Like ``device``, a
        property of this session, not of the saved model.
    """

    def __init__(self, *, device: str = "auto", precision: str = "auto", **hparams):
        unknown = set(hparams) - set(DEFAULTS)
        if unknown:
            raise InvalidOptionError(f"unknown option(s): {', '.join(sorted(unknown))}",
                                     hint=f"use some of {', '.join(DEFAULTS)}")
        self.hparams = {**DEFAULTS, **hparams}
        _check_hparams(self.hparams)
        self.device = resolve_device(device)
        self._precision = str(precision)
        self.precision = resolve_precision(precision, self.device)
        self.vae: TaxonVAE | None = None
        self.module: LatentDiffusion | None = None
        self.taxa: pd.Index | None = None
        self.metadata_columns: list[str] = []
        self.encoder_config: dict | None = None
        self._encoder = None
        self.training: dict[str, Any] = {}
        self.history: list[dict] = []
        self.dependency_edges: pd.DataFrame | None = None

    # -- properties ---------------------------------------------------------------------------

    @property
    def is_fitted(self) -> bool:
        return self.module is not None

    @property
    def history_frame(self) -> pd.DataFrame:
        """Training curves: one row per record (phase, step, train/validation losses)."""
        return pd.DataFrame(self.history)

    def __repr__(self) -> str:
        state = (f"fitted on {len(self.taxa)} taxa" if self.is_fitted
                 else "VAE pretrained" if self.vae is not None else "not fitted")
        return f"DepMicroDiff({state}, device={self.device})"

    # -- metadata -----------------------------------------------------------------------------

    def _text_encoder(self):
        from ..text import TextEncoder

        if self._encoder is None:
            if self.encoder_config is not None:
                self._encoder = TextEncoder.from_config(self.encoder_config, device=self.device)
            else:
                self._encoder = TextEncoder(self.hparams["text_encoder"], device=self.device)
        return self._encoder

    def _condition_tokens(self, table: MicrobiomeTable) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        return self._metadata_tokens(table.sample_meta, table.source)

    def _metadata_tokens(self, meta: pd.DataFrame, source=None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Condition tokens (n, c, dim) and their validity (n, c) of a metadata frame (rows = samples)."""
        if not self.metadata_columns:
            return None, None
        from ..text import encode_metadata

        _data.check_metadata_columns(meta, self.metadata_columns, source)
        tokens, valid = encode_metadata(meta, self._text_encoder(), self.metadata_columns,
                                        mode=self.hparams["metadata_mode"])
        return tokens.to(self.device), valid.to(self.device)

    def _choose_metadata(self, table: MicrobiomeTable) -> None:
        from ..text import metadata_columns

        use = self.hparams["metadata"]
        columns = metadata_columns(table.sample_meta) if use in ("auto", True) else []
        if use is True and not columns:
            raise InvalidValueError(
                "metadata conditioning was asked for but the table has no usable metadata columns",
                path=table.source, hint="give sample metadata (--meta) or use metadata='auto'/False",
            )
        self.metadata_columns = [str(c) for c in columns]
        self.encoder_config = self._text_encoder().config if columns else None

    # -- VAE ----------------------------------------------------------------------------------

    def _new_vae(self, vocab: Sequence[str]) -> TaxonVAE:
        h = self.hparams
        return TaxonVAE(vocab=list(vocab), d_z=h["d_z"], d_model=h["vae_d_model"], n_layers=h["vae_layers"],
                        n_heads=h["vae_heads"], beta=h["vae_beta"], sparsity_weight=h["vae_sparsity_weight"],
                        lineage_inputs=h["lineage_inputs"] is not False, log_base=h["log_base"]).to(self.device)

    def _set_lineage(self, vae: TaxonVAE, table: MicrobiomeTable) -> None:
        """The table's lineage into the VAE (lineage_inputs only; True warns when nothing is known)."""
        if self.hparams["lineage_inputs"] is False:
            return
        if table.taxonomy is not None:
            from ..evaluate.masks import lineage_ancestors

            try:
                vae.set_lineage(lineage_ancestors(table.taxonomy, table.taxa_ids))
            except InvalidOptionError as err:  # no lineage columns: nothing to set
                if self.hparams["lineage_inputs"] is True:
                    warnings.warn(f"lineage_inputs: {err}", stacklevel=3)
        known = vae.ancestors
        if self.hparams["lineage_inputs"] is True and not any(known[str(t)] for t in table.taxa_ids):
            warnings.warn(f"lineage_inputs is on but no taxon of {table.source or 'the table'} has a known ancestor "
                          "in it: the lineage inputs are all 0 (give a taxonomy with lineage columns)", stacklevel=3)

    def pretrain_vae(
        self,
        tables: Sequence[MicrobiomeTable],
        *,
        steps: int = 2000,
        batch_size: int = 64,
        lr: float = PRETRAIN_LR,
        val_fraction: float = 0.1,
        seed: int = 0,
        progress: bool = True,
    ) -> "DepMicroDiff":
        """Train the VAE on several tables (e.g. the other cancers for a target cancer, paper IV-d).

        The vocabulary is the union of their taxa; :meth:`fit` later transfers the weights of the
        taxa the target shares (by taxon id) and fine-tunes. Returns self.

        ``lr`` defaults to :data:`PRETRAIN_LR` (3e-3). At 1e-3 the loss sat on a plateau whose length
        depended on the seed: after 2000 steps on the TCMA pools the validation loss was 0.33-0.48
        with seed 0 and 0.56-0.62 with seed 1, and the models fine-tuned from the seed-1 VAEs imputed
        far worse (blind P1, median per-taxon PCC 0.31-0.70 against 0.83-0.97; on one COAD mask the
        pretraining seed, not the fit's, decided it). At 3e-3 both seeds left the plateau by step 800
        and ended at 0.25-0.28 (docs/benchmark/README.md, "Pretraining and dropouts").
        """
        if isinstance(tables, MicrobiomeTable):
            tables = [tables]
        if not tables:
            raise InvalidValueError("pretrain_vae needs at least one table", hint="pass a list of tables")
        _seed_everything(seed)
        dist, self.device = _distributed.setup(self.device)  # torchrun: one process per device
        progress = progress and (dist is None or dist.rank == 0)
        vocab = list(dict.fromkeys(str(t) for table in tables for t in table.taxa_ids))
        vae = self._new_vae(vocab)
        datasets = []
        for k, table in enumerate(tables):
            self._set_lineage(vae, table)
            rows = _data.training_rows(table, what=f"pretraining table {k + 1} ({table.source or 'in memory'})")
            prep = _data.prepare(table, scale=self.hparams["scale"], log_base=self.hparams["log_base"])
            train, val = _split(rows, val_fraction, seed + k)
            datasets.append((prep.y.to(self.device), prep.observed.to(self.device), vae.index(table.taxa_ids),
                             train, val))
        for y, obs, index, train, _ in datasets:
            vae.init_from_data(y[train], obs[train], index)
        self.precision = resolve_precision(self._precision, self.device)  # torchrun may have moved the device
        options = TrainOptions(steps=steps, batch_size=batch_size, lr=lr, precision=self.precision,
                               log_base=self.hparams["log_base"])
        start = time.perf_counter()
        try:
            history = train_vae(vae, datasets, options, seed=seed, progress=progress, label="VAE (pretraining)",
                                dist=dist)
        finally:
            _distributed.teardown()
        self.vae = vae
        self.history = [dict(r, phase="pretrain") for r in history]
        self.training["pretrain"] = {**options.as_dict(), "seed": seed, "val_fraction": val_fraction,
                                     "tables": [t.source or "in memory" for t in tables],
                                     "n_samples": [t.n_samples for t in tables],
                                     "seconds": round(time.perf_counter() - start, 2),
                                     **({} if dist is None else {"world_size": dist.world_size})}
        return self

    # -- fit ----------------------------------------------------------------------------------

    def fit(
        self,
        table: MicrobiomeTable,
        *,
        vae_steps: int = 2000,
        dat_steps: int = 1000,
        batch_size: int = 64,
        vae_lr: float = 1e-3,
        dat_lr: float = 5e-4,
        max_hide: float = 0.3,
        max_drop: float = 0.3,
        hide_zeros: bool = False,
        generate_fraction: float = 0.1,
        val_fraction: float = 0.1,
        dep=None,
        library_size=None,
        seed: int = 0,
        progress: bool = True,
    ) -> "DepMicroDiff":
        """Fit on ``table``: fine-tune (or train) the VAE, find Dep, train the denoiser. Returns self.

        Parameters
        ----------
        vae_steps, dat_steps : int
            Optimiser steps of the two phases.
        max_hide, max_drop, hide_zeros
            Training-time masking (:func:`pydepmicro.model._data.corrupt`): per sample, up to
            ``max_hide`` of the nonzero entries are hidden (flagged missing) and up to ``max_drop``
            set to zero without telling the model, so it learns both regimes.
        generate_fraction : float
            Share of training samples hidden entirely, so the model also learns to draw whole samples
            (:meth:`generate`); the denoiser sees half of them without metadata (unconditional
            generation). 0 = a model that cannot generate; 1 = a generation model, whose denoiser
            spends all its training on whole samples (it cannot impute). On COAD a generation model
            drew far more realistic samples than the default share (README, "Synthetic samples").
        val_fraction : float
            Samples held out for the validation curves (none when the table has fewer than 20).
        dep : DependencyResult or bool array (q, q), optional
            A precomputed Dep (rows = dependent taxon) instead of running the tests that the
            ``dependency`` hyperparameter names.
        library_size : float or array (n_samples,), optional
            Each sample's total reads, missing entries included, when known (as for :meth:`impute`):
            samples with missing entries are then trained on relative to their whole, not to their
            observed total.
        seed : int
            Seeds torch and numpy: on the CPU the same seed gives the same model.
        """
        _data.check_table(table)
        rows = _data.training_rows(table)
        check_number("max_hide", max_hide, 0.0, 1.0)
        check_number("max_drop", max_drop, 0.0, 1.0)
        check_number("generate_fraction", generate_fraction, 0.0, 1.0)
        _seed_everything(seed)
        dist, self.device = _distributed.setup(self.device)  # torchrun: one process per device
        progress = progress and (dist is None or dist.rank == 0)
        try:
            self._fit(table, rows, vae_steps=vae_steps, dat_steps=dat_steps, batch_size=batch_size, vae_lr=vae_lr,
                      dat_lr=dat_lr, max_hide=max_hide, max_drop=max_drop, hide_zeros=hide_zeros,
                      generate_fraction=generate_fraction, val_fraction=val_fraction, dep=dep, library_size=library_size,
                      seed=seed, progress=progress, dist=dist)
        finally:
            _distributed.teardown()
        return self

    def _fit(self, table, rows, *, vae_steps, dat_steps, batch_size, vae_lr, dat_lr, max_hide, max_drop, hide_zeros,
             generate_fraction, val_fraction, dep, library_size, seed, progress, dist) -> None:
        start = time.perf_counter()
        h = self.hparams
        self.precision = resolve_precision(self._precision, self.device)  # torchrun may have moved the device
        taxa = pd.Index([str(t) for t in table.taxa_ids])
        share = None if library_size is None else _data.observed_share(table, library_size)
        prep = _data.prepare(table, scale=h["scale"], log_base=h["log_base"], observed_share=share)
        y, obs = prep.y.to(self.device), prep.observed.to(self.device)
        train_rows, val_rows = _split(rows, val_fraction, seed)

        self._choose_metadata(table)
        cond, cond_valid = self._condition_tokens(table)
        dep = self._dependency(table.subset(samples=table.sample_ids[rows]), taxa, dep, seed)

        # -- VAE: transfer from the pretrained one when there is one, then (fine-)tune -----------
        # the VAE sees no generation rows: generating needs no encoding of an empty sample (the condition
        # latent of "nothing observed" only has to be fixed), so its capacity stays on imputation
        vae_opts = TrainOptions(steps=vae_steps, batch_size=batch_size, lr=vae_lr, max_hide=max_hide,
                                max_drop=max_drop, hide_zeros=hide_zeros, precision=self.precision,
                                log_base=h["log_base"])
        vae, index, shared, history = self._fit_vae(table, y, obs, train_rows, val_rows, vae_opts, seed=seed,
                                                    progress=progress, dist=dist)

        # -- denoiser ------------------------------------------------------------------------------
        perm = self._ar_order(prep, train_rows, seed)
        sizes = ar_block_sizes(len(taxa), h["ar_alpha"], min(h["n_blocks"], len(taxa)))
        n_cond = 0 if cond is None else cond.shape[-1]
        taxonomy = self._taxonomy_features(table, taxa, seed)
        dat = DependencyAwareTransformer(
            d_z=h["d_z"], d_model=h["d_model"], n_layers=h["n_layers"], n_heads=h["n_heads"], dropout=h["dropout"],
            d_cond=n_cond, d_token_cond=h["d_z"] + 2, n_taxa=len(taxa), dep_mode=h["dep_mode"],
            d_taxonomy=0 if taxonomy is None else taxonomy.shape[1],
        )
        if taxonomy is not None:
            dat.set_taxonomy_features(torch.as_tensor(taxonomy, dtype=torch.float32))
        module = LatentDiffusion(vae, dat, vae_index=index.cpu(), ar_perm=torch.as_tensor(perm),
                                 block_sizes=sizes, dep=torch.as_tensor(dep),
                                 cond_latent=h["cond_latent"], target=h["target"],
                                 generation_scaling=h["generation_scaling"]).to(self.device)
        module.set_latent_stats(y[train_rows], obs[train_rows])
        dat_opts = TrainOptions(steps=dat_steps, batch_size=batch_size, lr=dat_lr, max_hide=max_hide,
                                max_drop=max_drop, hide_zeros=hide_zeros, generate_fraction=generate_fraction,
                                precision=self.precision, log_base=h["log_base"], metadata_base=h["metadata_base"])
        history += train_denoiser(module, y, obs, cond, cond_valid, train_rows, val_rows, self.scheduler(),
                                  dat_opts, seed=seed, progress=progress, dist=dist)
        module.calibrate_generation(y[train_rows], obs[train_rows])

        self.vae, self.module, self.taxa = vae, module, taxa
        library_sizes = np.asarray(prep.library_sizes)
        train_lib = library_sizes[train_rows]
        self.history = [r for r in self.history if r.get("phase") == "pretrain"] + history
        self.training.update(fit={
            "vae": vae_opts.as_dict(), "denoiser": dat_opts.as_dict(), "seed": seed, "val_fraction": val_fraction,
            "n_train": len(train_rows), "n_val": len(val_rows), "table": table.source or "in memory",
            "pretrained_taxa_shared": shared, "dependency_edges": int(np.asarray(dep).sum()),
            "metadata_base": getattr(module, "metadata_base_fit", None),
            "seconds": round(time.perf_counter() - start, 2), "device": str(self.device),
            "library_size_given": library_size is not None,
            "generate_fraction": generate_fraction,
            # percentiles 0..100 of the training library sizes: generate() draws read depths from them
            "library_size_percentiles": [round(float(v), 3) for v in np.percentile(train_lib, np.arange(101))],
            # ... and per richness bin (y is 0 where missing): generated samples take depths from real
            # ones as rich as they are
            "library_size_by_richness": _sampling.depth_by_richness(train_lib,
                                                                    (prep.y[train_rows] > 0).sum(1).numpy()),
            # share of the table's samples without a single read (never trained on): generate() draws
            # that share of empty samples, as real tables have them (TCMA STAD: 39% after decontamination)
            "empty_sample_fraction": round(float(np.mean(library_sizes <= 0)), 6),
            **({} if dist is None else {"world_size": dist.world_size}),
        })
        if generate_fraction < 1.0:  # a generation model cannot impute
            # the threshold on every sample with reads (trained-on ones included), the spread on held-out ones
            self.training["fit"]["dropout_threshold"] = {**self._calibrate_dropout(table, rows, seed=seed),
                                                         "samples": "all"}
            held_out = _spread_samples(train_rows, val_rows)
            self.training["fit"]["spread_scale"] = self._calibrate_spread(table, held_out, max_hide=max_hide, seed=seed,
                                                                          library_size=library_size)

    def _fit_vae(self, table: MicrobiomeTable, y: torch.Tensor, obs: torch.Tensor, train_rows: np.ndarray,
                 val_rows: np.ndarray, options: TrainOptions, *, seed: int, progress: bool = False, dist=None):
        """Fit's VAE phase: a VAE over the table's taxa that takes the pretrained VAE's weights (when
        there is one) and the table's lineage, trained on ``train_rows`` of y, obs (n, q).

        Returns (vae, taxon index (q,), number of taxa shared with the pretrained VAE, loss history).
        Also used on its own by inst/scripts/check_vae_ranking.py."""
        taxa = [str(t) for t in table.taxa_ids]
        pretrained, vae = self.vae, self._new_vae(taxa)
        shared = vae.transfer_from(pretrained) if pretrained is not None else 0
        self._set_lineage(vae, table)
        index = vae.index(taxa)
        vae.init_from_data(y[train_rows], obs[train_rows], index)
        history = train_vae(vae, [(y, obs, index, train_rows, val_rows)], options, seed=seed, progress=progress,
                            dist=dist)
        return vae, index, shared, history

    def _dependency(self, table: MicrobiomeTable, taxa: pd.Index, dependency, seed: int) -> np.ndarray:
        q = len(taxa)
        if dependency is not None:
            if hasattr(dependency, "attention_dep"):
                self.dependency_edges = dependency.edges
                return dependency.attention_dep(taxa)
            dep = np.asarray(dependency, dtype=bool)
            if dep.shape != (q, q):
                raise InvalidValueError(f"dependency must be a ({q}, {q}) boolean matrix, got {dep.shape}")
            return dep
        method = self.hparams["dependency"]
        if method == "none":
            return np.zeros((q, q), dtype=bool)
        from ..dependency import dependency_matrix
        from ..errors import TooFewSamplesError

        try:
            result = dependency_matrix(table, method=method, seed=seed)
        except TooFewSamplesError as exc:
            warnings.warn(f"no dependency mask: {exc}", stacklevel=3)
            return np.zeros((q, q), dtype=bool)
        self.dependency_edges = result.edges
        return result.attention_dep(taxa)

    def _taxonomy_features(self, table: MicrobiomeTable, taxa: pd.Index, seed: int) -> np.ndarray | None:
        """Tangent-space Poincare coordinates of the taxa (q, taxonomy_dim), or None when not asked for."""
        if self.hparams["taxonomy_embedding"] == "none":
            return None
        from ..evaluate._tree import tree_from_taxonomy
        from ..nn.hyperbolic import log_map_zero, poincare_embedding

        if table.taxonomy is None:
            raise InvalidValueError("taxonomy_embedding='poincare' needs the table's taxonomy", path=table.source,
                                    hint="give a table with taxonomy (BIOM / phyloseq tax_table) or use "
                                         "taxonomy_embedding='none'")
        tree = tree_from_taxonomy(table.taxonomy, list(taxa))
        return log_map_zero(poincare_embedding(tree, list(taxa), dim=self.hparams["taxonomy_dim"], seed=seed))

    def _ar_order(self, prep: _data.Prepared, rows: np.ndarray, seed: int) -> np.ndarray:
        order = self.hparams["ar_order"]
        q = prep.y.shape[1]
        if order == "table":
            return np.arange(q)
        if order == "random":
            return np.random.default_rng(seed).permutation(q)
        obs = prep.observed[rows].numpy()
        present = (prep.y[rows].numpy() > 0) & obs
        prevalence = present.sum(0) / np.maximum(obs.sum(0), 1)
        return np.argsort(-prevalence, kind="stable")

    def scheduler(self) -> DDPMScheduler:
        """The training noise schedule (cosine, T steps)."""
        return DDPMScheduler(num_train_timesteps=self.hparams["num_train_timesteps"],
                             prediction_type=self.hparams["prediction_type"])

    # -- impute -------------------------------------------------------------------------------

    def impute(
        self,
        table: MicrobiomeTable,
        *,
        draws: int = IMPUTE_DRAWS,
        sampler: str = IMPUTE_SAMPLER,
        estimate: str = "auto",
        zeros: str = "auto",
        dropout_threshold: float | None = None,
        seed: int = 0,
        batch_size: int = 512,
        align: bool = False,
        keep_draws: bool = False,
        closure: bool = True,
        library_size=None,
        progress: bool = True,
    ) -> ImputationResult:
        """Impute ``table``: missing entries always, zeros by the ``zeros`` policy.

        Parameters
        ----------
        draws : int
            Samples drawn per sample of the table; their sd is the spread (0: no draws, no spread;
            needs ``estimate`` "auto", "vae" or "mean").
        estimate : {"auto", "vae", "mean", "draws"}
            The point estimate. ``"vae"`` decodes the VAE's posterior mean given the observed
            entries: the latent the denoiser corrects. ``"mean"`` decodes the denoiser's estimate
            of the latent's conditional mean (one deterministic pass per AR block from the last
            timestep, see :meth:`~pydepmicro.nn.diffusion.LatentDiffusion.predict_mean`).
            ``"draws"`` averages the draws. ``"auto"`` (default) fills missing (NaN) entries from the
            VAE's pass and judges and fills zeros from the denoiser's: on TCMA's selection masks the
            VAE's pass was the better one for flagged missing entries, the denoiser's for the
            dropouts among zeros (README, "Estimate, draws and samplers"). In every case the draws
            give the spread.
        sampler : str
            ``"ddim:K"`` (DDIM, K steps; default 10), ``"full"`` (all T DDPM steps),
            ``"fractional:n"`` (every n-th step, n in 2, 3, 4, 20, ...), ``"adaptive"`` (more steps
            for early AR blocks; with one block, all T steps), ``"ddpm:K"`` (DDPM over K evenly
            spaced steps).
        zeros : {"auto", "keep", "impute"}
            ``keep``: zeros are true absences, only missing (NaN) entries are filled. ``impute``:
            every zero is replaced by the model's estimate. ``auto``: a zero is replaced only when the
            model's presence probability exceeds ``dropout_threshold`` (a dropout), by the abundance
            the model expects given presence.
        dropout_threshold : float in (0, 1), optional
            Default: the threshold calibrated when the model was fitted, on simulated dropouts of its
            samples (:meth:`dropout_threshold`; 0.5 for ``estimate="draws"`` and older models).
            Higher: fewer zeros filled, fewer true absences filled by mistake.
        seed : int
            Seeds the draws: the same model, table and seed give the same output on the CPU.
        batch_size : int
            Sequences (samples x draws) per forward pass: bounds memory.
        align : bool
            Accept a table whose taxa differ from the model's (see :func:`._data.align_taxa`).
        keep_draws : bool
            Return every draw in ``result.draws``.
        closure : bool
            Treat missing entries as part of each sample's composition (default). A missing entry's
            reads are not in the observed total, so relative abundances over the observed entries
            alone overstate every observed share when a large entry is missing, and counts written
            back with the observed total understate the missing one. With ``closure``, the observed
            shares are scaled so that observed plus imputed sum to the whole, by a fixed point of
            the mean pass (:data:`CLOSURE_PASSES` passes), and imputed counts are written with the
            completed sample's total. Zeros replaced as dropouts (``zeros`` "auto" or "impute") are
            closed the same way: the model puts each back as its share of the complete sample, and the
            observed reads are the rest (models fitted with :attr:`drops_renormalized`). ``False``:
            relative to the observed entries only, as before this option. It changes nothing for a
            table without missing entries when no zero is replaced.
        library_size : float or array (n_samples,), optional
            Each sample's total reads, missing entries included, when known (e.g. from the
            sequencing run, or 100 for a table of percentages): the observed share is then known
            rather than estimated, and ``closure`` is not needed. Must be at least the observed total.
            A sample without observed reads but with missing entries is imputed when its total is
            given (from what the model learnt of whole samples and from which of its entries are
            zero); without the total it is left unchanged, as a sample without reads always is.
        """
        self._check_fitted()
        if self.training.get("fit", {}).get("generate_fraction") == 1.0:
            raise InvalidValueError("this is a generation model (trained with generate_fraction=1): its denoiser never "
                                    "learnt to impute", hint="impute with a model trained with generate_fraction < 1 "
                                                             "(default 0.1)")
        _data.check_table(table)
        zeros = _data.parse_zeros_policy(zeros)
        estimate = _sampling.parse_estimate(estimate)
        check_number("draws", draws, 0 if estimate in _sampling.PASS_ESTIMATES else 1, integer=True)
        if keep_draws and not draws:
            raise InvalidOptionError("keep_draws needs draws >= 1", hint="set draws, e.g. draws=5")
        check_number("batch_size", batch_size, 1, integer=True)
        if dropout_threshold is None:
            dropout_threshold = self.dropout_threshold(estimate)
        elif not 0.0 < dropout_threshold < 1.0:
            raise InvalidOptionError(f"dropout_threshold must lie in (0, 1), got {dropout_threshold}",
                                     hint="leave it out to use the threshold calibrated when the model was fitted")
        schedulers = _sampling.schedulers_for(sampler, self.hparams, len(self.module.block_sizes))
        alignment = _data.align_taxa(table, self.taxa, align=align)
        h = self.hparams
        prep = _data.prepare(table, scale=h["scale"], log_base=h["log_base"])
        cond, cond_valid = self._condition_tokens(table)
        empty = prep.library_sizes <= 0
        unseen = np.zeros_like(empty)
        if library_size is not None:
            # nothing observed but zeros, and the total known (e.g. every nonzero entry masked): the model
            # imputes the missing entries from which entries are zero and what it learnt of whole samples
            unseen = empty & np.isnan(table.counts).any(axis=1)
            empty = empty & ~unseen
        if empty.any():
            warnings.warn(f"{int(empty.sum())} sample(s) have no observed counts and are left unchanged "
                          f"(e.g. {', '.join(map(str, table.sample_ids[empty][:3]))})", stacklevel=2)
        start = time.perf_counter()
        if library_size is not None:
            share = _data.observed_share(table, library_size)
            prep = _data.prepare(table, scale=h["scale"], log_base=h["log_base"], observed_share=share)
            prep.library_sizes[unseen] = _data.library_sizes(library_size, table.n_samples)[unseen]
        elif closure and np.isnan(table.counts[~empty]).any():
            share = self._observed_shares(table, alignment, cond, cond_valid, schedulers, empty, batch_size,
                                          _sampling.VALUE_PASS[estimate])
            prep = _data.prepare(table, scale=h["scale"], log_base=h["log_base"], observed_share=share)
        est = self._estimates(prep, alignment, cond, cond_valid, schedulers, empty, batch_size, draws=draws,
                              seed=seed, estimate=estimate, keep_draws=keep_draws, progress=progress)
        est["spread"] = est["spread"] * self.spread_scale()
        close_drops = closure and self.drops_renormalized  # a dropout's reads are in no total, known or not
        result = _sampling.assemble(table, prep, alignment, est, zeros=zeros, threshold=dropout_threshold,
                                    scale=h["scale"], log_base=h["log_base"], skip=empty,
                                    min_observed_share=MIN_OBSERVED_SHARE if close_drops else None)
        result.options.update(draws=draws, sampler=sampler, estimate=estimate, zeros=zeros, dropout_threshold=dropout_threshold,
                              spread_scale=self.spread_scale(),
                              closure=closure and library_size is None, library_size_given=library_size is not None,
                              dropouts_closed=close_drops,
                              n_samples_unchanged=int(empty.sum()), n_samples_from_total=int(unseen.sum()),
                              seed=seed, align=align, seconds=round(time.perf_counter() - start, 2),
                              device=str(self.device), precision=self.precision, pydepmicro_version=__version__)
        return result

    def _observed_shares(self, table, alignment, cond, cond_valid, schedulers, skip, batch_size, estimate
                         ) -> np.ndarray:
        """Share of each sample's reads held by its observed entries (n,), for ``impute(closure=True)``.

        Fixed point: start from 1 (the observed entries are everything), impute the missing entries
        with the deterministic pass ``estimate`` ("vae" or "mean"), set share = 1 - (their relative
        abundance) / scale, and repeat with the observed entries scaled to that share. On TCMA P1
        masks one pass already settles it."""
        h = self.hparams
        missing = np.isnan(table.counts)
        share = np.ones(table.n_samples)
        for _ in range(CLOSURE_PASSES):
            prep = _data.prepare(table, scale=h["scale"], log_base=h["log_base"], observed_share=share)
            est = self._estimates(prep, alignment, cond, cond_valid, schedulers, skip, batch_size, draws=0, seed=0,
                                  estimate=estimate, keep_draws=False, progress=False)
            value = _sampling.to_table_order(est["value"], alignment, table.n_taxa)
            imputed_rel = inverse_log_transform(np.where(missing, value, np.nan), base=h["log_base"])
            share = np.clip(1.0 - np.nansum(imputed_rel, axis=1) / h["scale"], MIN_OBSERVED_SHARE, 1.0)
        return share

    def _calibrate_dropout(self, table: MicrobiomeTable, rows: np.ndarray, *, seed: int) -> dict:
        """Thresholds of ``impute(zeros="auto")`` on the presence probability, per deterministic pass.

        Dropouts are simulated on the samples ``rows`` of ``table`` (fit passes every sample with reads,
        trained-on ones included, at most :data:`CALIBRATION_MAX_ROWS`: on the TCMA selection masks that
        ranked dropouts better than the ~55 validation samples alone; README, "The dropout threshold is
        calibrated at fit"): in each of :data:`CALIBRATION_ROUNDS` rounds every sample with two or more
        nonzero entries loses one of them, set to zero as a dropout would, and both passes ("vae",
        "mean") give each zero its presence probability. The samples' own zeros are scored in the
        samples as they are. Both are scored in samples as impute will see them, or within one entry of
        that: scored beside dropouts in a sample that had lost up to 30% more, the own zeros looked more
        like dropouts than a table's zeros do (TCMA blind P1 masks: at the same threshold 7-12% of them
        above it against 1-3% of the mask's true zeros), and the dropouts themselves were easier to
        tell than real ones (COAD seed-10 mask, the validation samples: median presence probability
        0.92 against the mask's dropouts' 0.84), which set the threshold too high (README, "The dropout
        threshold is calibrated at fit").
        The threshold maximises Youden's J: the share of the dropped entries above it minus the share of
        the samples' own zeros above it, a balance that does not depend on how many of a table's zeros
        are dropouts. On TCMA the fixed 0.5 filled 40% of COAD's true zeros from the denoiser's pass.
        Returns {"vae": float, "mean": float, "rows": int, "rounds": int, "dropouts": int, "seconds": float}.
        """
        start = time.perf_counter()
        rows = _calibration_rows(rows, np.random.default_rng(seed), CALIBRATION_MAX_ROWS)
        rng = np.random.default_rng([seed, 1])
        sub = table.subset(samples=table.sample_ids[rows])
        counts = sub.counts

        def presence(counts_in: np.ndarray, name: str, round_: int) -> np.ndarray:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self.impute(sub.with_counts(counts_in), draws=0, estimate=name, zeros="keep", seed=round_,
                                   progress=False).presence_prob

        as_they_are = {name: presence(counts, name, 0) for name in ("vae", "mean")}
        negative = (counts == 0) & (np.nansum(counts, axis=1) > 0)[:, None]
        dropped_probs: dict[str, list] = {"vae": [], "mean": []}
        for round_ in range(CALIBRATION_ROUNDS):
            positive = _one_lost_entry(counts, rng)
            dropped = np.where(positive, 0.0, counts)
            for name in dropped_probs:
                dropped_probs[name].append(presence(dropped, name, round_)[positive])
        n_dropped = sum(len(p) for p in dropped_probs["vae"])
        # the own zeros once: J compares shares, so repeating them every round would change nothing
        y = np.r_[np.ones(n_dropped), np.zeros(int(negative.sum()))]
        out = {}
        for name, parts in dropped_probs.items():
            score = np.concatenate([*parts, as_they_are[name][negative]])
            out[name] = _sampling.DEFAULT_DROPOUT_THRESHOLD
            if 0 < y.sum() < len(y):
                best = youden_threshold(y, score)
                if best is not None:
                    out[name] = round(best, 6)
        return {**out, "rows": int(len(rows)), "rounds": CALIBRATION_ROUNDS, "dropouts": int(y.sum()),
                "seconds": round(time.perf_counter() - start, 2)}

    def _calibrate_spread(self, table: MicrobiomeTable, rows: np.ndarray, *, max_hide: float, seed: int,
                          library_size=None) -> dict:
        """Factor on the draws' sd such that estimate +- 1.645 factor sd holds 90% of held-out truths.

        In each of :data:`SPREAD_ROUNDS` rounds every sample of ``rows`` (fit: the validation samples)
        has a share ~ U(0, max(max_hide, 0.1)) of its nonzero entries flagged missing, and impute (its
        defaults: :data:`IMPUTE_DRAWS` draws, :data:`IMPUTE_SAMPLER`) fills them. The factor is the 90%
        quantile of |truth - estimate| / sd over those entries, divided by 1.645. Unscaled, the band
        held 46-64% of the hidden truths of TCMA P1 masks, not 90% (README, "The spread is calibrated
        at fit"). ``library_size``: fit's, when it was given the totals (impute is then given them
        too). Returns {"factor": float, "entries": int, "draws": int, "sampler": str}.
        """
        h = self.hparams
        rows = _calibration_rows(rows, np.random.default_rng(seed + 1), SPREAD_MAX_ROWS)
        gen = torch.Generator().manual_seed(seed + 1)
        sub = table.subset(samples=table.sample_ids[rows])
        counts = sub.counts
        totals = None if library_size is None else _data.library_sizes(library_size, table.n_samples)[rows]
        share = None if totals is None else _data.observed_share(sub, totals)
        truth = _data.prepare(sub, scale=h["scale"], log_base=h["log_base"], observed_share=share).values
        ratios = []
        for round_ in range(SPREAD_ROUNDS):
            hide = _lost_entries(counts, max_hide, gen)
            hidden = np.where(hide, np.nan, counts)
            hide &= (np.nansum(hidden, axis=1) > 0)[:, None]  # a sample with nothing left is not imputed
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = self.impute(sub.with_counts(hidden), draws=IMPUTE_DRAWS, sampler=IMPUTE_SAMPLER,
                                     zeros="keep", seed=round_, library_size=totals, progress=False)
            spread = result.spread[hide] / result.options["spread_scale"]  # the draws' own sd
            ok = spread > 0
            ratios.append(np.abs(truth[hide] - result.values[hide])[ok] / spread[ok])
        ratios = np.concatenate(ratios)
        factor = float(np.quantile(ratios, SPREAD_LEVEL) / SPREAD_Z) if len(ratios) else 1.0
        return {"factor": round(factor, 6), "entries": int(len(ratios)), "draws": IMPUTE_DRAWS,
                "sampler": IMPUTE_SAMPLER}

    def spread_scale(self) -> float:
        """The factor impute multiplies the draws' sd by (1.0 for models saved before the calibration)."""
        return float(self.training.get("fit", {}).get("spread_scale", {}).get("factor", 1.0))

    @property
    def drops_renormalized(self) -> bool:
        """Whether fit trained with dropouts taken out of the sample (``_data.corrupt`` ``log_base``), so
        that impute puts a replaced zero back as its share of the complete sample (False for models
        saved before)."""
        return self.training.get("fit", {}).get("vae", {}).get("log_base") is not None

    def dropout_threshold(self, estimate: str = "auto") -> float:
        """The presence-probability threshold ``impute(zeros="auto")`` uses by default with ``estimate``:
        the one calibrated at fit for the pass that gives that estimate's presence probabilities
        (``"auto"``: the denoiser's), else 0.5 (``"draws"``; models saved before the
        calibration)."""
        estimate = _sampling.parse_estimate(estimate)
        calibrated = self.training.get("fit", {}).get("dropout_threshold", {})
        key = _sampling.ZEROS_PASS[estimate]  # None for "draws"
        return float(calibrated.get(key, _sampling.DEFAULT_DROPOUT_THRESHOLD))

    def _estimates(self, prep, alignment, cond, cond_valid, schedulers, skip, batch_size, *, draws, seed, estimate,
                   keep_draws, progress) -> dict[str, np.ndarray]:
        """The sampler over the prepared table (:func:`._sampling.draw_estimates`), model taxon order."""
        y, obs = _data.aligned_inputs(prep, alignment)
        return _sampling.draw_estimates(self.module, y, obs, cond, cond_valid, schedulers, draws=draws, seed=seed,
                                        batch_size=batch_size, device=self.device, progress=progress,
                                        keep_draws=keep_draws, skip=torch.from_numpy(skip), estimate=estimate,
                                        mean_scheduler=self.scheduler(), precision=self.precision)

    # -- generate -------------------------------------------------------------------------------

    def generate(
        self,
        n: int | None = None,
        *,
        meta: pd.DataFrame | None = None,
        sampler: str = "ddim:50",
        library_size=None,
        empty_fraction: float | None = None,
        seed: int = 0,
        batch_size: int = 512,
        progress: bool = True,
        guidance: float = 1.0,
    ) -> MicrobiomeTable:
        """Draw synthetic samples: a table of counts (n samples x the model's taxa).

        Each sample is generated with nothing observed: the denoiser draws the latent tokens block by
        block (AR), the decoder draws a hard 0/1 presence mask per taxon (Bernoulli of its presence
        probability, so the sparsity is sampled, not thresholded) and the abundance of the present
        taxa; relative abundances are scaled to a read depth (:func:`._sampling.to_counts`).

        Parameters
        ----------
        n : int
            Number of samples (may be left out when ``meta`` is given: one per row).
        meta : DataFrame, optional
            Metadata of the samples to generate (index = their ids, columns as in training): each
            sample is conditioned on its row. Without it the samples are unconditional.
        sampler : str
            As in :meth:`impute` (default ``"ddim:50"``: whole samples need more steps than a correction).
        library_size : int, array (n,) or None
            Read depth of each sample; None draws each sample's depth from the training samples with
            about as many present taxa (depth and richness go together in real tables).
        empty_fraction : float in [0, 1), optional
            Share of samples drawn empty (no reads at all). None: the share of empty samples in the
            training table (``training["fit"]["empty_sample_fraction"]``; 0 for model folders saved
            before it was recorded). Each sample is empty independently with this probability; the other
            samples are the ones ``empty_fraction=0`` gives with the same seed.
        seed : int
            Same model, arguments and seed give the same table on the CPU.
        guidance : float >= 0
            Classifier-free guidance on ``meta`` (:meth:`~pydepmicro.nn.diffusion.LatentDiffusion.sample`):
            1 = plain conditioning (default), above 1 amplifies the metadata's effect at twice the
            sampling time, 0 ignores it. Only with ``meta``. With ``metadata_base`` (the default),
            guidance acts on what the denoiser adds to the metadata base; the base itself always
            applies (for samples without metadata, leave ``meta`` out).
        """
        self._check_fitted()
        check_number("guidance", guidance, 0.0)
        if float(guidance) != 1.0 and (meta is None or not self.metadata_columns):
            raise InvalidOptionError("guidance needs metadata to guide by: conditional generation (meta=) "
                                     "from a model trained with metadata",
                                     hint="give meta (--meta), or leave guidance at 1")
        if not self.training.get("fit", {}).get("generate_fraction"):
            raise InvalidValueError("this model was trained without generation examples, so it cannot generate",
                                    hint="train it again: fit(..., generate_fraction=0.1), the default since pydepmicro 0.2 "
                                         "(--generate-fraction)")
        n, ids = _generation_size(n, meta)
        check_number("batch_size", batch_size, 1, integer=True)
        _seed_everything(seed)
        schedulers = _sampling.schedulers_for(sampler, self.hparams, len(self.module.block_sizes))
        if not schedulers:
            raise InvalidOptionError("the 'vae' sampler cannot generate", hint="use ddim:K, ddpm:K, full, ...")
        given_depths = self._check_library_size(n, library_size)
        empty = self._empty_samples(n, empty_fraction, seed)
        cond = cond_valid = None
        if self.metadata_columns:
            frame = meta if meta is not None else pd.DataFrame(index=pd.Index(ids), columns=self.metadata_columns)
            cond, cond_valid = self._metadata_tokens(frame, "metadata (meta)")
        elif meta is not None and len(meta.columns):
            raise InvalidOptionError("the model was trained without metadata, so it cannot generate conditionally",
                                     hint="leave out the metadata (--meta / meta=)")
        drawn = _sampling.draw_samples(self.module, n, cond, cond_valid, schedulers, seed=seed,
                                       batch_size=batch_size, device=self.device, progress=progress,
                                       precision=self.precision, guidance=float(guidance))
        h = self.hparams
        depths = given_depths if given_depths is not None else \
            self._drawn_library_sizes(seed, richness=_sampling.richness(drawn))
        counts = _sampling.to_counts(drawn, depths, scale=h["scale"], log_base=h["log_base"])
        counts[empty] = 0.0
        sample_meta = meta.copy() if meta is not None else pd.DataFrame(index=pd.Index(ids))
        sample_meta.index = pd.Index(ids)
        return MicrobiomeTable(counts, ids, list(self.taxa), sample_meta=sample_meta, source="generated")

    def _check_library_size(self, n: int, library_size) -> np.ndarray | None:
        """The given read depths (n,), checked; None when none were given (checked to be recorded)."""
        if library_size is not None:
            sizes = np.broadcast_to(np.asarray(library_size, dtype=float), (n,)) if np.ndim(library_size) == 0 \
                else np.asarray(library_size, dtype=float)
            if sizes.shape != (n,) or not np.isfinite(sizes).all() or (sizes < 1).any():
                raise InvalidOptionError(f"library_size must be a number >= 1 or {n} such numbers",
                                         hint="e.g. library_size=10000")
            return sizes
        if not self.training.get("fit", {}).get("library_size_percentiles"):
            raise InvalidValueError("the model does not record its training read depths",
                                    hint="give the read depth yourself (library_size= / --library-size)")
        return None

    def _drawn_library_sizes(self, seed: int, richness: np.ndarray) -> np.ndarray:
        """Read depths (n,) drawn from training samples of the same richness (number of present taxa),
        or, for models saved before that was recorded, from all training samples."""
        fit = self.training["fit"]
        rng = np.random.default_rng(seed)
        if fit.get("library_size_by_richness"):
            sizes = _sampling.draw_depths(richness, fit["library_size_by_richness"], rng)
        else:
            sizes = np.interp(rng.uniform(0, 100, len(richness)), np.arange(101), fit["library_size_percentiles"])
        return np.maximum(np.rint(sizes), 1.0)

    def _empty_samples(self, n: int, empty_fraction, seed: int) -> np.ndarray:
        """(n,) bool: which generated samples are empty (a stream of their own, so the others do not change)."""
        if empty_fraction is None:
            empty_fraction = self.training.get("fit", {}).get("empty_sample_fraction", 0.0)
        check_number("empty_fraction", empty_fraction, 0.0)
        if empty_fraction >= 1:
            raise InvalidOptionError(f"empty_fraction must be below 1, got {empty_fraction}",
                                     hint="e.g. empty_fraction=0 for no empty samples")
        return np.random.default_rng([int(seed), 7]).random(n) < float(empty_fraction)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise InvalidValueError("the model is not fitted", hint="call fit(table) first, or load a trained model")

    # -- persistence --------------------------------------------------------------------------

    def save(self, path, *, force: bool = False, curves: bool = True) -> list:
        """Write the model directory (config.json, model.safetensors, taxa.tsv, training curves).

        Under torchrun only rank 0 writes (the others return an empty list).
        """
        from ._save import save_model

        if not _distributed.is_main_process():
            return []
        return save_model(self, path, force=force, curves=curves)

    @classmethod
    def load(cls, path, *, device: str = "auto", precision: str = "auto") -> "DepMicroDiff":
        """Read a model directory written by :meth:`save` (never unpickles)."""
        from ._save import load_model

        model = load_model(cls, path, device=device)
        model._precision = str(precision)
        model.precision = resolve_precision(precision, model.device)
        return model

    def copy(self) -> "DepMicroDiff":
        clone = copy.copy(self)
        clone.vae = copy.deepcopy(self.vae)
        clone.module = copy.deepcopy(self.module)
        clone.history = list(self.history)
        clone.training = copy.deepcopy(self.training)
        return clone


# ---------------------------------------------------------------------- helpers


def _seed_everything(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidOptionError(f"seed must be an integer, got {seed!r}")
    torch.manual_seed(int(seed))
    np.random.seed(int(seed) % 2**32)


def _generation_size(n, meta) -> tuple[int, list[str]]:
    """How many samples to generate and their ids: from ``n``, or from the rows of ``meta``."""
    if meta is not None:
        if not isinstance(meta, pd.DataFrame):
            raise InvalidOptionError(f"meta must be a DataFrame (rows = samples to generate), got {type(meta).__name__}")
        if len(meta) == 0:
            raise InvalidValueError("meta has no rows", hint="give one row of metadata per sample to generate")
        if n is not None and n != len(meta):
            raise InvalidOptionError(f"n = {n} but meta has {len(meta)} rows",
                                     hint="leave out n: one sample is generated per metadata row")
        ids = [str(i) for i in meta.index]
        if len(set(ids)) != len(ids):
            raise InvalidValueError("meta has repeated sample ids", hint="give each row its own id")
        return len(meta), ids
    if n is None:
        raise InvalidOptionError("say how many samples to generate", hint="e.g. n=100 (-n 100)")
    check_number("n", n, 1, integer=True)
    width = len(str(n))
    return int(n), [f"synthetic_{i + 1:0{width}d}" for i in range(n)]


def _lost_entries(counts: np.ndarray, max_share: float, generator: torch.Generator) -> np.ndarray:
    """Entries (n, q) one spread-calibration round hides: per sample a share ~ U(0, max(max_share,
    SPREAD_MIN_HIDE)) of its nonzero entries, drawn as training's corruption draws its dropouts."""
    y, observed = torch.from_numpy(np.nan_to_num(counts)), torch.from_numpy(~np.isnan(counts))
    _, _, lost = _data.corrupt(y, observed, max_hide=0.0, max_drop=max(max_share, SPREAD_MIN_HIDE),
                               hide_zeros=False, generator=generator)
    return lost.numpy()


def _one_lost_entry(counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Entries (n, q) one dropout-calibration round takes away: one nonzero entry, drawn uniformly, of
    every sample with two or more (a sample left without reads would not be imputed)."""
    nonzero = np.nan_to_num(counts) > 0
    n_nonzero = nonzero.sum(axis=1)
    pick = np.floor(rng.random(len(counts)) * n_nonzero).astype(int)  # which of the sample's nonzero entries
    return nonzero & (np.cumsum(nonzero, axis=1) - 1 == pick[:, None]) & (n_nonzero >= 2)[:, None]


def youden_threshold(y: np.ndarray, score: np.ndarray, max_fpr: float = 1.0) -> float | None:
    """The presence-probability threshold with the largest Youden's J (share of positives above it minus
    share of negatives above it) among those with at most ``max_fpr`` of the negatives above, or None
    when no threshold has J > 0. ``y`` (m,) 1 = positive; ``score`` (m,)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(y, score)
    best = int(np.argmax(np.where(fpr <= max_fpr, tpr - fpr, -np.inf)))
    if not tpr[best] > fpr[best]:
        return None
    # roc_curve counts score >= threshold; impute replaces prob > threshold: take the middle of the gap to
    # the next lower score
    lower = thresholds[best + 1] if best + 1 < len(thresholds) else 0.0
    return float(np.clip((thresholds[best] + lower) / 2, 1e-4, 1 - 1e-4))


def _spread_samples(train_rows: np.ndarray, val_rows: np.ndarray) -> np.ndarray:
    """The samples fit calibrates the spread on: the validation ones, never trained on, when there are
    enough (the dropout threshold takes every sample with reads)."""
    return val_rows if len(val_rows) >= SPREAD_MIN_VAL_ROWS else train_rows


def _calibration_rows(rows: np.ndarray, rng: np.random.Generator, limit: int) -> np.ndarray:
    """At most ``limit`` of ``rows`` (a random subset, sorted), which bounds a calibration's time."""
    return np.sort(rng.choice(rows, limit, replace=False)) if len(rows) > limit else rows


def _split(rows: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    check_number("val_fraction", val_fraction, 0.0, 0.5)
    if len(rows) < 20 or val_fraction == 0:
        return rows, rows[:0]
    shuffled = np.random.default_rng(seed).permutation(rows)
    n_val = max(1, int(round(len(rows) * val_fraction)))
    return np.sort(shuffled[n_val:]), np.sort(shuffled[:n_val])


def _check_hparams(h: dict) -> None:
    choices = {"ar_order": AR_ORDERS, "dependency": DEPENDENCY_METHODS, "dep_mode": ("open", "restrict"),
               "prediction_type": ("v_prediction", "epsilon"), "metadata": ("auto", True, False),
               "cond_latent": ("all", "observed"), "target": ("residual", "latent"),
               "metadata_mode": ("field", "sample"), "metadata_base": (True, False), "lineage_inputs": ("auto", True, False),
               "taxonomy_embedding": ("none", "poincare"),
               "generation_scaling": GENERATION_SCALINGS}
    if isinstance(h["lineage_inputs"], (int, np.integer)):  # 0/1 and numpy bools: "is True" checks need bools
        h["lineage_inputs"] = bool(h["lineage_inputs"])
    for name, allowed in choices.items():
        if h[name] is None and "none" in allowed:
            h[name] = "none"  # "none" from a command line or JSON reads as None; both mean the option is off
        if h[name] not in allowed:
            raise InvalidOptionError(f"{name} must be one of {', '.join(map(str, allowed))}, got {h[name]!r}")
    for name in ("d_z", "vae_d_model", "vae_layers", "vae_heads", "d_model", "n_layers", "n_heads", "n_blocks",
                 "num_train_timesteps", "taxonomy_dim"):
        check_number(name, h[name], 1, integer=True)
    if h["vae_d_model"] % h["vae_heads"] or h["d_model"] % h["n_heads"]:
        raise InvalidOptionError("vae_d_model and d_model must be divisible by their number of heads")
    check_number("ar_alpha", h["ar_alpha"], 1e-12)
    check_number("vae_sparsity_weight", h["vae_sparsity_weight"], 0.0)
    if not h["log_base"] > 0 or h["log_base"] == 1 or not h["scale"] > 0:
        raise InvalidOptionError("log_base must be > 0 and not 1, scale > 0")

