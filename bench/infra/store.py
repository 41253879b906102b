"""Where bench keeps things: BENCH_HOME, the offline mirror, verified downloads, atomic artifacts.

Public data files are declared as data (:class:`RemoteFile`: repository, commit, path, sha256,
licence). :func:`fetch` reads one from its public URL, or, when ``BENCH_MIRROR`` is set, from a mirror
directory laid out as ``<owner>+<name>/<path upstream>``; either way the bytes are verified against
the declared sha256 before they are renamed into the cache, so a bad copy never lands.

Expensive artifacts (indexes, embeddings, checkpoints) live in ``BENCH_HOME/<kind>/<fingerprint>``,
built in a temporary sibling and renamed into place with a completion marker (:func:`artifact_dir`):
an interrupted build leaves nothing that looks finished, and a changed input gets a new fingerprint. A
directory written again (a run stored anew) is swapped with the older one in one step where Linux's
``renameat2`` allows, so a reader or a killed writer finds one or the other whole, never neither.
A build (and a download into the cache) holds the artifact's lock (:mod:`bench.infra.locks`), so processes
and hosts sharing one BENCH_HOME build each artifact once: the others wait, then reuse it. Under
:func:`probing` a builder builds and fetches nothing: it gets what is there, or :class:`NotBuilt`.

Nothing on disk is trusted where it is used: a cached download is verified again on every
:func:`fetch` (:func:`cached_sha256`: the sha256 is remembered under a stamp of the file's size,
mtime, ctime and inode, so an unchanged file is not hashed again and a changed one always is); a
corrupt copy is removed and fetched again. Temporary files and directories are named
``.<name>.<host>-<pid>.<random>.tmp``: while they exist they are registered (:func:`live_temps`, for
a stop that cannot unwind), and one whose process is dead is removed by the next writer of the same
name or by :func:`sweep_stale_temps`.
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
import re
import secrets
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from bench.errors import BenchError
from bench.infra.interrupts import raise_if_stopping
from bench.infra.locks import build_lock
from bench.infra.tempfiles import clean_stale_temps, register_temp, release_temp, temp_prefix

log = logging.getLogger(__name__)

COMPLETE_MARKER = ".complete"
DOWNLOAD_TIMEOUT_S = 60
MIRROR_HINT = (
    "set BENCH_MIRROR to a mirror directory (e.g. ../shared/mirror), or build one with "
    "`bench fetch --pair PAIR --to DIR` on a machine with internet"
)


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


def mirror_dir() -> Path | None:
    value = os.environ.get("BENCH_MIRROR")
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise BenchError(f"BENCH_MIRROR={value} is not a directory", "point it at a mirror directory or unset it")
    return path


@dataclass(frozen=True)
class RemoteFile:
    """A public file pinned to a commit of a GitHub repository, with its expected sha256."""

    repo: str
    commit: str
    path: str
    sha256: str
    license: str
    size: int | None = None

    @property
    def url(self) -> str:
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{self.path}"

    @property
    def mirror_path(self) -> str:
        return f"{self.repo.replace('/', '+')}/{self.path}"

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def cached_path(remote: RemoteFile) -> Path:
    return bench_home() / "downloads" / remote.sha256[:16] / remote.name


def is_available(remote: RemoteFile) -> bool:
    """True when the file is cached or can be read from the mirror (without touching the network)."""
    if cached_path(remote).exists():
        return True
    mirror = mirror_dir()
    return mirror is not None and (mirror / remote.mirror_path).is_file()


def fetch(remote: RemoteFile, *, rehash: bool = False) -> Path:
    """Return a local copy of ``remote`` verified now (cache, else mirror or URL).

    A cached copy is verified against its sha256 on every call (hashed again only when its stamp
    changed, or always with ``rehash``); a corrupt one is removed, with a warning, and fetched again.
    The copy is made under the file's build lock: processes that need it at once fetch it once."""
    target = cached_path(remote)
    if _verified(target, remote, rehash, remove=False):
        return target
    raise_if_probing(f"download {remote.name}")
    with build_lock(target, f"download {remote.name}"):
        if not _verified(target, remote, rehash, remove=True):  # else fetched by another process meanwhile
            _download(remote, target)
    return target


def _verified(target: Path, remote: RemoteFile, rehash: bool, remove: bool) -> bool:
    """Whether the cached copy is there with the right sha256 (``remove``: a corrupt one, with a warning)."""
    if not target.is_file():
        return False
    digest = _rehash(target) if rehash else cached_sha256(target)
    if digest == remote.sha256:
        return True
    if remove:
        log.warning("%s is corrupt (sha256 %s, expected %s): removed it, fetching it again",
                    target, digest[:12], remote.sha256[:12])
        target.unlink(missing_ok=True)
    return False


def _download(remote: RemoteFile, target: Path) -> None:
    mirror = mirror_dir()
    if mirror is not None:
        source = mirror / remote.mirror_path
        if not source.is_file():
            raise BenchError(
                f"{remote.mirror_path} is missing from the mirror {mirror}",
                f"add it from {remote.url}, or build a complete mirror with `bench fetch --pair PAIR --to DIR`",
            )
        log.info("reading %s from the mirror", remote.mirror_path)
        opener: Callable[[], Any] = lambda: open(source, "rb")  # noqa: E731
        origin = str(source)
    else:
        log.info("downloading %s", remote.url)
        opener = lambda: urllib.request.urlopen(remote.url, timeout=DOWNLOAD_TIMEOUT_S)  # noqa: E731
        origin = remote.url
    try:
        stream = opener()
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BenchError(f"cannot download {remote.url}: {reason}", MIRROR_HINT) from exc
    with stream:
        try:
            with atomic_file(target) as tmp:
                digest = _copy_hashing(stream, tmp)
                if digest != remote.sha256:
                    raise BenchError(
                        f"sha256 mismatch for {origin}: expected {remote.sha256}, got {digest}; refused it",
                        "the copy is corrupt or another version: replace it with the file at " + remote.url,
                    )
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise BenchError(f"cannot download {remote.url}: {getattr(exc, 'reason', exc)}", MIRROR_HINT) from exc
        except OSError as exc:
            raise BenchError(f"cannot write {target}: {exc.strerror or exc}",
                             "check BENCH_HOME (free space, permissions)") from exc
    _write_stamp(target, digest)


def _copy_hashing(stream, path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def cached_sha256(path: Path) -> str:
    """sha256 of a file, hashed again whenever its stamp (size, mtime, ctime, inode) changed; the value
    is remembered under BENCH_HOME/sha256, so big files that did not change are hashed once."""
    path = Path(path).resolve()
    stamp = _stamp(path, path.stat())
    try:
        value = stamp.read_text().strip()
        if re.fullmatch(r"[0-9a-f]{64}", value):
            return value
    except OSError:
        pass
    return _rehash(path)


def _rehash(path: Path) -> str:
    before = path.stat()
    value = sha256_file(path)
    if _stat_key(path.stat()) == _stat_key(before):  # unchanged while hashed: remember it
        _write_stamp(path, value)
    return value


def _stat_key(st: os.stat_result) -> tuple:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev


def _stamp(path: Path, st: os.stat_result) -> Path:
    size, mtime, ctime, ino, dev = _stat_key(st)
    key = {"path": str(path), "size": size, "mtime": mtime, "ctime": ctime, "ino": ino, "dev": dev}
    return bench_home() / "sha256" / fingerprint(key)


def _write_stamp(path: Path, value: str) -> None:
    path = Path(path).resolve()
    try:
        with atomic_file(_stamp(path, path.stat())) as tmp:
            tmp.write_text(value)
    except OSError as exc:  # a read-only BENCH_HOME: verify again next time
        log.debug("cannot remember the sha256 of %s: %s", path, exc)


def export_mirror(remotes: Iterable[RemoteFile], to_dir: Path) -> list[Path]:
    """Write ``remotes`` into ``to_dir`` laid out like ``../shared/mirror``, with a MANIFEST.tsv."""
    to_dir.mkdir(parents=True, exist_ok=True)
    written = []
    rows = {}
    manifest = to_dir / "MANIFEST.tsv"
    if manifest.exists():
        for line in manifest.read_text().splitlines()[1:]:
            rows[line.split("\t", 1)[0]] = line
    for remote in remotes:
        local = fetch(remote)
        dest = to_dir / remote.mirror_path
        if not dest.exists() or sha256_file(dest) != remote.sha256:
            with atomic_file(dest) as tmp:
                shutil.copyfile(local, tmp)
        written.append(dest)
        rows[remote.mirror_path] = "\t".join(
            [remote.mirror_path, remote.repo, remote.commit, remote.path, remote.sha256,
             str(local.stat().st_size), remote.license]
        )
    header = "path\trepo\tcommit\tupstream_path\tsha256\tbytes\tlicense"
    with atomic_file(manifest) as tmp:
        tmp.write_text("\n".join([header, *rows.values()]) + "\n")
    return written


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
