"""Archived runs: a stored run without its ranking, small enough to commit.

An archive is a folder laid out as a runs folder (``<archive>/<pair>/<run>/``) whose runs keep their
manifest (with its hash) and their per-query values, not their ``run.trec``: about 50 kB a run against 15 MB.
What a table of means, spreads, slopes and paired tests reads of a run is all there, verified as a stored
run is (:func:`bench.results.runs.load_run`: the manifest's hash, then the per-query file's hash recorded in
it), so results computed on one machine outlive it: a sweep given ``--archive`` takes each cell whose
inputs are identical to an archived run's from the archive instead of training it again
(:func:`bench.experiment.identity.archived`), and adds every run it makes. What needs the ranking
itself (fusing runs, the documents above the first relevant one) needs the stored run.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from bench.infra.store import atomic_dir
from bench.results.runs import MANIFEST_FILE, MANIFEST_HASH_FILE, PER_QUERY_FILE, StoredRun, load_run

log = logging.getLogger(__name__)

KEPT = (MANIFEST_FILE, MANIFEST_HASH_FILE, PER_QUERY_FILE)  # what an archived run keeps of a stored run


def archived_dir(archive: Path, pair: str, run: str) -> Path:
    return Path(archive) / pair / run


def load_archived(path: Path) -> StoredRun | None:
    """The archived run at ``path``, verified; None when there is none (or it is incomplete)."""
    return load_run(path, ranking=False) if Path(path).is_dir() else None


def archive_run(stored: StoredRun, archive: Path) -> Path:
    """Add a stored run (verified, with its ranking) to ``archive``, replacing an archived run of the same name in
    one step; return its folder there."""
    target = archived_dir(archive, stored.pair, stored.path.name)
    with atomic_dir(target) as tmp:
        for name in KEPT:
            if (stored.path / name).exists():  # a run written before manifest hashes has no manifest.sha256
                shutil.copyfile(stored.path / name, tmp / name)
    log.info("archived %s/%s in %s", stored.pair, stored.path.name, archive)
    return target
