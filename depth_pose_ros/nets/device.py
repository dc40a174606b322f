"""Which torch device and which precision a run uses: the one place these choices are made.

The streaming Estimator, the fast path and the training loop all resolve a ``device`` setting and a
``precision`` setting; doing it here once keeps their vocabulary (``auto`` / ``cpu`` / ``cuda`` /
``cuda:N`` / ``mps``; ``auto`` / ``fp32`` / ``bf16`` / ``fp16``), their checks and their one-line errors
identical, so a setting that works for one works the same way for the others.
"""
from __future__ import annotations

from typing import Optional

import torch

#: Precision settings: ``auto`` (see :func:`resolve_precision`), full fp32, bf16 or fp16 autocast.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str, local_rank: Optional[int] = None) -> torch.device:
    """The torch device a ``device`` setting names, checked against this machine.

    ``auto``: a CUDA GPU when there is one, else the CPU. ``local_rank`` (a distributed process) makes a
    bare ``cuda`` (and ``auto`` on a GPU machine) that process's GPU ``cuda:<local_rank>``; without it a
    bare ``cuda`` stays torch's current CUDA device. A name torch does not know, or a device this machine
    lacks (``cuda`` without CUDA, ``mps`` without MPS), raises a one-line ValueError, before any model
    is moved there.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda" if local_rank is None else f"cuda:{local_rank}")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"device {name!r} is not a torch device: {exc}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r}: CUDA is not available on this machine (use device cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        if device.index is None and local_rank is not None:
            device = torch.device(f"cuda:{local_rank}")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r}: MPS is not available on this machine (use device cpu)")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {name!r}: only cpu, cuda[:N], mps and auto are supported")
    return device


def cpu_supports_bf16() -> bool:
    """Whether oneDNN can run bf16 convolutions natively on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - very old torch / exotic builds
        return False


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The reduced precision that is fast on ``device`` (None: stay in fp32): fp16 on CUDA, bf16 on a CPU
    with native bf16 (emulated bf16 is slower than fp32)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.float16
    if dev.type == "cpu" and cpu_supports_bf16():
        return torch.bfloat16
    return None


def resolve_precision(precision: str, device: torch.device, auto_reduced: bool = True,
                      auto_cpu_bf16: bool = True) -> str:
    """``fp32``, ``bf16`` or ``fp16``: what a ``precision`` setting means on ``device``.

    ``auto`` follows the caller's two switches: fp32 unless ``auto_reduced`` (the Estimator reduces only
    on its fast path), then fp16 on CUDA, bf16 on a CPU with native bf16 when ``auto_cpu_bf16`` (the
    training loop's ``auto`` keeps every CPU run in fp32; bf16 there is asked for explicitly), else fp32.
    ``fp16`` off CUDA is a ValueError (bf16 is the CPU's reduced precision).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {list(PRECISIONS)}")
    if precision == "auto":
        if not auto_reduced:
            return "fp32"
        dtype = autocast_dtype(device)
        if dtype == torch.float16:
            return "fp16"
        return "bf16" if dtype == torch.bfloat16 and auto_cpu_bf16 else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision: fp16 needs a CUDA device (use bf16 or fp32 on the CPU)")
    return precision


def precision_dtype(precision: str) -> Optional[torch.dtype]:
    """The autocast dtype of a resolved precision (None: fp32, no autocast)."""
    return _DTYPES[precision]
