"""Fusion of stored runs: runs of one pair (bench's own and external ones, under ``runs/<pair>/``) combined by
reciprocal rank fusion or CombSUM (:mod:`bench.methods.retrieve.fusion`) into a new run, scored on the pair's
qrels with its measures and stored like any system's (``runs/<pair>/<name>/``, written atomically, with a
manifest naming its inputs, the method, the weights, ``k`` and the sha256 of each input's manifest).

Everything is checked before anything is written: the inputs (runs of this pair, each named once), the
weights (one per input, none negative; default 1 each), ``k`` (RRF only, positive; default 60), the depth,
and the name (a usable directory name, no system's, no stored run's). Each failure is one
:class:`BenchError`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from bench.data.pairs import Pair
from bench.errors import BenchError
from bench.experiment.external import check_name
from bench.experiment.plan import listed, positive_int
from bench.experiment.runner import RunResult, git_commit, package_versions, pair_record
from bench.infra.store import check_dir
from bench.infra.digests import sha256_file
from bench.infra.strict import plain_number
from bench.methods.retrieve import fusion
from bench.results.runs import (MANIFEST_FILE, QUERIES_FILE, RUN_FILE, StoredRun, format_queries, load_run,
                                load_runs, read_trec, run_dir, write_run)
from bench.results.scoring import means, per_query

log = logging.getLogger(__name__)

LABELS = {"rrf": "reciprocal rank fusion", "combsum": "CombSUM of min-max normalised scores"}


@dataclass(frozen=True)
class FusePlan:
    """A checked fusion: ``inputs`` (stored runs of ``pair``) fused by ``method`` with ``weights`` (and ``k`` for
    RRF), kept to ``depth`` documents a query, to be stored as ``name`` under ``runs``."""

    pair: Pair
    runs: Path
    inputs: tuple[StoredRun, ...]
    method: str
    weights: tuple[float, ...]
    k: float | None
    name: str
    depth: int

    def execute(self) -> RunResult:
        """Fuse, score and store the run (:class:`bench.experiment.runner.RunResult`)."""
        t0 = time.perf_counter()
        started = datetime.now(timezone.utc)
        runs = [read_trec(stored.path / RUN_FILE) for stored in self.inputs]
        fused = fusion.fuse(self.method, runs, list(self.weights), self.depth, self.k or fusion.RRF_K)
        collection = self.pair.collection()
        table = per_query(fused, collection.qrels, list(self.pair.measures))
        scores = means(table)
        wall = time.perf_counter() - t0
        names = [stored.name for stored in self.inputs]
        inputs = [{"run": stored.name, "system": stored.system, "weight": weight,
                   "manifest_sha256": sha256_file(stored.path / MANIFEST_FILE),
                   "external": bool(stored.manifest.get("external")), "spec": stored.manifest.get("spec")}
                  for stored, weight in zip(self.inputs, self.weights)]
        identity = [{key: i[key] for key in ("run", "weight", "manifest_sha256")} for i in inputs]
        recipe = {"method": self.method, "k": self.k, "inputs": identity}  # the run's identity: its spec
        manifest = {
            "pair": self.pair.name, "system": self.name,
            "description": f"{LABELS[self.method]} of {', '.join(names)}",
            "fusion": {**recipe, "inputs": inputs}, "spec": {"system": self.name, "fusion": recipe},
            "ceiling": any(stored.manifest.get("ceiling") is True for stored in self.inputs),
            "options": {}, "pair_info": pair_record(self.pair), "dataset_id": self.pair.dataset_id,
            "data": collection.sources, "collection_notes": collection.notes, "models": {}, "artifacts": {},
            "measures": scores, "n_queries": int(table["query_id"].nunique()),
            "n_queries_answered": sum(1 for docs in fused.values() if docs), "n_docs": _docs_count(collection),
            "depth": self.depth, "seed": None, "wall_time_s": round(wall, 3),
            "started_at": started.isoformat(timespec="seconds"), "commit": git_commit(),
            "versions": package_versions(),
        }
        queries = format_queries((q.query_id, q.text, q.translation) for q in collection.queries)
        path = write_run(self.runs, self.pair.name, self.name, fused, table, manifest, self.depth,
                         {QUERIES_FILE: queries})
        log.info("%s (%s of %s) on %s: %s", self.name, self.method, ", ".join(names), self.pair.name,
                 ", ".join(f"{m} {v:.4f}" for m, v in scores.items()))
        return RunResult(self.name, path, scores, wall)


def _docs_count(collection) -> int | None:
    try:
        return collection.docs_count
    except BenchError:  # the documents are not here: the run is scored on the qrels alone
        return None


def plan_fusion(pair: Pair, runs: str | Path, inputs: str | Sequence[str], method: str, *,
                weights: Any = None, k: Any = None, name: str | None = None, depth: Any = 1000) -> FusePlan:
    """Check everything a fusion needs (see the module docstring) and return its :class:`FusePlan`; nothing
    is read but the stored inputs (verified by :func:`bench.results.runs.load_run`), nothing is written."""
    if method not in fusion.METHODS:
        raise BenchError(f"unknown fusion method {method!r}", "one of: " + ", ".join(fusion.METHODS))
    names = [str(n) for n in listed(inputs)]
    if len(names) < 2:
        raise BenchError(f"fusion needs at least two input runs, got {len(names)}", "e.g. inputs bm25,mdense")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise BenchError(f"input run {repeated[0]!r} is named twice", "name each input run once")
    parsed = _weights(weights, len(names))
    fusion.check_weights(len(names), parsed)
    if method == "rrf":
        k = fusion.RRF_K if k is None else _number("the RRF constant k", k)
        fusion.check_k(k)
        k = float(k)
    elif k is not None:
        raise BenchError(f"the RRF constant k (--rrf-k, rrf_k=) is for method rrf, not {method}",
                         "drop it, or fuse with rrf")
    depth = positive_int("depth", depth)
    runs_root = Path(runs)
    check_dir(runs_root, "runs")
    stored = [_input(runs_root, pair, n) for n in names]
    name = name or "-".join([method, *names])
    _check_new_name(runs_root, pair, name, names)
    return FusePlan(pair, runs_root, tuple(stored), method, tuple(float(w) for w in parsed), k, name, depth)


def _number(what: str, value: Any) -> float:
    if isinstance(value, str):
        try:
            return plain_number(value.strip(), float)
        except ValueError as exc:
            raise BenchError(f"{what} {value!r} {exc}", "give a number such as 0.5") from None
    return value


def _weights(value: Any, n: int) -> list[float]:
    """The weights given (a comma-separated string, or numbers), else 1 for each input."""
    if value is None:
        return [1.0] * n
    return [_number("weight", w) for w in listed(value)]


def _input(runs_root: Path, pair: Pair, name: str) -> StoredRun:
    """The stored run ``name`` of ``pair``: complete, verified, and made on this pair's collection."""
    stored = load_run(run_dir(runs_root, pair.name, name))
    if stored is None:
        have = [r.name for r in load_runs(runs_root, pair.name) if r.pair == pair.name]
        raise BenchError(f"no stored run {name!r} of {pair.name} under {runs_root}",
                         "stored runs: " + ", ".join(have) if have else f"run it first: bench run --pair {pair.name}")
    if stored.pair != pair.name:
        raise BenchError(f"input run {name!r} is a run of {stored.pair}, not of {pair.name}",
                         "fuse runs of one pair")
    made_on = stored.manifest.get("dataset_id", pair.dataset_id)
    if made_on != pair.dataset_id:
        raise BenchError(f"input run {name!r} was made on {made_on}, not on {pair.dataset_id} (the collection of "
                         f"{pair.name} now)", f"run it again on this collection, or fuse runs made on {made_on}")
    return stored


def _check_new_name(runs_root: Path, pair: Pair, name: str, inputs: list[str]) -> None:
    """The fused run's name: a usable directory name, no system's and no stored run's of the pair."""
    check_name(name)
    target = run_dir(runs_root, pair.name, name)
    if name in inputs or target.exists():
        raise BenchError(f"a run {name!r} of {pair.name} exists already ({target})",
                         "give the fused run another name, or delete that run first")
