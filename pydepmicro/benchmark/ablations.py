"""Ablations of the benchmark (BENCHMARK.md, "Ablations"), as configurations of the public API.

Every ablation is a change to the main DepMicroDiff configuration: constructor hyperparameters
(``model``), :meth:`~pydepmicro.model.DepMicroDiff.fit` options (``fit``), whether the VAE is
pretrained on the other datasets (``pretrain``), and :meth:`~pydepmicro.model.DepMicroDiff.impute`
options (``sampler``, ``estimate``, ``zeros``, ``dropout_threshold``). Sampler, estimate and zeros
ablations change only the imputation, so they reuse the main model's training: their time beside
their accuracy is the point.

The main point estimate (``estimate="auto"``) fills missing entries from the VAE's pass, which never
runs the denoiser, and judges zeros with the denoiser's pass. So that the denoiser's components
(metadata, dependency mask, AR blocks, taxon order, taxonomy embedding) are judged in both regimes,
their ablations impute with the denoiser's own estimate throughout (``estimate="mean"``) and are
compared with the main model imputing the same way (the ``estimate_mean`` row, their ``reference``;
in the blind regime, which has no missing entries, it equals the main row). Samplers change only the draws, so their ablations take
the mean of the draws as the estimate (reference ``estimate_draws``). The VAE's components
(pretraining, sparsity loss, lineage inputs) are compared with the main model itself.

Most ablations take a component away. Some add one the main model leaves out (``adds=True``): the
VAE sparsity loss, the Poincare taxonomy embedding, and the dependency mask, which is off in the main
model (it showed no effect on imputation or generation; docs/benchmark/README.md), so the paper's
Dep ablation runs the other way round: ``with_dependency`` adds Dep to the main model. The report states
every difference as "with the component - without it", so a positive difference means the component
helps either way. ``no_dependency`` stays for runs made while Dep was on by default, and for a main
model given Dep with ``--set dependency=both``.

An ablation whose configuration equals its reference's (e.g. ``ar_alpha_0.9`` with the default
decay 0.9, or ``no_pretrain`` on data with nothing to pretrain on) is not trained twice: its row
repeats the reference's numbers and says so in ``note``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InvalidOptionError


@dataclass(frozen=True)
class Ablation:
    """One change to the main configuration.

    Attributes
    ----------
    name : str
        Row label; the method column reads ``depmicrodiff/<name>``.
    group : str
        Figure / table group: ``paper`` (the paper's three), ``dependency``, ``ar``, ``ar_decay``,
        ``order``, ``decoder``, ``sampler``, ``zeros``, ``estimate``.
    model, fit : dict
        Hyperparameters / fit options that override the main ones.
    pretrain : bool or None
        ``False`` turns VAE pretraining off; ``None`` keeps the main setting.
    sampler : str or None
        Imputation sampler (``None``: the main one).
    estimate : str or None
        Imputation point estimate (``None``: the package default, ``"auto"``).
    zeros : str or None
        Imputation zeros policy (``None``: the regime's, ``auto`` blind and ``keep`` aware). An ablation
        with its own policy runs in the blind regime only: the aware regime's zeros are known true zeros.
    dropout_threshold : float or None
        Presence probability above which ``zeros="auto"`` replaces a zero (``None``: the model's
        calibrated threshold).
    reference : str or None
        The ablation whose row this one is compared with (``None``: the main model).
    adds : bool
        The ablation adds a component the main configuration leaves out (Dep); its difference is then
        ablation - reference instead of reference - ablation.
    what : str
        One line for the report.
    """

    name: str
    group: str
    what: str
    model: dict = field(default_factory=dict)
    fit: dict = field(default_factory=dict)
    pretrain: bool | None = None
    sampler: str | None = None
    estimate: str | None = None
    zeros: str | None = None
    dropout_threshold: float | None = None
    reference: str | None = None
    adds: bool = False


#: a presence probability that (nearly) every zero exceeds: zeros="auto" then treats every zero as a dropout
ALL_DROPOUTS_THRESHOLD = 1e-6
#: the main model imputing with the denoiser's estimate: the reference of the denoiser's ablations
DENOISER_REFERENCE = "estimate_mean"
#: the main model's estimate from its draws: the reference of the sampler ablations, which change only the draws
DRAWS_REFERENCE = "estimate_draws"


def _denoiser(name: str, group: str, what: str, model: dict, adds: bool = False) -> Ablation:
    """An ablation of a denoiser component, scored on the denoiser's estimate (see the module doc)."""
    return Ablation(name, group, what + "; denoiser's estimate", model=model, estimate="mean",
                    reference=DENOISER_REFERENCE, adds=adds)


def _build() -> dict[str, Ablation]:
    items = [
        Ablation("no_pretrain", "paper", "VAE trained on the target only (no pretraining on the other cancers)",
                 pretrain=False),
        _denoiser("no_metadata", "paper", "no metadata condition tokens", {"metadata": False}),
        _denoiser("with_dependency", "paper", "the dependency mask added (Dep from both tests: dependency='both'; "
                  "off in the main model)", {"dependency": "both"}, adds=True),
        _denoiser("no_dependency", "dependency", "no dependency mask (Dep empty: dependency='none'; the paper's "
                  "ablation while Dep was on by default)", {"dependency": "none"}),
        _denoiser("with_dependency_restrict", "dependency", "the dependency mask added, filtering the cross-block "
                  "view instead of opening it (dependency='both', dep_mode='restrict')",
                  {"dependency": "both", "dep_mode": "restrict"}, adds=True),
        _denoiser("dep_restrict", "dependency", "Dep filters the cross-block view instead of opening it "
                  "(dep_mode='restrict'); with the main model's empty Dep each block then sees only the "
                  "conditions and its own block", {"dep_mode": "restrict"}),
        _denoiser("no_ar", "ar", "no autoregression: one block (n_blocks=1; with one block the dependency "
                  "mask opens nothing, so Dep is off too)", {"n_blocks": 1}),
    ]
    for alpha in (0.7, 0.8, 0.9, 1.0):
        items.append(_denoiser(f"ar_alpha_{alpha}", "ar_decay", f"AR block-size decay alpha = {alpha}",
                               {"ar_alpha": alpha}))
    items += [
        _denoiser("order_random", "order", "random taxon order for the AR blocks", {"ar_order": "random"}),
        _denoiser("order_table", "order", "the table's taxon order for the AR blocks", {"ar_order": "table"}),
        Ablation("sparsity_loss", "decoder", "the VAE's hard sparsity loss on (vae_sparsity_weight=1; off by default)",
                 model={"vae_sparsity_weight": 1.0}, adds=True),
        Ablation("no_lineage", "decoder", "the VAE's encoder without the lineage inputs (parent's unaccounted "
                 "share, parent present, children's total; lineage_inputs=False)", model={"lineage_inputs": False}),
        _denoiser("taxonomy_poincare", "decoder", "Poincare embeddings of the taxonomy added to the denoiser's "
                  "taxon tokens (taxonomy_embedding='poincare')", {"taxonomy_embedding": "poincare"}, adds=True),
    ]
    for sampler in ("full", "fractional:2", "fractional:3", "fractional:4", "fractional:20", "adaptive",
                    "ddim:10", "ddim:20", "ddim:50", "vae"):
        label = sampler.replace(":", "_")
        what = ("no diffusion: the VAE's posterior given the observed entries" if sampler == "vae"
                else f"sampler {sampler}")
        items.append(Ablation(f"sampler_{label}", "sampler", what + "; point estimate = mean of the draws",
                              sampler=sampler, estimate="draws", reference=DRAWS_REFERENCE))
    items.append(Ablation("zeros_impute", "zeros", "every zero replaced by the model's estimate (zeros='impute'), "
                          "as the fill-zeros baselines do: the sparsity decisions off at imputation", zeros="impute"))
    items.append(Ablation("zeros_all_dropouts", "zeros", "every zero judged a dropout and given the abundance the "
                          "model expects when present (zeros='auto', dropout_threshold="
                          f"{ALL_DROPOUTS_THRESHOLD:g}), as the zeros-as-missing baselines treat every zero", zeros="auto",
                          dropout_threshold=ALL_DROPOUTS_THRESHOLD))
    items += [
        Ablation("estimate_mean", "estimate", "every estimate from the denoiser's posterior-mean pass "
                 "(estimate='mean')", estimate="mean"),
        Ablation("estimate_draws", "estimate", "point estimate = mean of the draws (estimate='draws')",
                 estimate="draws"),
    ]
    return {a.name: a for a in items}


#: every ablation, by name, in report order
ABLATIONS: dict[str, Ablation] = _build()

#: ablations BENCHMARK.md asks for that the engine cannot run yet (name -> reason, printed in the report)
NOT_AVAILABLE: dict[str, str] = {
    "sparsity_decoder": "sparsity-preserving decoder off: not available - the presence/abundance decoder is "
                        "the model's only decoder; its switchable parts are run as the ablations sparsity_loss "
                        "and taxonomy_poincare",
}

#: the ablations run by ``--quick``
QUICK_ABLATIONS = ("no_ar", "sampler_vae")

#: groups, for ``--ablations paper,sampler`` style selection
GROUPS = tuple(dict.fromkeys(a.group for a in ABLATIONS.values()))


def select_ablations(spec) -> list[str]:
    """Names from a spec: ``"all"``, ``"none"``, or a comma-separated list of names and groups."""
    if spec is None:
        return list(ABLATIONS)
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if str(s).strip()]
    if items in (["all"], []):
        return list(ABLATIONS) if items else []
    if items == ["none"]:
        return []
    out: list[str] = []
    for item in items:
        if item in ABLATIONS:
            out.append(item)
        elif item in GROUPS:
            out += [n for n, a in ABLATIONS.items() if a.group == item]
        elif item in NOT_AVAILABLE:
            continue  # reported as not available
        else:
            raise InvalidOptionError(f"unknown ablation {item!r}",
                                     hint=f"use all, none, a group ({', '.join(GROUPS)}) or names such as "
                                          f"{', '.join(list(ABLATIONS)[:4])}")
    return with_references(out)


def with_references(names) -> list[str]:
    """``names`` plus the references they are compared with (a reference is run once, before them)."""
    out: list[str] = []
    for name in names:
        ref = ABLATIONS[name].reference
        out += [ref, name] if ref else [name]
    return list(dict.fromkeys(out))
