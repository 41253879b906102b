"""Which device a model runs on, and in which precision.

``auto`` takes a CUDA GPU when torch sees one, else the CPU. bfloat16 autocast is used on CUDA
devices that support it and never on the CPU: a CPU without native bf16 instructions (AVX2 only, such
as this project's development machines) emulates it, measured 7.5x slower than fp32 for a decoder
layer's forward and backward pass; and fp32 on every CPU keeps a CPU-trained artifact the same
whichever CPU trained it. Artifacts are not keyed by device or precision, only recorded with them.
"""

from __future__ import annotations

import os

from bench.errors import BenchError


def resolve(spec: str | None = None):
    """The torch device of ``spec`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``; default ``BENCH_DEVICE`` or auto)."""
    import torch

    spec = (spec or os.environ.get("BENCH_DEVICE") or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise BenchError(f"unknown device {spec!r}", "use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"device {spec} asked for, but torch sees no CUDA GPU",
                         "use --device cpu, or install the CUDA build of torch (see the README)")
    if device.type not in ("cpu", "cuda"):
        raise BenchError(f"device type {device.type!r} is not supported", "use auto, cpu, cuda or cuda:N")
    return device


def bf16_autocast(device) -> bool:
    """True where bfloat16 autocast pays: a CUDA device with bf16 support (never the CPU, see above)."""
    import torch

    device = torch.device(device)
    return device.type == "cuda" and torch.cuda.is_bf16_supported()
