"""The DepMicroDiff model: :class:`DepMicroDiff` (fit / impute / save / load) and :func:`impute`."""

from __future__ import annotations

from ..table import MicrobiomeTable
from ._device import resolve_device
from ._model import DEFAULTS, DepMicroDiff
from ._plots import plot_history, plot_imputation
from ._result import ImputationResult
from ._sampling import parse_sampler

_FIT_OPTIONS = ("vae_steps", "dat_steps", "batch_size", "vae_lr", "dat_lr", "max_hide", "max_drop", "hide_zeros",
                "generate_fraction", "val_fraction", "dep")
_IMPUTE_OPTIONS = ("draws", "sampler", "estimate", "zeros", "dropout_threshold", "batch_size", "align", "keep_draws",
                   "closure")


def impute(table: MicrobiomeTable, meta=None, *, model=None, seed: int = 0, progress: bool = True,
           device: str = "auto", **options) -> ImputationResult:
    """Impute a table in one call (the paper's transductive setting unless ``model`` is given).

    Parameters
    ----------
    table : MicrobiomeTable
    meta : DataFrame, optional
        Sample metadata (index = sample ids) joined to the table first (missing ids are an error).
    model : DepMicroDiff, str or Path, optional
        A trained model or its folder. Without one, a model is fitted on ``table`` itself.
    options
        Hyperparameters of :class:`DepMicroDiff`, options of :meth:`DepMicroDiff.fit` and of
        :meth:`DepMicroDiff.impute` (``draws``, ``sampler``, ``zeros``, ...), by name.

    Returns
    -------
    ImputationResult; the fitted model is ``result.model``.
    """
    from ..errors import InvalidOptionError
    from ..table import join_metadata

    if meta is not None:
        table = join_metadata(table, meta, missing="error")
    impute_opts = {k: options.pop(k) for k in list(options) if k in _IMPUTE_OPTIONS}
    fit_opts = {k: options.pop(k) for k in list(options) if k in _FIT_OPTIONS}
    if model is None:
        model = DepMicroDiff(device=device, **options)
        model.fit(table, seed=seed, progress=progress, **fit_opts)
    else:
        if options or fit_opts:
            raise InvalidOptionError(f"option(s) {', '.join(sorted({**options, **fit_opts}))} only apply when "
                                     "training; a trained model was given", hint="drop them or leave out model=")
        if not isinstance(model, DepMicroDiff):
            model = DepMicroDiff.load(model, device=device)
    result = model.impute(table, seed=seed, progress=progress, **impute_opts)
    result.model = model
    return result


__all__ = ["DEFAULTS", "DepMicroDiff", "ImputationResult", "impute", "parse_sampler", "plot_history", "plot_imputation",
           "resolve_device"]
