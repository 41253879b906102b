"""Runs on disk: ``runs/<pair>/<system>/`` holds run.trec, perquery.csv and manifest.json.

All three are written into a temporary directory and renamed into place together, so a run
directory is either complete or absent.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.errors import BenchError
from bench.store import atomic_dir, is_complete

log = logging.getLogger(__name__)

RUN_FILE = "run.trec"
PER_QUERY_FILE = "perquery.csv"
MANIFEST_FILE = "manifest.json"


def format_trec(run: dict[str, dict[str, float]], tag: str, depth: int | None = None) -> str:
    """TREC run lines, best first; ties broken by doc id so the file is deterministic."""
    lines = []
    for qid in sorted(run):
        ranked = sorted(run[qid].items(), key=lambda kv: (-kv[1], kv[0]))[:depth]
        lines.extend(f"{qid} Q0 {doc_id} {rank} {score:.6f} {tag}" for rank, (doc_id, score) in enumerate(ranked, 1))
    return "\n".join(lines) + ("\n" if lines else "")


_TREC_LINE = re.compile(r"^\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+$")


def read_trec(path: Path) -> dict[str, dict[str, float]]:
    """Parse a TREC run; a malformed line is an error that names the file and line."""
    run: dict[str, dict[str, float]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BenchError(f"cannot read run file {path}: {exc.strerror}", "check the path") from exc
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if not _TREC_LINE.match(line.strip()):
            raise BenchError(f"{path}:{n}: not a TREC run line: {line[:80]!r}", "expected 'qid Q0 docid rank score tag'")
        qid, _, doc_id, _, score, _ = line.split()
        try:
            run.setdefault(qid, {})[doc_id] = float(score)
        except ValueError:
            raise BenchError(f"{path}:{n}: score {score!r} is not a number", "expected 'qid Q0 docid rank score tag'") from None
    return run


def run_dir(runs_root: Path, pair: str, system: str) -> Path:
    return runs_root / pair / system


def write_run(
    runs_root: Path, pair: str, system: str, run: dict[str, dict[str, float]], table: pd.DataFrame,
    manifest: dict, depth: int,
) -> Path:
    target = run_dir(runs_root, pair, system)
    with atomic_dir(target) as tmp:
        (tmp / RUN_FILE).write_text(format_trec(run, system, depth), encoding="utf-8")
        table.to_csv(tmp / PER_QUERY_FILE, index=False)
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    log.info("wrote %s", target)
    return target


@dataclass
class StoredRun:
    pair: str
    system: str
    path: Path
    manifest: dict
    per_query: pd.DataFrame  # columns: query_id, measure, value


def load_run(path: Path) -> StoredRun | None:
    """A stored run, or None when it is incomplete (interrupted) or damaged (files lost or unreadable)."""
    if not is_complete(path):
        return None
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text())
        table = pd.read_csv(path / PER_QUERY_FILE, dtype={"query_id": str, "measure": str, "value": float})
        return StoredRun(manifest["pair"], manifest["system"], path, manifest, table)
    except (OSError, ValueError, KeyError) as exc:
        log.warning("run %s is damaged: %s", path, exc)
        return None


def load_runs(runs_root: Path, pair: str | None = None) -> list[StoredRun]:
    """Every complete, readable run under ``runs_root`` (optionally of one pair), by pair and system."""
    found = []
    for path in sorted(p for p in Path(runs_root).glob(f"{pair or '*'}/*") if p.is_dir() and not p.name.startswith(".")):
        stored = load_run(path)
        if stored is None:
            log.warning("skipping incomplete or damaged run %s", path)
            continue
        found.append(stored)
    return found
