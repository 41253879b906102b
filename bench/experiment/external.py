"""External runs: a run made elsewhere, validated, scored with ir-measures and stored like a run of a built-in
system (``runs/<pair>/<NAME>/``), so reports, head-to-head tests, the leaderboard and ``bench check`` treat it
like any other.

A run file is in one of two formats, told apart by its first line's columns (whitespace-separated):

- TREC: ``query_id Q0 doc_id rank score tag``, six columns, a finite number written plainly as score (not
  ``1_0``, ``nan`` or ``1e400``; the rank and tag columns are not read: ir-measures ranks by score);
- MS MARCO (pyserini's ``--output-format msmarco``): ``query_id doc_id rank``, three columns, the rank a
  whole number from 1; the scores are derived from the ranks (``-rank``: descending with the rank), and a
  warning says so.

Either may be gzip-compressed (told by the file's first bytes, not its name). Every query id must be a query
of the pair, and a (query, document) pair may appear once. Any violation is one error naming the file and
line, and nothing is stored: every ``--run`` of an invocation is validated before the first is written.
Documents that are not in the collection are allowed (a run made against another copy of the corpus):
they are counted, reported as a warning and recorded in the manifest (``n_unknown_docs``); they can never
be relevant.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

from bench.errors import BenchError
from bench.results.scoring import means, per_query
from bench.data.pairs import Pair
from bench.experiment.runner import RunResult, git_commit, package_versions, pair_record
from bench.results.runs import (MANIFEST_FILE, QUERIES_FILE, TREC_LINE, format_queries, parse_run_name, run_dir,
                                trec_score, write_run)
from bench.infra.digests import sha256_file
from bench.infra.strict import plain_number

log = logging.getLogger(__name__)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


@dataclass
class ExternalRun:
    """A validated run file, ready to be scored and stored."""

    name: str
    source: Path
    sha256: str
    run: dict[str, dict[str, float]]
    n_lines: int
    format: str  # TREC or MSMARCO
    gzip: bool
    n_unknown_docs: int | None  # None when the collection's documents could not be read here
    unknown_examples: list[str]


def parse_spec(value: str) -> tuple[str, Path]:
    """``NAME=PATH`` -> (name, path); the name must be a usable directory name and no built-in system's."""
    name, sep, path = value.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise BenchError(f"--run {value!r} is not NAME=PATH", "e.g. --run my-bm25=path/to/run.trec")
    check_name(name.strip())
    return name.strip(), Path(path.strip()).expanduser()


def check_name(name: str) -> None:
    from bench.systems import SYSTEMS, load_plugins

    load_plugins()  # a plugin's system name is taken too
    if not NAME.match(name):
        raise BenchError(f"run name {name!r} is not a valid directory name",
                         "use up to 64 letters, digits, '.', '_', '+' or '-', starting with a letter or digit")
    if name in SYSTEMS:
        raise BenchError(f"run name {name!r} is a built-in system", f"choose another name, e.g. {name}-external")
    base, seed, noise = parse_run_name(name)
    if seed or noise:  # runs/<pair>/<name>/ would read as another seed or noise rate of a run of `base`
        raise BenchError(f"run name {name!r} ends like a seed or noise variant of {base!r} (+noise<rate>, +seed<n>)",
                         f"choose a name without that ending, e.g. {name.replace('+', '-')}")


GZIP_MAGIC = b"\x1f\x8b"
TREC, MSMARCO = "trec", "msmarco"
COLUMNS = {TREC: 6, MSMARCO: 3}
MSMARCO_LINE = "each line is 'query_id doc_id rank' (pyserini's MS MARCO format: three tab-separated columns)"
FORMAT_LINE = {TREC: TREC_LINE, MSMARCO: MSMARCO_LINE}
EITHER_LINE = "a TREC run's lines are 'query_id Q0 doc_id rank score tag', an MS MARCO run's 'query_id doc_id rank'"


@dataclass
class RunFile:
    """A run file read: its run, its number of (non-blank) lines, its format and whether it was gzip-compressed."""

    run: dict[str, dict[str, float]]
    n_lines: int
    format: str  # TREC or MSMARCO
    gzip: bool


def is_gzip(path: Path) -> bool:
    """Whether ``path`` starts with gzip's magic bytes (an error naming the file when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(GZIP_MAGIC)) == GZIP_MAGIC
    except OSError as exc:
        raise BenchError(f"cannot read run file {path}: {exc.strerror}", "check the path") from exc


def _lines(path: Path, compressed: bool) -> Iterable[tuple[int, str]]:
    """(line number, line) of the non-blank lines (of the decompressed text when ``compressed``); bytes that are
    not UTF-8 are an error naming the line, a damaged gzip stream one naming the file."""
    try:
        f = gzip.open(path, "rb") if compressed else open(path, "rb")
    except OSError as exc:
        raise BenchError(f"cannot read run file {path}: {exc.strerror}", "check the path") from exc
    n = 0
    with f:
        try:
            for n, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise BenchError(f"{path}:{n}: not UTF-8 (byte {raw[exc.start]:#04x})",
                                     "save the run as UTF-8") from None
                if line.strip():
                    yield n, line
        except (OSError, EOFError, zlib.error) as exc:
            raise BenchError(f"{path}: the gzip stream is damaged after line {n} ({exc})",
                             "compress the run again (gzip), or give it uncompressed") from None


def read_run(path: Path, query_ids: set[str] | None = None, pair: str = "the pair") -> RunFile:
    """The run of a run file, TREC or MS MARCO, plain or gzip-compressed, validated (see the module docstring);
    with ``query_ids``, a query id that is not one of them is an error naming the line."""
    path = Path(path)
    compressed = is_gzip(path)
    run: dict[str, dict[str, float]] = {}
    first_line: dict[tuple[str, str], int] = {}
    fmt = None
    count = 0
    for n, line in _lines(path, compressed):
        cols = line.split()
        if fmt is None:
            fmt = next((f for f, width in COLUMNS.items() if width == len(cols)), None)
            if fmt is None:
                raise BenchError(f"{path}:{n}: expected 6 columns (TREC) or 3 (MS MARCO), got {len(cols)}: "
                                 f"{line.strip()[:80]!r}", EITHER_LINE)
            if fmt == MSMARCO:
                log.warning("%s: an MS MARCO run (query_id, doc_id, rank): its scores are derived from the ranks "
                            "(score = -rank, descending with the rank)", path)
        if len(cols) != COLUMNS[fmt]:
            raise BenchError(f"{path}:{n}: expected {COLUMNS[fmt]} columns, got {len(cols)}: {line.strip()[:80]!r}",
                             FORMAT_LINE[fmt])
        if fmt == TREC:
            qid, _, doc_id, _, score_text, _ = cols
            score = trec_score(path, n, score_text)
        else:
            qid, doc_id, rank_text = cols
            score = -_rank(path, n, rank_text)
        if query_ids is not None and qid not in query_ids:
            examples = ", ".join(sorted(query_ids)[:3])
            raise BenchError(f"{path}:{n}: unknown query id {qid!r}: not a query of {pair}",
                             f"query ids are the collection's own (e.g. {examples})")
        if (qid, doc_id) in first_line:
            raise BenchError(f"{path}:{n}: document {doc_id!r} appears twice for query {qid!r} "
                             f"(first on line {first_line[(qid, doc_id)]})", "a run ranks each document once per query")
        first_line[(qid, doc_id)] = n
        run.setdefault(qid, {})[doc_id] = score
        count += 1
    if not count:
        raise BenchError(f"{path}: the run file has no lines", TREC_LINE)
    return RunFile(run, count, fmt, compressed)


def _rank(path: Path, n: int, text: str) -> float:
    """The rank ``text`` of line ``n`` of the MS MARCO run ``path``: a whole number from 1."""
    try:
        rank = plain_number(text, int)
    except ValueError as exc:
        raise BenchError(f"{path}:{n}: rank {text!r} {exc}", MSMARCO_LINE) from None
    if rank < 1:
        raise BenchError(f"{path}:{n}: rank {text!r} is not 1 or more", MSMARCO_LINE)
    return float(rank)


def _doc_ids(collection) -> set[str] | None:
    """The collection's document ids, or None (with a warning) where its documents are not here."""
    try:
        return {doc.doc_id for doc in collection.iter_docs()}
    except BenchError as exc:
        log.warning("document ids not checked: %s", exc)
        return None


def validate(name: str, path: Path, query_ids: set[str], doc_ids: set[str] | None, pair: str) -> ExternalRun:
    read = read_run(path, query_ids, pair)
    run, lines = read.run, read.n_lines
    unknown = None if doc_ids is None else sorted({d for docs in run.values() for d in docs if d not in doc_ids})
    if unknown:
        n_unknown = sum(1 for docs in run.values() for d in docs if d not in doc_ids)
        log.warning("%s: %d of %d lines name documents that are not in %s (e.g. %s): they count as not relevant",
                    path, n_unknown, lines, pair, ", ".join(unknown[:3]))
    else:
        n_unknown = None if unknown is None else 0
    return ExternalRun(name, Path(path), sha256_file(path), run, lines, read.format, read.gzip, n_unknown,
                       (unknown or [])[:10])


def prepare(pair: Pair, specs: Sequence[str], runs_root: Path, collection=None) -> list[ExternalRun]:
    """Parse and validate every ``NAME=PATH`` (all of them, before anything is stored)."""
    parsed = [parse_spec(s) for s in specs]
    names = [n for n, _ in parsed]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise BenchError(f"--run names {repeated[0]!r} twice", "give each run its own name")
    for name, _ in parsed:
        _check_not_bench_run(run_dir(Path(runs_root), pair.name, name), name)
    collection = collection or pair.collection()
    query_ids = {q.query_id for q in collection.queries}
    doc_ids = _doc_ids(collection)
    return [validate(name, path, query_ids, doc_ids, pair.name) for name, path in parsed]


def _check_not_bench_run(path: Path, name: str) -> None:
    """An external run may replace an earlier external run of the same name, never a run bench made."""
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return
    if not manifest.get("external"):
        raise BenchError(f"{path} holds a run bench made, not an external one",
                         f"name the run otherwise, e.g. {name}-ext")


def store(pair: Pair, prepared: Sequence[ExternalRun], runs_root: Path, collection=None,
          measures: Sequence[str] | None = None) -> list[RunResult]:
    """Score each validated run with ir-measures on the pair's qrels (on ``measures``, default the pair's)
    and write it with its manifest."""
    collection = collection or pair.collection()
    queries = format_queries((q.query_id, q.text, q.translation) for q in collection.queries)
    try:
        n_docs = collection.docs_count
    except BenchError:
        n_docs = None
    results = []
    for ext in prepared:
        t0 = time.perf_counter()
        table = per_query(ext.run, collection.qrels, list(measures or pair.measures))
        scores = means(table)
        manifest = {
            "pair": pair.name, "system": ext.name, "description": f"external run from {ext.source.name}",
            "external": True, "spec": {"system": ext.name, "external": True, "sha256": ext.sha256},
            "source": {"path": str(ext.source.resolve()), "sha256": ext.sha256, "lines": ext.n_lines,
                       "format": ext.format, "gzip": ext.gzip},
            "n_unknown_docs": ext.n_unknown_docs, "unknown_docs_examples": ext.unknown_examples,
            "options": {}, "pair_info": pair_record(pair), "dataset_id": pair.dataset_id, "data": collection.sources,
            "collection_notes": collection.notes, "models": {}, "artifacts": {}, "measures": scores,
            "n_queries": int(table["query_id"].nunique()), "n_queries_answered": sum(1 for q in ext.run.values() if q),
            "n_docs": n_docs, "depth": max(len(docs) for docs in ext.run.values()), "seed": None, "wall_time_s": None,
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": git_commit(),
            "versions": package_versions(),
        }
        path = write_run(Path(runs_root), pair.name, ext.name, ext.run, table, manifest, None, {QUERIES_FILE: queries})
        log.info("%s (external) on %s: %s", ext.name, pair.name, ", ".join(f"{m} {v:.4f}" for m, v in scores.items()))
        results.append(RunResult(ext.name, path, scores, time.perf_counter() - t0))
    return results


def add_runs(pair: Pair, specs: Sequence[str], runs_root: Path,
             measures: Sequence[str] | None = None) -> list[RunResult]:
    """Validate every run of ``specs`` (``NAME=PATH``), then score and store them all."""
    collection = pair.collection()
    return store(pair, prepare(pair, specs, runs_root, collection), runs_root, collection, measures)
