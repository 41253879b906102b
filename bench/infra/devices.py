"""Which device a model runs on, in which precision, and in batches of what size.

``auto`` takes a CUDA GPU when torch sees one, else the CPU. bfloat16 autocast is used on CUDA
devices that support it and never on the CPU: a CPU without native bf16 instructions (AVX2 only, such
as this project's development machines) emulates it, measured 7.5x slower than fp32 for a decoder
layer's forward and backward pass; and fp32 on every CPU keeps a CPU-trained artifact the same
whichever CPU trained it. Artifacts are not keyed by device or precision, only recorded with them
(:func:`describe`, in every run's manifest).

On the CPU an encoder's forward pass runs in torch or, where OpenVINO is installed and asked for, in OpenVINO fp32
(:func:`cpu_runtime`, :mod:`bench.infra.openvino_runtime`): 1.26x the passages/s of torch at equal vectors.

These are execution settings, not a system's identity, so they travel in the environment:
``BENCH_DEVICE`` (``--device``), ``BENCH_BATCH_TOKENS`` (``--batch-tokens``) and ``BENCH_CPU_RUNTIME``
(``--cpu-runtime``), set by the command line for its process and inherited by the processes it starts (Ray
workers), read here.
"""

from __future__ import annotations

import os

from bench.errors import BenchError
from bench.infra import environment

DEVICE_ENV = "BENCH_DEVICE"
BATCH_TOKENS_ENV = "BENCH_BATCH_TOKENS"
CPU_RUNTIME_ENV = "BENCH_CPU_RUNTIME"
# padded tokens per inference pass on the CPU (length-sorted batches): a small batch's activations stay in the CPU's
# caches, 1.25x the passages/s of 8,192 at two threads with equal MAP (benchmarks/results/encode_budget.txt)
CPU_BATCH_TOKENS = 2048
CPU_MAX_BATCH = 64  # texts per inference pass on the CPU
CUDA_MAX_BATCH = 1024
CUDA_TOKENS_PER_GIB = 2048  # padded tokens per pass for each GiB of GPU memory, within the bounds below
CUDA_BATCH_TOKENS = (16384, 262144)


def resolve(spec: str | None = None):
    """The torch device of ``spec`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``; default ``BENCH_DEVICE`` or auto)."""
    import torch

    spec = (spec or os.environ.get(DEVICE_ENV) or "auto").strip().lower()
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
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise BenchError(f"device {spec} asked for, but torch sees {torch.cuda.device_count()} CUDA GPU(s)",
                         f"use cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return device


def bf16_autocast(device) -> bool:
    """True where bfloat16 autocast pays: a CUDA device with bf16 support (never the CPU, see above)."""
    import torch

    device = torch.device(device)
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def batch_tokens(device=None) -> int:
    """Padded tokens per inference pass: ``BENCH_BATCH_TOKENS`` if set, else sized for ``device``
    (default :func:`resolve`'s): :data:`CPU_BATCH_TOKENS` on the CPU, :data:`CUDA_TOKENS_PER_GIB` per
    GiB of GPU memory on CUDA (between the bounds of :data:`CUDA_BATCH_TOKENS`)."""
    value = os.environ.get(BATCH_TOKENS_ENV, "").strip()
    if value:
        try:
            tokens = int(value)
        except ValueError:
            tokens = 0
        if tokens < 1:
            raise BenchError(f"{BATCH_TOKENS_ENV} must be a positive integer, not {value!r}",
                             "e.g. --batch-tokens 4096")
        return tokens
    device = _device(device)
    if device.type != "cuda":
        return CPU_BATCH_TOKENS
    import torch

    gib = torch.cuda.get_device_properties(device).total_memory / (1 << 30)
    low, high = CUDA_BATCH_TOKENS
    return int(min(high, max(low, CUDA_TOKENS_PER_GIB * int(gib))))


def cpu_runtime(device=None, quantize: str | None = None) -> str:
    """What runs an encoder's forward pass on ``device``: ``BENCH_CPU_RUNTIME`` (``torch`` or ``openvino``) on
    the CPU, torch on CUDA and for int8 encoders (torch's dynamic quantisation); OpenVINO asked for and not
    installed is a one-line error."""
    runtime = environment.read(CPU_RUNTIME_ENV) or environment.CPU_RUNTIMES[0]
    if quantize or _device(device).type != "cpu":
        return environment.CPU_RUNTIMES[0]
    if runtime == "openvino":
        from bench.infra import openvino_runtime

        openvino_runtime.require()
    return runtime


def max_batch(device=None) -> int:
    """Texts per inference pass on ``device`` (the token budget is the other bound)."""
    return CUDA_MAX_BATCH if _device(device).type == "cuda" else CPU_MAX_BATCH


def describe(device=None, quantize: str | None = None) -> dict:
    """What a manifest records of the execution: ``{"device": "cpu" | "cuda:0 (NVIDIA H200)", "dtype":
    "fp32" | "bf16-autocast" | "int8-dynamic", "torch": version}``, on the CPU with ``"threads"``
    (:func:`bench.infra.batching.threads`: torch splits a step's sums by thread, so a training at another thread
    count is another model, `benchmarks/results/thread_counts.txt`) and ``"runtime": "openvino <version>"`` where the
    CPU encoders run through OpenVINO (:func:`cpu_runtime`). ``quantize`` is the int8 setting of the encoders
    (effective on the CPU only)."""
    import torch

    device = _device(device)
    name = "cpu"
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        name = f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if quantize and device.type == "cpu":
        dtype = f"{quantize}-dynamic"
    else:
        dtype = "bf16-autocast" if bf16_autocast(device) else "fp32"
    described = {"device": name, "dtype": dtype, "torch": torch.__version__}
    if device.type == "cpu":
        from bench.infra import batching

        described["threads"] = batching.threads()
    if cpu_runtime(device, quantize) == "openvino":
        from bench.infra import openvino_runtime

        described["runtime"] = f"openvino {openvino_runtime.require()}"
    return described


def peak_memory(device=None) -> dict[str, int | None]:
    """The most memory this process has held so far, in MB: its resident set (``peak_rss_mb``: everything the
    process did, not one step alone) and, on a CUDA device, what torch allocated there (``peak_cuda_mb``)."""
    import resource
    import sys

    import torch

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux, bytes on macOS
    rss_mb = rss // (1 << 20) if sys.platform == "darwin" else rss // 1024
    device = device if isinstance(device, torch.device) else resolve(device)
    cuda_mb = torch.cuda.max_memory_allocated(device) // (1 << 20) if device.type == "cuda" else None
    return {"peak_rss_mb": int(rss_mb), "peak_cuda_mb": None if cuda_mb is None else int(cuda_mb)}


def _device(device):
    """A torch device from None (:func:`resolve`'s), a spec (checked by :func:`resolve`) or a device."""
    return resolve(device) if device is None or isinstance(device, str) else device
