"""Device choice: "auto" takes CUDA when torch sees a GPU; asking for one that is not there is an error."""

from __future__ import annotations

import contextlib

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


PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto" | "fp32" | "bf16" -> "fp32" or "bf16". "auto" takes bf16 on a CUDA GPU that supports it
    (autocast: matrix products in bfloat16, weights, losses and the sampler's arithmetic in float32)
    and float32 elsewhere; "bf16" is honoured on the CPU too (slower there on most machines)."""
    value = str(precision).strip().lower()
    if value not in PRECISIONS:
        raise InvalidOptionError(f"unknown precision {precision!r}", hint="use auto, fp32 or bf16")
    if value == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    return value


def autocast(device: torch.device, precision: str):
    """The autocast context of ``precision`` on ``device`` (a no-op for fp32)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
