"""pydepmicro: DepMicroDiff for sparse microbiome tables (samples x taxa in Python)."""

__version__ = "0.2.0"

from .errors import DepMicroError  # noqa: E402
from .io import read_metadata, read_table, write_table  # noqa: E402
from .table import MicrobiomeTable, join_metadata  # noqa: E402

_LAZY = {"DepMicroDiff": "model", "impute": "model", "ImputationResult": "model"}


def __getattr__(name):
    # the model pulls in torch; load it only when asked for, so reading tables stays quick
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'pydepmicro' has no attribute {name!r}")


__all__ = ["DepMicroDiff", "DepMicroError", "ImputationResult", "MicrobiomeTable", "impute", "join_metadata",
           "read_metadata", "read_table", "write_table"]
