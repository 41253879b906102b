"""Temporary files and directories: who made them, which are being written, which were abandoned.

:func:`bench.infra.store.atomic_file` and :func:`bench.infra.store.atomic_dir` write next to their target under a
name that says which process made it: ``.<name>.<host>-<pid>.<random>.tmp``. While it exists it is
registered here (:func:`live_temps`), so a stop that cannot wait for the stack to unwind still removes
it (:func:`remove_live_temps`, :mod:`bench.infra.interrupts`). One whose process has died (SIGKILL, power
loss) is stale: the next writer of the same name removes it, and :func:`sweep_stale_temps` removes
every one under a root (BENCH_HOME, a runs directory) at the start of a run. A process is alive only
if its pid runs a process that started before the temporary entry last changed (a pid can be reused;
:func:`bench.infra.processes.process_alive`); entries made on another host (a shared BENCH_HOME) are
left alone.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import time
from pathlib import Path

from bench.infra.processes import process_alive

log = logging.getLogger(__name__)

_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:40] or "host"
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")
_LEGACY_TEMP = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")  # made before temp names carried a pid
LEGACY_TEMP_AGE_S = 24 * 3600  # an unowned temp untouched this long is abandoned
_LIVE: set[Path] = set()


def temp_prefix(path: Path) -> str:
    """The prefix of a temporary sibling of ``path`` made by this process (mkstemp adds the rest)."""
    return f".{Path(path).name}.{_HOST}-{os.getpid()}."


def register_temp(tmp: Path) -> None:
    _LIVE.add(Path(tmp))


def release_temp(tmp: Path) -> None:
    _LIVE.discard(Path(tmp))


def live_temps() -> list[Path]:
    """The temporary files and directories this process is writing now."""
    return sorted(_LIVE)


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)


def remove_live_temps() -> None:
    """Remove this process's temporary entries now (for a stop that cannot wait for unwinding)."""
    for tmp in list(_LIVE):
        for _ in range(3):  # another thread may still be writing into it
            _remove(tmp)
            if not tmp.exists():
                break
            time.sleep(0.05)


def is_stale_temp(entry: Path, name: str | None = None) -> bool:
    """Whether ``entry`` is a temporary sibling (of ``name``, if given) whose process has died on this
    host, or an unowned one (made by an older bench) not touched for :data:`LEGACY_TEMP_AGE_S`."""
    entry = Path(entry)
    try:
        mtime = entry.lstat().st_mtime
    except OSError:
        return False
    owned = _TEMP.match(entry.name)
    if owned:
        if name is not None and owned["name"] != name:
            return False
        return owned["host"] == _HOST and not process_alive(int(owned["pid"]), active_at=mtime)
    legacy = _LEGACY_TEMP.match(entry.name)
    if legacy and (name is None or legacy["name"] == name):
        return time.time() - mtime > LEGACY_TEMP_AGE_S
    return False


def clean_stale_temps(directory: Path, name: str | None = None) -> int:
    """Remove the stale temporary entries of ``directory`` (those of ``name`` only, if given)."""
    pattern = ".*.tmp" if name is None else "." + re.sub(r"([*?[])", r"[\1]", name) + ".*.tmp"
    try:
        entries = list(Path(directory).glob(pattern))
    except OSError:
        return 0
    removed = 0
    for entry in entries:
        if entry in _LIVE or not is_stale_temp(entry, name):
            continue
        log.info("removing %s, left behind by a process that was stopped", entry)
        _remove(entry)
        removed += not entry.exists()
    return removed


def sweep_stale_temps(root: Path, depth: int = 2) -> int:
    """Remove stale temporary entries in ``root`` and in its directories down to ``depth`` levels
    (BENCH_HOME/<kind>/<artifact>, runs/<pair>/<system>); returns how many were removed."""
    root = Path(root)
    if not root.is_dir():
        return 0
    removed = clean_stale_temps(root)
    if depth > 0:
        try:
            children = [Path(e.path) for e in os.scandir(root)
                        if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
        except OSError:
            return removed
        for child in children:
            removed += sweep_stale_temps(child, depth - 1)
    return removed
