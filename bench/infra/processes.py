"""Whether a process of this host still runs: the one liveness check of build locks
(:mod:`bench.infra.locks`) and temporary files (:mod:`bench.infra.tempfiles`).

A pid alone does not say it: the process may have died and the pid been reused, or it may be a zombie.
:func:`process_alive` asks ``/proc`` (where there is none, it trusts the pid) and, given what the owner
recorded, checks that the pid still runs that very process: its start time (:func:`start_ticks`), the
boot it ran in (:func:`boot_id`), or that it started before something it made last changed.
"""

from __future__ import annotations

import os
from pathlib import Path

STARTED_SLACK_S = 2.0  # a process started this much after an entry's last change may still have made it


def start_ticks(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (None: no such process, or no /proc)."""
    try:
        return _ticks(_stat(pid))
    except (OSError, IndexError):
        return None


def boot_id() -> str | None:
    """This boot of the host (None: no /proc)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _ticks(fields: list[str]) -> int | None:
    """The start time (clock ticks since boot) in the fields of a ``/proc/<pid>/stat``."""
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _boot_time() -> float:
    """When this host booted (epoch s)."""
    return next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                if line.startswith("btime "))


def process_alive(pid: int, *, start: int | None = None, boot: str | None = None,
                  active_at: float | None = None) -> bool:
    """Whether ``pid`` runs, on this host, the process its owner record names.

    ``start``: the process's start time as :func:`start_ticks` gave it (another one: the pid was reused);
    ``boot``: :func:`boot_id` when it was recorded (another one: the host rebooted since);
    ``active_at``: a time (epoch s) when the process was running, such as the last change of an entry it
    made (a process started after it only reuses the pid). A zombie has finished.
    """
    if not isinstance(pid, int):
        return False
    if boot:
        now = boot_id()
        if now and now != boot:
            return False  # the host rebooted since
    if pid == os.getpid() and start is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    try:
        fields = _stat(pid)
        state = fields[0]
        if active_at is not None:
            started = _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, StopIteration, ValueError):
        return True  # no /proc to ask: trust the pid
    if state == "Z":
        return False
    if start is not None and _ticks(fields) != start:
        return False
    return active_at is None or started <= active_at + STARTED_SLACK_S
