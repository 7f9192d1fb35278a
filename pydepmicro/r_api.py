"""Entry points for the R package ``depmicro`` (r-wrapper/), called through reticulate.

The contract, so that the R side stays a thin bridge (zellkonverter style: one private R function
per verb does all the Python work):

- In: plain numpy arrays and id lists. ``counts`` is already samples x taxa (R transposes exactly
  once, in the bridge); ``sample_ids`` and ``taxa_ids`` travel with it, because conversions across
  reticulate drop dimnames. Metadata and taxonomy come as ``{column: values}`` plus
  ``{column: NA mask}`` (R's ``NA`` has no faithful form in a converted character vector), numeric
  columns as floats, everything else as strings.
- Out: a dict with ``status`` ("ok" or "error"). On "ok": plain arrays (samples x taxa), ids, and
  plain Python values; on "error": ``error_class`` (the engine's exception class, e.g.
  ``IdMismatchError``) and ``message`` (its one-line text), which R raises as a typed condition.
  Warnings the engine issued are returned in ``warnings`` and re-issued in R.
- No printing: progress bars only when ``progress=True``.

Numbers from R are doubles even when whole (``d_model = 16``); like the CLI's ``--set`` parser, a
whole-valued float option becomes an int before it reaches the engine.

Inside R, torch must be loaded with ``RTLD_DEEPBIND`` (:func:`_load_torch`): R puts its own BLAS
(Debian's reference ``libblas.so.3``) into the process's global symbol scope, and torch's calls to
``sgemm_`` then bind to it instead of torch's own MKL: measured here, float32 matrix products ran
17x slower and gave different last bits, so R's result differed from the CLI's.
"""

from __future__ import annotations

import ctypes
import functools
import inspect
import os
import sys
import time
import traceback
import warnings
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .errors import DepMicroError, InvalidOptionError, InvalidValueError
from .table import MicrobiomeTable

#: bumped when a signature or a returned field changes; the R package checks it
API_VERSION = 2


def _host_exports_blas() -> bool:
    """True when the host process (e.g. R) has a BLAS ``sgemm_`` in its global symbol scope."""
    try:
        return hasattr(ctypes.CDLL(None), "sgemm_")
    except OSError:
        return False


def _load_torch() -> str:
    """Import torch so that it uses its own BLAS even inside a host that exports one (see above).

    Returns how torch was loaded: "deepbind", "already loaded" (too late to choose) or "plain".
    """
    if "torch" in sys.modules:
        return "already loaded"
    if not (_host_exports_blas() and hasattr(os, "RTLD_DEEPBIND")):
        return "plain"
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
    try:
        import torch  # noqa: F401
    finally:
        sys.setdlopenflags(flags)
    return "deepbind"


TORCH_LOADED = _load_torch()

SOURCE = "R object"


# ---------------------------------------------------------------------- plumbing


def _entry(func):
    """Run an entry point; turn its outcome into a status dict (never raise into R)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs) -> dict:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                payload = func(*args, **kwargs)
                out = {"status": "ok", **payload}
            except DepMicroError as exc:
                out = {"status": "error", "error_class": type(exc).__name__, "message": str(exc)}
            except Exception as exc:  # noqa: BLE001 -- a bug, not the user input: keep the traceback for R
                out = {"status": "error", "error_class": "InternalError",
                       "message": f"{type(exc).__name__}: {exc}".strip(),
                       "traceback": "".join(traceback.format_exception(exc))}
        out["warnings"] = _unique(str(w.message) for w in caught if not issubclass(w.category, DeprecationWarning))
        return out

    return wrapper


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))


def _ids(values, what: str) -> list[str]:
    if values is None:
        raise InvalidValueError(f"{what} ids are missing", hint=f"give the matrix {what} names")
    if isinstance(values, str):
        return [values]
    return [str(v) for v in np.atleast_1d(np.asarray(values, dtype=object))]


def _frame(columns, na, ids: list[str], what: str) -> pd.DataFrame | None:
    """``{name: values}`` and ``{name: NA mask}`` from R -> DataFrame indexed by ``ids``."""
    if columns is None:
        return None
    na = na or {}
    data = {}
    for name, values in dict(columns).items():
        array = np.atleast_1d(np.asarray(values))
        if len(array) != len(ids):
            raise InvalidValueError(f"{what} column {name!r} has {len(array)} values for {len(ids)} rows")
        mask = np.atleast_1d(np.asarray(na.get(name, np.zeros(len(array), dtype=bool)), dtype=bool))
        if array.dtype.kind in "fiu":
            col = array.astype(np.float64)
            col[mask] = np.nan
            data[str(name)] = col
        else:
            col = array.astype(str).astype(object)
            col[mask] = None
            data[str(name)] = col
    return pd.DataFrame(data, index=pd.Index(ids, dtype=object))


def _meta(meta, meta_na, meta_ids) -> pd.DataFrame | None:
    """Sample metadata from R (columns, NA masks, row ids), or None."""
    if meta is None:
        return None
    return _frame(meta, meta_na, _ids(meta_ids, "metadata"), "metadata")


def _table(counts, sample_ids, taxa_ids, taxonomy=None, taxonomy_na=None) -> MicrobiomeTable:
    samples, taxa = _ids(sample_ids, "sample"), _ids(taxa_ids, "taxon")
    # C order, as a table read from a file: R sends column-major (Fortran-ordered) arrays, and the
    # order of a float reduction (numpy's pairwise sums, torch's kernels) follows the memory layout,
    # so the same numbers in another layout can differ in the last bits from the CLI's result
    array = np.ascontiguousarray(counts, dtype=np.float64)
    if array.ndim == 1 and len(samples) * len(taxa) == array.size:
        array = array.reshape(len(samples), len(taxa))
    return MicrobiomeTable(array, samples, taxa, taxonomy=_frame(taxonomy, taxonomy_na, taxa, "taxonomy"),
                           source=SOURCE)


def _option_value(value):
    """R values -> engine values: whole doubles -> int (as the CLI's --set does), vectors -> lists."""
    if isinstance(value, (list, tuple)):
        return [_option_value(v) for v in value]
    if isinstance(value, np.ndarray):
        return _option_value(value.tolist()) if value.ndim else _option_value(value.item())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _options(options) -> dict[str, Any]:
    return {str(k).replace(".", "_"): _option_value(v) for k, v in dict(options or {}).items()}


def _seed(seed) -> int:
    value = _option_value(seed)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOptionError(f"seed must be a whole number, got {seed!r}")
    return value


def _plain(value):
    """Engine values -> what reticulate converts cleanly (no numpy scalars, no pandas)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (pd.Index, pd.Series, np.ndarray)):
        return [_plain(v) for v in np.asarray(value).tolist()]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _columns(frame: pd.DataFrame) -> dict[str, Any]:
    """A DataFrame as {column: list or float array}, strings as lists (NaN -> None)."""
    out = {}
    for name in frame.columns:
        col = frame[name]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            out[str(name)] = col.to_numpy(dtype=np.float64)
        else:
            out[str(name)] = [None if pd.isna(v) else str(v) for v in col]
    return out


def _resolve_model(model, device: str):
    from .model import DepMicroDiff

    if model is None or isinstance(model, DepMicroDiff):
        return model
    if isinstance(model, str):
        return DepMicroDiff.load(model, device=device)
    raise InvalidOptionError(f"model must be a trained model or the path of a model folder, got {type(model).__name__}")


# ---------------------------------------------------------------------- entry points


@_entry
def info() -> dict:
    """Versions and settings the R side reports (``depmicro_configure()``)."""
    import torch

    return {"pydepmicro_version": __version__, "api_version": API_VERSION, "numpy_version": np.__version__,
            "torch_version": torch.__version__, "torch_loaded": TORCH_LOADED, "host_blas": _host_exports_blas(),
            "python": sys.executable, "python_version": sys.version.split()[0]}


@_entry
def set_threads(n) -> dict:
    """torch's intra-op threads (the R option ``depmicro.threads``)."""
    import torch

    torch.set_num_threads(max(1, int(n)))
    return {"threads": torch.get_num_threads()}


@_entry
def impute(counts, sample_ids, taxa_ids, meta=None, meta_na=None, meta_ids=None, taxonomy=None, taxonomy_na=None,
           model=None, seed=0, options=None, progress: bool = False) -> dict:
    """Impute a table; :func:`pydepmicro.model.impute` with plain arrays in and out.

    Parameters
    ----------
    counts : array (n_samples, n_taxa)
        NaN = missing (always imputed).
    sample_ids, taxa_ids : lists of str
    meta, meta_na, meta_ids : optional
        Sample metadata: columns, their NA masks, and the row ids; joined to the table by sample
        id with the engine's rule (every sample needs a row, extra rows are dropped with a warning).
    taxonomy, taxonomy_na : dict, optional
        Taxonomy columns, in ``taxa_ids`` order.
    model : DepMicroDiff or str, optional
        A trained model or its folder; without one a model is trained on the table (transductive).
    seed : int
    options : dict
        Hyperparameters and fit/impute options by name, as :func:`pydepmicro.model.impute` takes
        them, plus ``device``.

    Returns
    -------
    dict with ``counts``, ``imputed`` (bool), ``spread``, ``dropout_prob``, ``presence_prob``
    (arrays n_samples x n_taxa), ``sample_ids``, ``taxa_ids``, ``summary``, ``options``,
    ``seconds`` (time inside the engine) and ``model`` (the model that imputed).
    """
    from .model import impute as engine_impute

    opts = _options(options)
    device = opts.pop("device", "auto")
    table = _table(counts, sample_ids, taxa_ids, taxonomy, taxonomy_na)
    meta_frame = _meta(meta, meta_na, meta_ids)
    start = time.perf_counter()
    result = engine_impute(table, meta_frame, model=_resolve_model(model, device), seed=_seed(seed),
                           progress=bool(progress), device=device, **opts)
    seconds = time.perf_counter() - start
    return {
        "counts": result.table.counts, "imputed": result.imputed, "spread": result.spread,
        "dropout_prob": result.dropout_prob, "presence_prob": result.presence_prob,
        "sample_ids": list(result.sample_ids), "taxa_ids": list(result.taxa_ids),
        "summary": result.summary(), "options": _plain(result.options), "seconds": seconds,
        "model": result.model,
    }


@_entry
def train(counts, sample_ids, taxa_ids, meta=None, meta_na=None, meta_ids=None, taxonomy=None, taxonomy_na=None,
          seed=0, options=None, progress: bool = False) -> dict:
    """Fit a :class:`~pydepmicro.model.DepMicroDiff` on a table; ``options`` are hyperparameters and
    :meth:`~pydepmicro.model.DepMicroDiff.fit` options by name (plus ``device``)."""
    from .model import _FIT_OPTIONS, DepMicroDiff  # the fit options: the same split pydepmicro.impute makes
    from .table import join_metadata

    opts = _options(options)
    device = opts.pop("device", "auto")
    fit_opts = {k: opts.pop(k) for k in list(opts) if k in _FIT_OPTIONS}
    table = _table(counts, sample_ids, taxa_ids, taxonomy, taxonomy_na)
    meta_frame = _meta(meta, meta_na, meta_ids)
    if meta_frame is not None:
        table = join_metadata(table, meta_frame, missing="error")
    model = DepMicroDiff(device=device, **opts)
    model.fit(table, seed=_seed(seed), progress=bool(progress), **fit_opts)
    return {"model": model, **_model_info(model)}


@_entry
def generate(model, n=None, meta=None, meta_na=None, meta_ids=None, library_size=None, seed=0, options=None,
             progress: bool = False) -> dict:
    """Draw synthetic samples: :meth:`pydepmicro.model.DepMicroDiff.generate` with plain arrays out.

    ``model`` is a trained model or its folder; ``meta`` (columns, NA masks, row ids), when given,
    conditions one sample on each row and names the samples; ``options``: ``sampler``,
    ``batch_size``, ``empty_fraction``, ``guidance``, ``device``. Returns ``counts`` (n_samples x n_taxa), ``sample_ids``,
    ``taxa_ids``, ``conditional`` and ``seconds``.
    """
    opts = _options(options)
    device = opts.pop("device", "auto")
    unknown = sorted(set(opts) - {"sampler", "batch_size", "empty_fraction", "guidance"})
    if unknown:
        raise InvalidOptionError(f"unknown option(s) for generate: {', '.join(unknown)}",
                                 hint="use sampler, batch_size, empty_fraction and guidance")
    resolved = _resolve_model(model, device)
    meta_frame = _meta(meta, meta_na, meta_ids)
    count = None if n is None else int(_option_value(n))
    depth = None if library_size is None else _option_value(library_size)
    start = time.perf_counter()
    table = resolved.generate(count, meta=meta_frame, library_size=depth, seed=_seed(seed), progress=bool(progress),
                              **opts)
    return {"counts": table.counts, "sample_ids": list(table.sample_ids), "taxa_ids": list(table.taxa_ids),
            "conditional": bool(meta_frame is not None and resolved.metadata_columns),
            "seconds": time.perf_counter() - start}


@_entry
def load_model(path, device: str = "auto") -> dict:
    """Read a model folder (``depmicro train`` / ``save_model``)."""
    from .model import DepMicroDiff

    model = DepMicroDiff.load(str(path), device=device)
    return {"model": model, **_model_info(model)}


@_entry
def save_model(model, path, force: bool = False) -> dict:
    """Write ``model`` to the folder ``path``; returns the files written."""
    written = _resolve_model(model, "auto").save(str(path), force=bool(force))
    return {"files": [str(p) for p in written]}


@_entry
def model_info(model) -> dict:
    return _model_info(_resolve_model(model, "auto"))


def _model_info(model) -> dict:
    return {
        "fitted": model.is_fitted,
        "taxa": [] if model.taxa is None else list(model.taxa),
        "hparams": _plain(model.hparams),
        "metadata_columns": list(model.metadata_columns),
        "training": _plain(model.training),
        "device": str(model.device),
        "description": repr(model),
    }


@_entry
def dependencies(counts, sample_ids, taxa_ids, meta=None, meta_na=None, meta_ids=None, taxonomy=None,
                 taxonomy_na=None, seed=0, options=None, all_pairs: bool = False) -> dict:
    """The taxon dependency graph (:func:`pydepmicro.dependency.dependency_matrix`) as plain columns.

    Returns ``edges`` ({column: values}, the significant pairs strongest first, or every tested
    pair with ``all_pairs``), ``excluded`` (taxa left out and why), ``test_used`` and ``n_taxa``.
    """
    from .dependency import dependency_matrix
    from .table import join_metadata

    opts = _options(options)
    allowed = set(inspect.signature(dependency_matrix).parameters) - {"table", "seed"}
    unknown = sorted(set(opts) - allowed)
    if unknown:
        raise InvalidOptionError(f"unknown option(s) for dependencies: {', '.join(unknown)}",
                                 hint=f"use some of {', '.join(sorted(allowed))}")
    for key in ("covariates",):
        if isinstance(opts.get(key), str):
            opts[key] = [opts[key]]
    table = _table(counts, sample_ids, taxa_ids, taxonomy, taxonomy_na)
    meta_frame = _meta(meta, meta_na, meta_ids)
    if meta_frame is not None:
        table = join_metadata(table, meta_frame, missing="keep")
    result = dependency_matrix(table, seed=_seed(seed), **opts)
    edges = result.tests.sort_values(["test", "p"], kind="mergesort") if all_pairs else result.edges
    excluded = result.taxa.loc[result.taxa["excluded"] != "", ["excluded"]]
    return {
        "edges": _columns(edges.reset_index(drop=True)),
        "excluded": {"taxon": [str(t) for t in excluded.index], "reason": [str(r) for r in excluded["excluded"]]},
        "test_used": result.test_used,
        "n_taxa": int(table.n_taxa),
    }
