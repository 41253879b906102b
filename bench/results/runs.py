"""Runs on disk: ``runs/<pair>/<run>/`` holds run.trec, perquery.csv and manifest.json.

``<run>`` is the system's name for the default cell (seed 0, no bitext noise), else the name with the
variant it depends on added (:func:`run_name`: ``optical+seed1``, ``optical+noise0.2+seed2``); the
manifest records it (``run``, ``variant``), so readers group a system's seeds as replicates.

All three are written into a temporary directory and renamed into place together, so a run
directory is either complete or absent. The manifest records the sha256 of every other file of the
run (``files``), and :func:`load_run` verifies them: a run whose files changed after it was written is
refused (one line: which run, and how to redo it), never reported or checked. Runs written before
manifests carried the hashes are accepted with a warning after a consistency check (their run file
parses and answers as many queries as the manifest says). bench never writes a run without a judged
query, and refuses to read one.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd

from bench.errors import BenchError
from bench.infra.store import atomic_dir, is_complete
from bench.infra.digests import sha256_file
from bench.infra.strict import plain_number
from bench.results.order import ranked
from bench.results.scoring import per_query

log = logging.getLogger(__name__)

RUN_FILE = "run.trec"
PER_QUERY_FILE = "perquery.csv"
MANIFEST_FILE = "manifest.json"
MANIFEST_HASH_FILE = "manifest.sha256"  # the manifest's own sha256, written after it
QUERIES_FILE = "queries.tsv"  # optional: the queries the run answered (what reports show beside per-query values)
QUERY_COLUMNS = ["query_id", "text", "translation", "system_translation"]
QrelsOf = Callable[["StoredRun"], Mapping[str, Mapping[str, int]]]  # a stored run -> the judgments it is scored on
TREC_LINE = "each line is 'query_id Q0 doc_id rank score tag' (six whitespace-separated columns)"


_WHITESPACE = re.compile(r"\s")


def check_trec_id(kind: str, value: str) -> None:
    """A TREC field must be one non-empty token: refuse an id that would write a malformed line."""
    if not isinstance(value, str) or not value or _WHITESPACE.search(value):
        raise BenchError(f"cannot write a TREC run: {kind} {value!r} is empty or contains whitespace",
                         "ids must be non-empty and contain no whitespace: fix them where the collection is read")


def format_trec(run: dict[str, dict[str, float]], tag: str, depth: int | None = None) -> str:
    """TREC run lines, best first, in the one order of :func:`bench.results.order.ranked` (so the file is
    deterministic and its ranks are the order it is scored in). An id or tag that
    is empty or holds whitespace, or a NaN or infinite score (:func:`read_trec` could not read it back), is
    refused rather than written."""
    check_trec_id("run tag", tag)
    lines = []
    for qid in sorted(run):
        check_trec_id("query id", qid)
        for doc_id, score in run[qid].items():
            check_trec_id("document id", doc_id)
            if not math.isfinite(score):
                raise BenchError(f"cannot write a TREC run: query {qid}, document {doc_id} has a "
                                 f"{'NaN' if math.isnan(score) else 'infinite'} score",
                                 "the system produced an invalid score: a bug to report")
        lines.extend(f"{qid} Q0 {doc_id} {rank} {score:.6f} {tag}"
                     for rank, (doc_id, score) in enumerate(ranked(run[qid], depth), 1))
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
            raise BenchError(f"{path}:{n}: not a TREC run line: {line[:80]!r}", TREC_LINE)
        qid, _, doc_id, _, score, _ = line.split()
        run.setdefault(qid, {})[doc_id] = trec_score(path, n, score)
    return run


def trec_score(path: Path, n: int, text: str) -> float:
    """The score ``text`` of line ``n`` of the TREC run ``path``: a finite number written plainly (not ``1_0``,
    ``nan``, ``inf`` or ``1e400``), else an error naming the file and line."""
    try:
        return plain_number(text, float)
    except ValueError as exc:
        raise BenchError(f"{path}:{n}: score {text!r} {exc}", TREC_LINE) from None


def run_name(system: str, seed: int = 0, noise: float = 0.0) -> str:
    """The directory name of a run: the system's name for the default cell (seed 0, no bitext noise),
    with ``+noise<rate>`` and ``+seed<n>`` added otherwise (``optical+noise0.2+seed1``)."""
    name = system
    if noise:
        name += f"+noise{noise:g}"
    if seed:
        name += f"+seed{seed}"
    return name


_VARIANT = re.compile(r"^(?P<system>.+?)(?:\+noise(?P<noise>[0-9][0-9.e+-]*?))?(?:\+seed(?P<seed>[0-9]+))?$")


def parse_run_name(name: str) -> tuple[str, int, float]:
    """(system, seed, noise) of a run directory's name: the inverse of :func:`run_name` (a name without
    a variant suffix is the default cell, seed 0 and no noise)."""
    match = _VARIANT.match(name)
    if match is None:
        return name, 0, 0.0
    try:
        noise = float(match["noise"]) if match["noise"] else 0.0
    except ValueError:
        return name, 0, 0.0
    return match["system"], int(match["seed"] or 0), noise


def run_dir(runs_root: Path, pair: str, system: str, seed: int = 0, noise: float = 0.0) -> Path:
    return runs_root / pair / run_name(system, seed, noise)


def write_run(
    runs_root: Path, pair: str, system: str, run: dict[str, dict[str, float]], table: pd.DataFrame,
    manifest: dict, depth: int | None, extra_files: dict[str, str] | None = None, *, seed: int = 0,
    noise: float = 0.0,
) -> Path:
    """Write the run directory atomically, under ``run_name(system, seed, noise)`` (the run's cell: the
    seed and bitext noise it depends on); the manifest gets ``run`` (that name) and ``variant`` ({seed,
    bitext_noise}). ``extra_files`` (name -> text) are written beside the three files (e.g.
    :data:`QUERIES_FILE`, made by :func:`format_queries`)."""
    if table.empty:
        raise BenchError(f"refusing to write the run of {system} on {pair}: no judged query was scored",
                         "the collection needs queries with qrels on its documents")
    name = run_name(system, seed, noise)
    target = run_dir(runs_root, pair, system, seed, noise)
    trec = format_trec(run, name, depth)  # refuses invalid ids before anything is written
    with atomic_dir(target) as tmp:
        (tmp / RUN_FILE).write_text(trec, encoding="utf-8")
        table.to_csv(tmp / PER_QUERY_FILE, index=False)
        for extra, text in (extra_files or {}).items():
            (tmp / extra).write_text(text, encoding="utf-8")
        files = {f: sha256_file(tmp / f) for f in [RUN_FILE, PER_QUERY_FILE, *(extra_files or {})]}
        manifest = {**manifest, "run": name, "variant": {"seed": int(seed), "bitext_noise": float(noise)},
                    "files": files}
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        (tmp / MANIFEST_HASH_FILE).write_text(sha256_file(tmp / MANIFEST_FILE) + "\n")  # the manifest is checked too
    log.info("wrote %s", target)
    return target


def format_queries(rows) -> str:
    """``queries.tsv``: a header, then query_id, text, translation, system_translation per query (tabs and
    line breaks inside a text become spaces; a missing value is empty)."""
    def clean(value) -> str:
        return " ".join(str(value).split()) if value else ""

    lines = ["\t".join(QUERY_COLUMNS)]
    lines += ["\t".join(clean(row[i]) if i < len(row) else "" for i in range(len(QUERY_COLUMNS))) for row in rows]
    return "\n".join(lines) + "\n"


def read_queries(path: Path) -> dict[str, dict[str, str]]:
    """query_id -> {text, translation, system_translation} from a run directory's ``queries.tsv``
    ({} when the run has none: runs written before it existed, or a damaged file)."""
    try:
        lines = (Path(path) / QUERIES_FILE).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    if not lines or lines[0].split("\t") != QUERY_COLUMNS:
        return {}
    out = {}
    for line in lines[1:]:
        cols = (line.split("\t") + [""] * len(QUERY_COLUMNS))[:len(QUERY_COLUMNS)]
        out[cols[0]] = dict(zip(QUERY_COLUMNS[1:], cols[1:]))
    return out


@dataclass
class StoredRun:
    pair: str
    system: str
    path: Path
    manifest: dict
    per_query: pd.DataFrame  # columns: query_id, measure, value

    @property
    def name(self) -> str:
        """The run's directory name (``optical+seed1``; the system's name for the default cell)."""
        return self.path.name

    @property
    def seed(self) -> int:
        """The seed the run depends on (0 for a system whose run no seed changes)."""
        return self._variant()[0]

    @property
    def noise(self) -> float:
        """The bitext noise rate the run was trained with (0 for a system that reads no bitext)."""
        return self._variant()[1]

    @property
    def is_default(self) -> bool:
        """The default cell: seed 0 and no bitext noise (``runs/<pair>/<system>/``)."""
        return self._variant() == (0, 0.0)

    def _variant(self) -> tuple[int, float]:
        variant = self.manifest.get("variant")
        if isinstance(variant, dict):
            return int(variant.get("seed") or 0), float(variant.get("bitext_noise") or 0.0)
        # written before manifests carried it: the directory name says (a plain name is the default cell)
        system, seed, noise = parse_run_name(self.path.name)
        return (seed, noise) if system == self.system else (0, 0.0)


def load_run(path: Path, qrels: QrelsOf | None = None, *, ranking: bool = True) -> StoredRun | None:
    """A stored, verified run; None when it is incomplete (interrupted) or a file is gone (being
    deleted). A run whose files changed since it was written, or that scored no judged query, is an
    error that names the run and how to redo it. ``ranking`` False: an archived run
    (:mod:`bench.results.archive`), which keeps of the files its manifest hashes only its per-query values.

    A run whose manifest lists no file hashes (written before bench recorded them, or a manifest edited to
    drop them) is accepted only when its per-query values are derived again from its ``run.trec`` on the
    judgments ``qrels(run)`` gives and agree with its ``perquery.csv``; without ``qrels`` it is refused."""
    path = Path(path)
    if not is_complete(path):
        return None
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
        pair, system = manifest["pair"], manifest["system"]
    except FileNotFoundError as exc:
        log.warning("run %s is damaged: %s", path, exc)
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _changed(path, {}, f"its {MANIFEST_FILE} is unreadable ({type(exc).__name__})") from None
    _check_manifest(path, manifest)
    recorded = manifest.get("files")
    for name, want in (recorded.items() if isinstance(recorded, dict) else ()):
        if not ranking and name != PER_QUERY_FILE:
            continue
        try:
            got = sha256_file(path / name)
        except FileNotFoundError:
            log.warning("run %s is damaged: %s is gone", path, name)
            return None
        if got != want:
            raise _changed(path, manifest,
                           f"{name} has sha256 {got[:12]}…, not the {want[:12]}… it was written with")
    try:
        table = pd.read_csv(path / PER_QUERY_FILE, dtype={"query_id": str, "measure": str, "value": float})
    except FileNotFoundError as exc:
        log.warning("run %s is damaged: %s", path, exc)
        return None
    except (OSError, ValueError) as exc:
        raise _changed(path, manifest, f"its {PER_QUERY_FILE} is unreadable ({type(exc).__name__})") from None
    if table.empty:
        raise _changed(path, manifest, "it scored no judged query", "delete it (bench no longer writes such runs)")
    stored = StoredRun(pair, system, path, manifest, table)
    if not ranking and not (isinstance(recorded, dict) and PER_QUERY_FILE in recorded):
        raise _changed(path, manifest, f"it is archived, but its {MANIFEST_FILE} holds no hash of {PER_QUERY_FILE}")
    if not (isinstance(recorded, dict) and recorded):
        _check_unhashed(stored, qrels)
    return stored


def _check_manifest(path: Path, manifest: dict) -> None:
    """The manifest as it was written: its hash (``manifest.sha256``, written beside it since issue 25), the
    run's files all hashed in it, and the run's name that of its directory. A run written before manifest
    hashes has none to check (its files' hashes are still checked)."""
    try:
        want = (path / MANIFEST_HASH_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        want = None
    except (OSError, UnicodeDecodeError) as exc:
        raise _changed(path, manifest, f"its {MANIFEST_HASH_FILE} is unreadable ({type(exc).__name__})") from None
    if want is not None:
        got = sha256_file(path / MANIFEST_FILE)
        if got != want:
            raise _changed(path, manifest, f"its {MANIFEST_FILE} was changed after the run was written "
                                           f"(sha256 {got[:12]}…, not {want[:12]}…)")
        recorded = manifest.get("files")
        missing = [f for f in (RUN_FILE, PER_QUERY_FILE) if not isinstance(recorded, dict) or f not in recorded]
        if missing:
            raise _changed(path, manifest, f"its {MANIFEST_FILE} holds no hash of {missing[0]}")
    name = manifest.get("run")
    if isinstance(name, str) and name != path.name:
        raise _changed(path, manifest, f"its {MANIFEST_FILE} names the run {name!r}, not {path.name!r}")


def _check_unhashed(run: StoredRun, qrels: QrelsOf | None) -> None:
    """A run whose manifest lists no file hashes: its per-query values derived again from its run file on the
    judgments ``qrels`` gives must agree with its ``perquery.csv`` (to 1e-6), else it is refused."""
    path, manifest = run.path, run.manifest
    if qrels is None:
        raise _changed(path, manifest, f"its {MANIFEST_FILE} records no file hashes, so its values cannot be trusted "
                                       "as they are", f"`bench report` accepts it if {RUN_FILE} scored on the qrels "
                                       f"gives its {PER_QUERY_FILE}")
    try:
        trec = read_trec(path / RUN_FILE)
    except BenchError as exc:
        raise _changed(path, manifest, f"its {RUN_FILE} is unreadable ({exc.message})") from None
    stored = run.per_query.set_index(["query_id", "measure"])["value"].sort_index()
    derived = per_query(trec, qrels(run), sorted(set(stored.index.get_level_values("measure"))))
    derived = derived.set_index(["query_id", "measure"])["value"].reindex(stored.index)
    differ = (derived - stored).abs().gt(1e-6) | derived.isna()
    if differ.any():
        (qid, measure), value = next(iter(stored[differ].items()))
        raise _changed(path, manifest, f"its {PER_QUERY_FILE} gives {measure} {value:.4f} for query {qid}, its "
                                       f"{RUN_FILE} scores {derived[(qid, measure)]:.4f} on the qrels")
    log.warning("run %s records no file hashes: accepted, its %s derived again from %s and the qrels agree (rerun it "
                "to record them)", path, PER_QUERY_FILE, RUN_FILE)


def redo_hint(manifest: dict) -> str:
    """How to write a run again: the `bench run` that makes it."""
    pair, system = manifest.get("pair", "PAIR"), manifest.get("system", "SYSTEM")
    if str(manifest.get("dataset_id", "")).startswith("bench-local/"):
        return f"rerun it: bench run --pair-file <the pair file of {pair}> --systems {system}"
    return f"rerun it: bench run --pair {pair} --systems {system}"


def _changed(path: Path, manifest: dict, what: str, fix: str | None = None) -> BenchError:
    hint = redo_hint(manifest) if manifest else f"delete {path} and rerun it with bench run"
    return BenchError(f"refusing run {path}: {what}", f"{fix}, then {hint[0].lower()}{hint[1:]}" if fix else hint)


def load_runs(runs_root: Path, pair: str | None = None, qrels: QrelsOf | None = None) -> list[StoredRun]:
    """Every complete, readable run under ``runs_root`` (optionally of one pair), by pair and system; ``qrels``
    as for :func:`load_run`."""
    found = []
    candidates = (p for p in Path(runs_root).glob(f"{pair or '*'}/*") if p.is_dir() and not p.name.startswith("."))
    for path in sorted(candidates):
        stored = load_run(path, qrels)
        if stored is None:
            log.warning("skipping incomplete or damaged run %s", path)
            continue
        found.append(stored)
    return found
