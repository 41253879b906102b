"""bench's environment variables, each declared once: its name, what it takes, and how a value is read.

The modules that use a variable read it through :func:`number` (or, for paths and device specs, check
it through :func:`check_environment`), and the command line and :func:`bench.run` call
:func:`check_environment` before any work, so a mistyped value is one line naming the variable and
what it expects, never a failure hours later (or only once a lock is taken).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench.errors import BenchError

# what may run the encoders on the CPU (BENCH_CPU_RUNTIME, read by bench.infra.devices); the first is the default
CPU_RUNTIMES = ("torch", "openvino")


@dataclass(frozen=True)
class Variable:
    name: str
    expects: str  # what a value must be, in words (the error's hint)
    parse: Callable[[str], object]  # the value, or ValueError


def _positive_int(text: str) -> int:
    value = int(text.strip())
    if value < 1:
        raise ValueError(text)
    return value


def _positive_float(text: str) -> float:
    value = float(text.strip())
    if not value > 0 or value == float("inf"):
        raise ValueError(text)
    return value


def _directory(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_dir():
        raise ValueError(text)
    return path


def _any_path(text: str) -> Path:
    if not text.strip():
        raise ValueError(text)
    return Path(text).expanduser()


def _device(text: str) -> str:
    spec = text.strip().lower()
    if spec not in ("auto", "cpu", "cuda") and not (spec.startswith("cuda:") and spec[5:].isdigit()):
        raise ValueError(text)
    return spec


def _cpu_runtime(text: str) -> str:
    runtime = text.strip().lower()
    if runtime not in CPU_RUNTIMES:
        raise ValueError(text)
    return runtime


VARIABLES = {v.name: v for v in (
    Variable("BENCH_HOME", "a directory bench may write (default ~/.cache/bench)", _any_path),
    Variable("BENCH_MIRROR", "an existing mirror directory (see the README's Offline use)", _directory),
    Variable("BENCH_THREADS", "a positive integer (CPU threads)", _positive_int),
    Variable("BENCH_LOCK_STALE_S", "a positive number of seconds", _positive_float),
    Variable("BENCH_STOP_GRACE_S", "a positive number of seconds", _positive_float),
    Variable("BENCH_DEVICE", "auto, cpu, cuda or cuda:N", _device),
    Variable("BENCH_BATCH_TOKENS", "a positive integer (padded tokens per inference batch)", _positive_int),
    Variable("BENCH_CPU_RUNTIME", f"{' or '.join(CPU_RUNTIMES)} (what runs the encoders on the CPU)", _cpu_runtime),
)}


def read(name: str):
    """The parsed value of the variable ``name``, None when it is unset or empty; a bad value is an error
    naming the variable and what it takes."""
    variable = VARIABLES[name]
    text = os.environ.get(name, "")
    if not text.strip():
        return None
    try:
        return variable.parse(text)
    except (ValueError, TypeError, OverflowError):
        raise BenchError(f"{name}={text!r} is not valid: it must be {variable.expects}",
                         f"fix or unset {name}") from None


def number(name: str, default: float):
    """A numeric variable's value, or ``default`` when it is unset."""
    value = read(name)
    return default if value is None else value


def check_environment() -> None:
    """Every BENCH_* variable that is set, checked now (before any work)."""
    for name in VARIABLES:
        read(name)
