"""Where bench keeps things: BENCH_HOME, the offline mirror, verified downloads, atomic artifacts.

Public data files are declared as data (:class:`RemoteFile`: repository, commit, path, sha256,
licence). :func:`fetch` reads one from its public URL, or, when ``BENCH_MIRROR`` is set, from a mirror
directory laid out as ``<owner>+<name>/<path upstream>``; either way the bytes are verified against
the declared sha256 before they are renamed into the cache, so a bad copy never lands.

Expensive artifacts (indexes, embeddings, checkpoints) live in ``BENCH_HOME/<kind>/<fingerprint>``,
built in a temporary sibling and renamed into place with a completion marker (:func:`artifact_dir`):
an interrupted build leaves nothing that looks finished, and a changed input gets a new fingerprint.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from bench.errors import BenchError

log = logging.getLogger(__name__)

COMPLETE_MARKER = ".complete"
DOWNLOAD_TIMEOUT_S = 60
MIRROR_HINT = (
    "set BENCH_MIRROR to a mirror directory (e.g. ../shared/mirror), or build one with "
    "`bench fetch --pair PAIR --to DIR` on a machine with internet"
)


def bench_home() -> Path:
    return Path(os.environ.get("BENCH_HOME") or Path.home() / ".cache" / "bench").expanduser()


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


def fetch(remote: RemoteFile) -> Path:
    """Return a local, sha256-verified copy of ``remote`` (cache, then mirror or URL)."""
    target = cached_path(remote)
    if target.exists():
        return target
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
        with opener() as stream, atomic_file(target) as tmp:
            digest = _copy_hashing(stream, tmp)
            if digest != remote.sha256:
                raise BenchError(
                    f"sha256 mismatch for {origin}: expected {remote.sha256}, got {digest}; refused it",
                    "the copy is corrupt or another version: replace it with the file at " + remote.url,
                )
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BenchError(f"cannot download {remote.url}: {reason}", MIRROR_HINT) from exc
    return target


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


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it into place only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file ordinary permissions
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; on success mark it complete and rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        (tmp / COMPLETE_MARKER).write_text("")
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        if path.exists():  # an unfinished or stale copy: replace it
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def is_complete(path: Path) -> bool:
    return (path / COMPLETE_MARKER).exists()


def artifact_dir(kind: str, key: dict[str, Any]) -> Path:
    """The cache directory of an artifact of ``kind`` determined by ``key`` (fingerprinted)."""
    return bench_home() / kind / fingerprint(key)


def cached_build(kind: str, key: dict[str, Any], build: Callable[[Path], None]) -> Path:
    """Return the complete artifact for ``key``, building it with ``build(tmp_dir)`` when missing.

    ``key.json`` is written beside the artifact so a cache entry says what it was made from.
    """
    path = artifact_dir(kind, key)
    if is_complete(path):
        log.debug("reusing %s %s", kind, path.name)
        return path
    with atomic_dir(path) as tmp:
        (tmp / "key.json").write_text(canonical_json(key))
        build(tmp)
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
