"""The sha256 of a file, remembered while the file does not change.

:func:`cached_sha256` hashes a file again only when its stamp (size, mtime, ctime, inode, device) changed:
the value is kept under ``BENCH_HOME/sha256/<fingerprint of the stamp>``, so a large file that did not change
is hashed once, and one that changed in any way is always hashed again. Downloads verify their cached copies
with it (:mod:`bench.infra.downloads`); collections and bitext name their local sources by it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

from bench.infra.store import atomic_file, bench_home, fingerprint

log = logging.getLogger(__name__)


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
    return rehashed_sha256(path)


def rehashed_sha256(path: Path) -> str:
    before = path.stat()
    value = sha256_file(path)
    if _stat_key(path.stat()) == _stat_key(before):  # unchanged while hashed: remember it
        remember_sha256(path, value)
    return value


def _stat_key(st: os.stat_result) -> tuple:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev


def _stamp(path: Path, st: os.stat_result) -> Path:
    size, mtime, ctime, ino, dev = _stat_key(st)
    key = {"path": str(path), "size": size, "mtime": mtime, "ctime": ctime, "ino": ino, "dev": dev}
    return bench_home() / "sha256" / fingerprint(key)


def remember_sha256(path: Path, value: str) -> None:
    path = Path(path).resolve()
    try:
        with atomic_file(_stamp(path, path.stat())) as tmp:
            tmp.write_text(value)
    except OSError as exc:  # a read-only BENCH_HOME: verify again next time
        log.debug("cannot remember the sha256 of %s: %s", path, exc)
