"""Device choice and mixed precision, in one place for the teacher and the students."""

from __future__ import annotations

import contextlib

import torch

from study.errors import UsageError

__all__ = ["resolve_device", "autocast_dtype", "autocast", "cpu_supports_bf16"]


def resolve_device(spec: str | None = "auto") -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        UsageError: CUDA requested on a machine without it, or an index past the last GPU.
    """
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UsageError(f"device {spec}: CUDA is not available on this machine")
        index = 0 if spec == "cuda" else spec.split(":", 1)[1]
        if not str(index).isdigit():
            raise UsageError(f"device {spec}: expected cuda:N with N an integer")
        if int(index) >= torch.cuda.device_count():
            raise UsageError(f"device {spec}: only {torch.cuda.device_count()} CUDA device(s) here")
        return torch.device(f"cuda:{index}")
    raise UsageError(f"device {spec!r}: expected auto, cpu, cuda or cuda:N")


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 matmul support (AVX-512 BF16 or AMX)."""
    try:
        cap = torch.backends.cpu.get_cpu_capability()
    except Exception:  # noqa: BLE001 - older torch
        return False
    if cap not in ("AVX512", "AMX"):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``, or None for plain fp32.

    ``auto``: bf16 on CPUs with native bf16 and on CUDA GPUs that support it, fp16 on older
    GPUs, fp32 otherwise.
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type != "cuda":
            raise UsageError("fp16 autocast needs CUDA; use bf16 or fp32 on CPU")
        return torch.float16
    if precision != "auto":
        raise UsageError(f"precision {precision!r}: expected auto, fp32, bf16 or fp16")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_supports_bf16() else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` for ``device`` with ``dtype``, or a no-op when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
