"""Where bench keeps what it builds: BENCH_HOME, atomic files and directories, cached artifacts.

Expensive artifacts (indexes, embeddings, checkpoints) live in ``BENCH_HOME/<kind>/<fingerprint>``,
built in a temporary sibling and renamed into place with a completion marker (:func:`artifact_dir`):
an interrupted build leaves nothing that looks finished, and a changed input gets a new fingerprint. A
directory written again (a run stored anew) is swapped with the older one in one step where Linux's
``renameat2`` allows, so a reader or a killed writer finds one or the other whole, never neither.
A build holds the artifact's lock (:mod:`bench.infra.locks`), so processes and hosts sharing one
BENCH_HOME build each artifact once: the others wait, then reuse it. Under :func:`probing` a builder
builds (and :func:`bench.infra.downloads.fetch` fetches) nothing: it gets what is there, or :class:`NotBuilt`.

Temporary files and directories are named ``.<name>.<host>-<pid>.<random>.tmp``: while they exist they are
registered (:mod:`bench.infra.tempfiles`, for a stop that cannot unwind), and one whose process is dead is
removed by the next writer of the same name. A full disk while writing becomes one error naming where.
Public data files and their verified downloads are :mod:`bench.infra.downloads`; file hashes remembered
across calls are :mod:`bench.infra.digests`.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import errno
import functools
import hashlib
import json
import logging
import os
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterator

from bench.errors import BenchError
from bench.infra.interrupts import raise_if_stopping
from bench.infra.locks import build_lock
from bench.infra.tempfiles import clean_stale_temps, register_temp, release_temp, temp_prefix

log = logging.getLogger(__name__)

COMPLETE_MARKER = ".complete"


def bench_home() -> Path:
    home = Path(os.environ.get("BENCH_HOME") or Path.home() / ".cache" / "bench").expanduser()
    if home.exists() and not home.is_dir():
        raise BenchError(f"BENCH_HOME={home} is a file, not a directory",
                         "point BENCH_HOME at a directory, or unset it")
    return home


def check_dir(path: Path, what: str, write: bool = True) -> None:
    """Refuse, before any work, a directory option that names a file, or (``write``) that cannot be
    created or written."""
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        where = "is a file" if existing == path else f"is inside {existing}, which is a file"
        raise BenchError(f"{what} {path} {where}, not a directory", f"give a directory for {what}")
    if write and not os.access(existing, os.W_OK | os.X_OK):
        raise BenchError(f"{what} {path}: cannot write to {existing}", f"give a writable directory for {what}")


FULL_DISK = (errno.ENOSPC, errno.EDQUOT)
FULL_DISK_HINT = "free some space there, or point BENCH_HOME, --runs or --reports at another disk"


def full_disk_error(where: Path, writing: str) -> BenchError:
    """The one error of a full disk (or quota): the directory whose device is full, and what was being written."""
    return BenchError(f"no space left on the device of {where} (writing {writing})", FULL_DISK_HINT)


def says_disk_full(text: str) -> bool:
    """Whether ``text`` (another program's message, such as Java's) reports a full disk or quota, in the
    system's own words for :data:`FULL_DISK`."""
    return any(os.strerror(code) in text for code in FULL_DISK)


@contextlib.contextmanager
def disk_full_named(path: Path) -> Iterator[None]:
    """A full disk (or quota) while ``path`` is written becomes one error naming where, not an ``OSError``
    naming no path; the atomic writers then remove what was half-written."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in FULL_DISK:
            raise
        raise full_disk_error(Path(path).parent, Path(path).name) from None


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it into place only if the block succeeds."""
    raise_if_stopping()
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(path.parent, path.name)
    fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    register_temp(tmp)
    try:
        with disk_full_named(path):
            yield tmp
            raise_if_stopping()  # nothing is committed after a stop
            if tmp.exists():
                os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file ordinary permissions
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        release_temp(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; on success mark it complete and rename it."""
    raise_if_stopping()
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(path.parent, path.name)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent))
    register_temp(tmp)
    try:
        with disk_full_named(path):
            yield tmp
            raise_if_stopping()  # nothing is committed after a stop
            (tmp / COMPLETE_MARKER).write_text("")
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
            _replace_dir(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        release_temp(tmp)


def _replace_dir(tmp: Path, path: Path) -> None:
    """Put ``tmp`` at ``path``. A directory already there (an older run, an unfinished or stale copy, or the
    same result that another process finished just now) is swapped with ``tmp`` in one step where the system
    can (:func:`_exchange`), so a reader, or a process killed meanwhile, finds the old directory or the new
    one, never none; the old one is then at ``tmp``, for the caller to remove. Elsewhere it is first
    renamed aside whole, then removed."""
    for _ in range(20):
        if path.exists():
            if _exchange(tmp, path):
                return
            aside = path.parent / f"{temp_prefix(path)}{secrets.token_hex(6)}.tmp"
            register_temp(aside)
            with contextlib.suppress(FileNotFoundError):  # else another process moved it first
                os.rename(path, aside)
            shutil.rmtree(aside, ignore_errors=True)
            release_temp(aside)
        try:
            os.replace(tmp, path)
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):  # else another process renamed its copy in
                raise
    raise OSError(errno.EEXIST, f"{path} keeps being replaced by other processes")


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2  # Linux's <fcntl.h> and <linux/fs.h>


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    """Linux's renameat2(2) from the C library (glibc 2.28 and later), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _exchange(a: Path, b: Path) -> bool:
    """Swap the entries ``a`` and ``b`` atomically (renameat2 with RENAME_EXCHANGE); False where the system or
    the file system cannot (or ``b`` has gone meanwhile)."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOENT):
        return False
    raise OSError(code, os.strerror(code), str(b))


def is_complete(path: Path) -> bool:
    return (path / COMPLETE_MARKER).exists()


def artifact_dir(kind: str, key: dict[str, Any]) -> Path:
    """The cache directory of an artifact of ``kind`` determined by ``key`` (fingerprinted)."""
    return bench_home() / kind / fingerprint(key)


class NotBuilt(Exception):
    """Raised under :func:`probing` where an artifact or a download would be made: it is not there yet."""


_probing: contextvars.ContextVar[bool] = contextvars.ContextVar("probing", default=False)


@contextlib.contextmanager
def probing() -> Iterator[None]:
    """Inside this block :func:`cached_build` and :func:`fetch` return what is there already and raise
    :class:`NotBuilt` instead of building or downloading anything: whether a builder would build (a
    plan's estimate: what is cached costs nothing)."""
    token = _probing.set(True)
    try:
        yield
    finally:
        _probing.reset(token)


def raise_if_probing(what: str) -> None:
    """For a builder about to prepare a build (load its models) before it calls :func:`cached_build`: under
    :func:`probing`, :class:`NotBuilt` now, before that work."""
    if _probing.get():
        raise NotBuilt(what)


def cached_build(kind: str, key: dict[str, Any], build: Callable[[Path], None]) -> Path:
    """Return the complete artifact for ``key``, building it with ``build(tmp_dir)`` when missing.

    ``key.json`` is written beside the artifact so a cache entry says what it was made from. The build
    runs under the artifact's lock (:mod:`bench.infra.locks`): a process (or worker on another host) that needs
    it meanwhile waits, then reuses it.
    """
    path = artifact_dir(kind, key)
    if is_complete(path):
        log.debug("reusing %s %s", kind, path.name)
        return path
    raise_if_probing(f"{kind} {path.name}")
    with build_lock(path, f"{kind} {path.name}"):
        if is_complete(path):
            log.info("reusing %s %s, built by another process meanwhile", kind, path.name)
            return path
        started = time.monotonic()
        with atomic_dir(path) as tmp:
            (tmp / "key.json").write_text(canonical_json(key))
            build(tmp)
        log.info("built %s %s in %.1f s", kind, path.name, time.monotonic() - started)
    return path


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_jsonable)


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot fingerprint {type(obj).__name__}")


def fingerprint(obj: Any, length: int = 16) -> str:
    """A short, stable hash of a JSON-able description (dict keys sorted)."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:length]
