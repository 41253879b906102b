"""Build locks: one builder per artifact, across processes and hosts sharing a BENCH_HOME.

:func:`build_lock` holds ``<artifact>.lock``, a file made with ``O_CREAT | O_EXCL`` (atomic on a local
disk and on NFS v3 and later, where ``flock`` may be missing or host-local). It holds JSON naming its
owner: host, pid, the process's start time (clock ticks since boot, from ``/proc/<pid>/stat``, so a
reused pid is not taken for the owner; :func:`bench.infra.processes.process_alive` judges it), the boot
id, when it was made and a random token. While it is held a daemon thread touches it every few seconds
(the heartbeat).

A waiter polls, logs once who it waits for, and stops at once on SIGINT/SIGTERM
(:func:`bench.infra.interrupts.raise_if_stopping`). It breaks a stale lock: on its own host when the owner
process is dead (or its pid now runs another process, or the host rebooted); from another host when
the heartbeat is older than the stale timeout (``BENCH_LOCK_STALE_S``, 60 s; the hosts' clocks must
agree to within it). Breaking is serialised by a second ``O_EXCL`` file, ``<artifact>.lock.break``:
only its holder may remove the lock, after judging it stale once more, so two waiters never both win.
A ``.break`` file lives for milliseconds; one older than :data:`BREAK_STALE_S` was left by a breaker
that died and is removed.

The lock file is registered like a temporary file (:func:`bench.infra.tempfiles.register_temp`), so a stop
that cannot unwind removes it too; a SIGKILLed owner's lock is broken by the next process that needs it.
Release removes the lock only while it is still this holder's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

from bench.infra import environment
from bench.errors import BenchError
from bench.infra.interrupts import raise_if_stopping
from bench.infra.processes import boot_id, process_alive
from bench.infra.processes import start_ticks as _start_ticks  # the owner record's "start" (tests compare it)
from bench.infra.tempfiles import register_temp, release_temp

log = logging.getLogger(__name__)

STALE_S = 60.0  # default heartbeat age after which another host's lock is stale
BREAK_STALE_S = 10.0  # a .break file this old was left by a breaker that died
POLL_S = 0.2
HOST = socket.gethostname() or "host"


def stale_timeout() -> float:
    return environment.number("BENCH_LOCK_STALE_S", STALE_S)


def lock_path(artifact: Path) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".lock")


def _owner(what: str) -> dict:
    return {"host": HOST, "pid": os.getpid(), "start": _start_ticks(os.getpid()), "boot": boot_id(),
            "created": time.time(), "token": secrets.token_hex(8), "what": what}


def _read(lock: Path) -> tuple[dict | None, float] | None:
    """(the owner record, or None if unreadable yet; the heartbeat's age in s); None if there is no lock."""
    try:
        age = time.time() - lock.stat().st_mtime
        text = lock.read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return None, 0.0
    try:
        record = json.loads(text)
    except ValueError:
        record = None  # being written (or damaged): judged by its age alone
    return (record if isinstance(record, dict) else None), age


def stale_reason(record: dict | None, age: float, stale_s: float) -> str | None:
    """Why a lock with this owner record and heartbeat age is stale, or None while its owner holds it."""
    if record is None or record.get("host") != HOST:
        return f"no heartbeat for {age:.0f} s" if age > stale_s else None
    alive = process_alive(record.get("pid"), start=record.get("start"), boot=record.get("boot"))
    return None if alive else f"pid {record.get('pid')} is not running"


def _create(path: Path, content: str = "") -> bool:
    """Make ``path`` if it does not exist (atomically); False if it exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, content.encode())
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    return True


def _break(lock: Path, stale_s: float) -> bool:
    """Remove ``lock`` if it is (still) stale, holding ``<lock>.break``; True if it was removed."""
    breaker = lock.with_name(lock.name + ".break")
    if not _create(breaker, f"{HOST} {os.getpid()}"):
        with contextlib.suppress(OSError):
            if time.time() - breaker.stat().st_mtime > BREAK_STALE_S:
                log.debug("removing %s, left by a breaker that died", breaker)
                breaker.unlink(missing_ok=True)
        return False
    try:
        seen = _read(lock)
        if seen is None:
            return True  # gone already: the caller creates it again
        reason = stale_reason(*seen, stale_s)
        if reason is None:
            return False
        holder = seen[0] or {}
        log.info("breaking the stale lock %s of pid %s on host %s: %s", lock, holder.get("pid", "?"),
                 holder.get("host", "?"), reason)
        lock.unlink(missing_ok=True)
        return True
    finally:
        breaker.unlink(missing_ok=True)


def _ours(lock: Path, token: str) -> bool:
    seen = _read(lock)
    return seen is not None and seen[0] is not None and seen[0].get("token") == token


def _heartbeat(lock: Path, token: str, every_s: float, done: threading.Event) -> None:
    while not done.wait(every_s):
        if not _ours(lock, token):
            log.warning("the lock %s was broken by another process while this one held it", lock)
            return
        with contextlib.suppress(OSError):
            os.utime(lock)


def _acquire(lock: Path, what: str, stale_s: float, poll_s: float) -> dict:
    owner = _owner(what)
    said = None
    while True:
        raise_if_stopping()
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            made = _create(lock, json.dumps(owner))
        except OSError as exc:
            raise BenchError(f"cannot create the lock {lock}: {exc.strerror or exc}",
                             "check BENCH_HOME (free space, permissions)") from exc
        if made:
            register_temp(lock)
            return owner
        seen = _read(lock)
        if seen is None:
            continue  # released just now: try again at once
        record, age = seen
        if stale_reason(record, age, stale_s) is not None:
            if _break(lock, stale_s):
                continue
        elif record is not None or age > 1:  # (an unreadable lock younger than 1 s is being written)
            holder = (record or {}).get("pid", "?"), (record or {}).get("host", "?")
            if holder != said:
                log.info("waiting for %s: being built by pid %s on host %s", what, *holder)
                said = holder
        time.sleep(poll_s)


@contextlib.contextmanager
def build_lock(artifact: Path, what: str, *, stale_s: float | None = None,
               poll_s: float = POLL_S) -> Iterator[Path]:
    """Hold the build lock of ``artifact`` (the file ``<artifact>.lock``) for the block; ``what`` names
    it in the waiting line. ``stale_s``: the heartbeat age that makes another host's lock stale."""
    stale_s = stale_timeout() if stale_s is None else stale_s
    lock = lock_path(artifact)
    owner = _acquire(lock, what, stale_s, poll_s)
    done = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(lock, owner["token"], max(0.05, min(5.0, stale_s / 4)), done),
                            name=f"bench-lock-heartbeat-{lock.name}", daemon=True)
    try:
        beat.start()
        yield lock
    finally:
        done.set()
        if _ours(lock, owner["token"]):
            lock.unlink(missing_ok=True)
        release_temp(lock)
