"""How fast this machine builds things, measured as it builds them: ``BENCH_HOME/rates.json``.

A builder wraps the function that builds an artifact in :func:`timed`, with the name of the stage and
the number of items the build processes (``cached_build("indexes", key, timed("lucene-index", docs,
build))``): each time the artifact is built, those items and the seconds the build took are added to
this host's totals under that name for the execution settings it ran with (:func:`execution`: the
device, and on the CPU the threads and the encoders' runtime), so the rate is items per second over
every build measured here with the same settings: a one-thread training of a queue never stands for a
two-thread run, a GPU's for the CPU's, or OpenVINO's encoding for torch's.
The names are the kinds of the needs a plan lists (:mod:`bench.systems.needs`), whose estimate reads
the rates (:func:`measured`; :mod:`bench.experiment.estimate`). Time spent in a timed build nested in
another (the MT model's source states, built by its training on first use) counts for the inner one
only. A build shorter than :data:`MIN_SECONDS` is not recorded: its start-up (a JVM, a model loaded)
would pass for its rate. A training that resumes from a saved state says so (:func:`resumed_at`): only
the items it did in this process count, over this process's seconds.

Recording is best effort: a BENCH_HOME that cannot be written never fails a build, and a file that
cannot be read counts as no measurement (so does a file of an earlier version, whose rates did not say
what they ran with: the next measurement replaces it). Two processes recording at once may lose one of the two
measurements, never the file (it is replaced atomically).
"""

from __future__ import annotations

import json
import logging
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from bench.errors import BenchError
from bench.infra.store import atomic_file, bench_home

log = logging.getLogger(__name__)

RATES_FILE = "rates.json"
VERSION = 2  # hosts -> execution settings -> stage; version 1 (no "version"): hosts -> stage
MIN_SECONDS = 5.0  # shorter builds are not recorded
_HOST = socket.gethostname()


@dataclass
class _Running:
    """A timed build running in this process: seconds of timed builds nested in it, items done before a resume."""

    inner_seconds: float = 0.0
    skipped: int = 0


_running: list[_Running] = []  # the timed builds running in this process, innermost last


@dataclass(frozen=True)
class Rate:
    """Items built in ``seconds`` on this host, over every build measured."""

    items: float
    seconds: float

    @property
    def per_second(self) -> float:
        return self.items / self.seconds


def rates_path() -> Path:
    return bench_home() / RATES_FILE


def execution() -> str:
    """The settings a build's speed depends on besides the host, in words: the device (a GPU by its name), and on
    the CPU the threads and what runs the encoders (``"cpu, 2 threads, torch"``); read from the environment, as
    the builders read them (:mod:`bench.infra.devices`, :mod:`bench.infra.batching`)."""
    from bench.infra import batching, devices

    device = devices.resolve()
    if device.type != "cpu":
        return devices.describe(device)["device"]
    threads = batching.threads()
    return f"cpu, {threads} thread{'' if threads == 1 else 's'}, {devices.cpu_runtime(device)}"


def timed(name: str, items: int, build: Callable[..., Any]) -> Callable[..., Any]:
    """``build`` measured: when it returns, ``items`` in its own seconds (without timed builds nested in it)
    are recorded under ``name`` (less the items done before a resume: :func:`resumed_at`); a build that
    raises records nothing."""

    def run(*args, **kwargs):
        began = time.monotonic()
        _running.append(_Running())
        try:
            result = build(*args, **kwargs)
        finally:
            this = _running.pop()
            elapsed = time.monotonic() - began
            if _running:
                _running[-1].inner_seconds += elapsed
        record(name, items - this.skipped, elapsed - this.inner_seconds)
        return result

    return run


def resumed_at(items: int) -> None:
    """Called by a build that resumes from a saved state: ``items`` of it were done by an earlier process, so
    the innermost :func:`timed` build running records only the rest (nothing outside a timed build)."""
    if _running:
        _running[-1].skipped = int(items)


def record(name: str, items: float, seconds: float) -> None:
    """Add ``items`` built in ``seconds`` to this host's totals for ``name`` (nothing below :data:`MIN_SECONDS`)."""
    if seconds < MIN_SECONDS or items <= 0:
        return
    try:
        settings = execution()
    except BenchError as exc:  # settings a build could not have run with: nothing to record them under
        log.debug("not recording the rate of %s: %s", name, exc)
        return
    data = _read()
    data["version"] = VERSION
    hosts = data.setdefault("hosts", {})
    if not isinstance(hosts.get(_HOST), dict):
        hosts[_HOST] = {}
    if not isinstance(hosts[_HOST].get(settings), dict):
        hosts[_HOST][settings] = {}
    stages = hosts[_HOST][settings]
    old = stages.get(name) if isinstance(stages.get(name), dict) else {}
    before = _rate(old) or Rate(0.0, 0.0)
    stages[name] = {"items": before.items + float(items), "seconds": round(before.seconds + float(seconds), 3),
                    "updated": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    path = rates_path()
    try:
        with atomic_file(path) as tmp:
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    except (OSError, BenchError) as exc:
        log.debug("could not record the rate of %s in %s: %s", name, path, exc)


def measured(name: str) -> Rate | None:
    """The rate of ``name`` measured on this host with this process's execution settings, or None when none was."""
    try:
        settings = execution()
    except BenchError:
        return None
    host = _read().get("hosts", {}).get(_HOST)
    stages = host.get(settings) if isinstance(host, dict) else None
    return _rate(stages.get(name)) if isinstance(stages, dict) else None


def expected(name: str, items: float) -> str:
    """``", about N min at the rate measured here (cpu, 2 threads, torch)"``: how long ``items`` of ``name`` take at
    its :func:`measured` rate, as a clause a warning about a long build ends with; ``""`` where none is measured."""
    rate = measured(name)
    if rate is None:
        return ""
    return f", about {items / rate.per_second / 60:,.0f} min at the rate measured here ({execution()})"


def _rate(entry: Any) -> Rate | None:
    if not isinstance(entry, dict):
        return None
    items, seconds = entry.get("items"), entry.get("seconds")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in (items, seconds)):
        return None
    return Rate(float(items), float(seconds))


def _read() -> dict:
    path = rates_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.debug("ignoring %s: %s", path, exc)
        return {}
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("hosts", {}), dict):
        return {}
    return data
