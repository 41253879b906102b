"""Build locks: one builder per artifact, across processes and hosts sharing a BENCH_HOME.

:func:`build_lock` holds ``<artifact>.lock``, a file made with ``O_CREAT | O_EXCL`` (atomic on a local
disk and on NFS v3 and later, where ``flock`` may be missing or host-local). It holds JSON naming its
owner: host, pid, the process's start time (clock ticks since boot, from ``/proc/<pid>/stat``, so a
reused pid is not taken for the owner; :func:`bench.infra.processes.process_alive` judges it), the boot
id, when it was made and a random token. While it is held a daemon thread touches it every few seconds
(the heartbeat).

A waiter polls, logs once (INFO) who it waits for, and stops at once on SIGINT/SIGTERM
(:func:`bench.infra.interrupts.raise_if_stopping`). A wait is never silent: after :data:`WAIT_WARN_S` it
says at WARNING (shown by default) who holds the lock, since when, when bench will take it over, and how
to break it by hand (the lock file's path and the command that removes it once its holder is gone);
then again every :data:`WAIT_REPEAT_S` with the time waited so far.

A waiter breaks a stale lock, judged by one rule (:func:`stale_reason`):

- a lock of its own host that names a pid and that process's start time is stale when that process is
  dead (or its pid now runs another process, or the host rebooted); while it runs it is waited for;
- any other lock is judged by its heartbeat alone: it is stale once the heartbeat is older than the
  stale timeout (``BENCH_LOCK_STALE_S``, 60 s; the hosts' clocks must agree to within it). That is a lock
  of another host, and a lock whose owner cannot be identified: an unreadable or damaged file, or a
  record of this host without an integer pid or without the start time (a live pid alone does not prove
  it is the owner: pids are reused). A record of this host whose pid is not running is stale at once.

So a lock is waited on only while its identified owner runs, or while its heartbeat goes on. Breaking is
serialised by a second ``O_EXCL`` file, ``<artifact>.lock.break``: only its holder may remove the lock,
after judging it stale once more, so two waiters never both win.
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
import shlex
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

STALE_S = 60.0  # default heartbeat age after which a lock judged by its heartbeat is stale
BREAK_STALE_S = 10.0  # a .break file this old was left by a breaker that died
POLL_S = 0.2
WAIT_WARN_S = 5.0  # a waiter says at WARNING who it waits for once it has waited this long
WAIT_REPEAT_S = 60.0  # ... and again every this many seconds of waiting
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


def _local_owner(record: dict | None) -> tuple[int, int | None] | None:
    """(pid, start time or None) of an owner record of this host naming an integer pid; None otherwise."""
    if record is None or record.get("host") != HOST:
        return None
    pid, start = record.get("pid"), record.get("start")
    if type(pid) is not int:
        return None
    return pid, (start if type(start) is int else None)


def _identified(record: dict | None) -> bool:
    """Whether the owner is a process of this host that can be checked: a pid and its start time."""
    local = _local_owner(record)
    return local is not None and local[1] is not None


def stale_reason(record: dict | None, age: float, stale_s: float) -> str | None:
    """Why a lock with this owner record and heartbeat age is stale, or None while its owner holds it.

    The rule (the module's docstring): an identified owner of this host (pid and start time) holds it
    while that process runs; every other lock holds while its heartbeat is younger than ``stale_s``."""
    local = _local_owner(record)
    if local is not None:
        pid, start = local
        if not process_alive(pid, start=start, boot=record.get("boot")):
            return f"pid {pid} is not running"
        if start is not None:
            return None
    return f"no heartbeat for {age:.0f} s" if age > stale_s else None


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


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _waiting_line(what: str, lock: Path, record: dict | None, age: float, waited: float, stale_s: float) -> str:
    """The WARNING of a waiter: who holds ``lock``, since when, when bench takes it over, how to break it."""
    remove = f"rm {shlex.quote(str(lock))}"
    if record is None:
        return (f"waiting {_duration(waited)} for {what}: its lock {lock} names no owner (unreadable), "
                f"last heartbeat {_duration(age)} ago; bench takes it over once the heartbeat is older than "
                f"{stale_s:g} s (BENCH_LOCK_STALE_S). To break it now, if no process builds {what}: {remove}")
    pid, host = record.get("pid", "?"), record.get("host", "?")
    created = record.get("created")
    since = "since an unknown time"
    if isinstance(created, (int, float)):
        since = (f"since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(created))} "
                 f"({_duration(time.time() - created)} ago)")
    if _identified(record):
        rule = "bench waits as long as that process runs"
    elif host == HOST:
        rule = (f"the lock does not identify its process (pid and start time), so bench takes it over once "
                f"the heartbeat is older than {stale_s:g} s (BENCH_LOCK_STALE_S)")
    else:
        rule = f"bench takes it over once the heartbeat is older than {stale_s:g} s (BENCH_LOCK_STALE_S)"
    return (f"waiting {_duration(waited)} for {what}: its lock {lock} is held by pid {pid} on host {host} "
            f"{since}, last heartbeat {_duration(age)} ago; {rule}. If that process is gone "
            f"(on {host}: ps -p {pid}), break the lock: {remove}")


def _acquire(lock: Path, what: str, stale_s: float, poll_s: float) -> dict:
    owner = _owner(what)
    said = None
    started, warn_at = time.monotonic(), WAIT_WARN_S
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
        waited = time.monotonic() - started
        if waited >= warn_at:  # once, then every WAIT_REPEAT_S: never a silent wait, never a line per poll
            log.warning("%s", _waiting_line(what, lock, record, age, waited, stale_s))
            warn_at = waited + WAIT_REPEAT_S
        time.sleep(poll_s)


@contextlib.contextmanager
def build_lock(artifact: Path, what: str, *, stale_s: float | None = None,
               poll_s: float = POLL_S) -> Iterator[Path]:
    """Hold the build lock of ``artifact`` (the file ``<artifact>.lock``) for the block; ``what`` names
    it in the waiting lines. ``stale_s``: the heartbeat age that makes a lock judged by its heartbeat (another
    host's, or one whose owner cannot be identified) stale."""
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
