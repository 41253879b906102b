"""Public data files: declared as data, read from their URL or an offline mirror, verified, cached.

A file is a :class:`RemoteFile` (repository, commit, path, sha256, licence). :func:`fetch` reads one from its
public URL, or, when ``BENCH_MIRROR`` is set, from a mirror directory laid out as ``<owner>+<name>/<path
upstream>``; either way the bytes are verified against the declared sha256 before they are renamed into
``BENCH_HOME/downloads``, so a bad copy never lands. A cached copy is verified again on every :func:`fetch`
(:func:`bench.infra.digests.cached_sha256`); a corrupt one is removed and fetched again. The copy is made
under the file's build lock (:mod:`bench.infra.locks`), so processes sharing one BENCH_HOME fetch it once;
under :func:`bench.infra.store.probing` nothing is fetched. :func:`export_mirror` writes such a mirror.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from bench.errors import BenchError
from bench.infra.digests import cached_sha256, rehashed_sha256, remember_sha256, sha256_file
from bench.infra.locks import build_lock
from bench.infra.store import atomic_file, bench_home, raise_if_probing

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 60
MIRROR_HINT = (
    "set BENCH_MIRROR to a mirror directory (e.g. ../shared/mirror), or build one with "
    "`bench fetch --pair PAIR --to DIR` on a machine with internet"
)


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
    digest = rehashed_sha256(target) if rehash else cached_sha256(target)
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
    remember_sha256(target, digest)


def _copy_hashing(stream, path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
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
