"""Device choice: "auto" takes CUDA when torch sees a GPU; asking for one that is not there is an error."""

from __future__ import annotations

import torch

from ..errors import InvalidOptionError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """"auto" | "cpu" | "cuda" | "cuda:N" (| "mps") -> torch.device, checked against this machine."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidOptionError(f"unknown device {device!r}", hint="use auto, cpu, cuda or cuda:N") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidOptionError(
                f"device {device!r} was asked for but torch sees no CUDA GPU on this machine",
                hint="use --device cpu (or auto, which picks the GPU when there is one)",
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InvalidOptionError(
                f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)",
                hint=f"use cuda:0 .. cuda:{torch.cuda.device_count() - 1}",
            )
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise InvalidOptionError("device 'mps' was asked for but is not available", hint="use --device cpu")
    elif dev.type != "cpu":
        raise InvalidOptionError(f"unsupported device {device!r}", hint="use auto, cpu, cuda or cuda:N")
    return dev
