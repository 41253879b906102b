"""A pair defined by the user from local files, in a small YAML (or TOML) file, so a new language
needs no code. Paths are relative to the pair file::

    name: xx-en                 # QQ-DD: queries in QQ, documents in DD
    queries: queries.tsv        # query_id<TAB>text[<TAB>English translation]  (or .jsonl)
    docs: docs.jsonl            # {"doc_id", "text", "title"?} per line        (or .tsv: doc_id<TAB>text)
    qrels: qrels.txt            # TREC qrels: query_id 0 doc_id relevance
    bitext: bitext.tsv          # optional: foreign<TAB>English, one pair a line
    description: ...            # optional
    measures: [AP, nDCG@10]     # optional, ir_measures names
    low_resource: true          # optional: true (the default) or false

The collection is registered in ir_datasets as ``bench-local/<name>@<sha>`` like every other
collection: the id carries a fingerprint of the files' sha256 and the pair's settings, so a changed
file is a new dataset and nothing registered in ir_datasets is ever replaced.
Unknown or repeated keys, a boolean given as a string, missing files and malformed lines (a relevance
not written as a plain integer: ``1_0`` is not 10) are errors that name the file and line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tomllib
from pathlib import Path

from bench.data.collection.records import Doc, LazyDataset, Query, Records, register_dataset
from bench.errors import BenchError
from bench.data.pairs import DEFAULT_MEASURES, PAIRS, Pair
from bench.infra.store import fingerprint
from bench.infra.digests import sha256_file
from bench.infra.strict import load_yaml, plain_number, utf8_text, where
from bench.infra.text import text_lines

log = logging.getLogger(__name__)

REQUIRED = ("name", "queries", "docs", "qrels")
OPTIONAL = ("bitext", "description", "measures", "low_resource", "query_lang", "doc_lang")
PAIR_NAME = re.compile(r"^([a-z]{2,3})-([a-z]{2,3})(-[a-z0-9][a-z0-9_-]*)?$")
HINT = "see the pair file format in the README (section 'Your own pair')"


def load_pair_file(path: Path) -> Pair:
    """Validate a pair file and register its collection; return the :class:`Pair`."""
    path = Path(path)
    config = _read_config(path)
    unknown = sorted(set(config) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise BenchError(f"{path}: unknown key(s) {', '.join(unknown)}", f"allowed: {', '.join(REQUIRED + OPTIONAL)}")
    missing = [k for k in REQUIRED if not config.get(k)]
    if missing:
        raise BenchError(f"{path}: missing required key(s) {', '.join(missing)}", HINT)
    name = str(config["name"])
    match = PAIR_NAME.match(name)
    if not match:
        raise BenchError(f"{path}: pair name {name!r} is not of the form QQ-DD (e.g. xx-en)", HINT)
    if name in PAIRS:
        raise BenchError(f"{path}: pair name {name!r} is a built-in pair",
                         "choose another name, e.g. " + name + "-local")
    low_resource = config.get("low_resource", True)
    if not isinstance(low_resource, bool):
        raise BenchError(f"{where(path, config, 'low_resource')}: low_resource must be true or false, not "
                         f"{low_resource!r}", "write true or false, without quotes")
    files = {}
    for key in ("queries", "docs", "qrels", "bitext"):
        if config.get(key):
            files[key] = (path.parent / str(config[key])).resolve()
            if not files[key].is_file():
                raise BenchError(f"{path}: {key} file {files[key]} does not exist",
                                 "paths are relative to the pair file")
    measures = config.get("measures") or list(DEFAULT_MEASURES)
    if not isinstance(measures, list) or not all(isinstance(m, str) for m in measures):
        raise BenchError(f"{path}: measures must be a list of ir_measures names", HINT)
    from bench.results.scoring import parse_measures

    parse_measures(measures)
    query_lang = str(config.get("query_lang") or match.group(1))
    doc_lang = str(config.get("doc_lang") or match.group(2))
    sources = {key: sha256_file(p) for key, p in files.items()}
    settings = {"name": name, "query_lang": query_lang, "doc_lang": doc_lang, "measures": measures}
    dataset_id = f"bench-local/{name}@{fingerprint({'files': sources, **settings}, 12)}"
    pair = Pair(
        name, query_lang, doc_lang, dataset_id,
        str(config.get("description") or f"user pair from {path.name}"),
        low_resource=low_resource, offline=True,
        measures=tuple(measures), files=files,
    )
    loader = lambda: load_records(files, sources)  # noqa: E731
    register_dataset(dataset_id, LazyDataset(dataset_id, query_lang, doc_lang, loader))
    # validate the files now, so a malformed line fails before any work starts
    _ = pair.collection().queries
    return pair


def _read_config(path: Path) -> dict:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BenchError(f"cannot read pair file {path}: {exc.strerror}", "check the path") from exc
    text = utf8_text(path, data)
    config = _read_toml(path, text) if path.suffix == ".toml" else load_yaml(text, path, HINT)
    if not isinstance(config, dict):
        raise BenchError(f"{path}: expected a mapping of keys to values", HINT)
    return config


_TOML_AT = re.compile(r"(.*) \(at line (\d+), column (\d+)\)$")


def _read_toml(path: Path, text: str) -> dict:
    """The TOML document ``text`` (tomllib refuses a repeated key); an error names the file and line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problem = str(exc).strip().splitlines()[0]
        at = _TOML_AT.match(problem)
        if at:
            raise BenchError(f"{path}:{at[2]}: not valid TOML: {at[1]} (column {at[3]})", HINT) from None
        raise BenchError(f"{path}: not valid TOML: {problem}", HINT) from None


def load_records(files: dict[str, Path], sources: dict[str, str] | None = None) -> Records:
    """The collection's records from its files, verified against ``sources`` (their sha256 when the pair
    was loaded; the bytes parsed are hashed as they are read, so what was parsed is what the id names).

    Empty files, ids that are empty or hold whitespace, duplicate ids, empty query texts, conflicting
    qrels and qrels that judge nothing in the collection are errors naming the file (and line)."""
    digests = {key: hashlib.sha256() for key in ("queries", "docs", "qrels")}
    queries = _read_queries(files["queries"], digests["queries"])
    docs = _read_docs(files["docs"], digests["docs"])
    qrels = _read_qrels(files["qrels"], digests["qrels"])
    read = {key: d.hexdigest() for key, d in digests.items()}
    for key, digest in read.items():
        if sources and sources.get(key) not in (None, digest):
            raise BenchError(f"{files[key]} changed while bench was reading it", "run again once it is written")
    doc_ids = {d.doc_id for d in docs}
    unknown = sum(1 for rels in qrels.values() for d in rels if d not in doc_ids)
    query_ids = {q.query_id for q in queries}
    orphan = [q for q in qrels if q not in query_ids]
    judged = [q for q, rels in qrels.items() if q in query_ids and any(d in doc_ids for d in rels)]
    if not judged:
        raise BenchError(f"{files['qrels']}: no qrel judges a query of {files['queries'].name} on a document of "
                         f"{files['docs'].name} ({len(orphan)} judged queries and {unknown} judged documents are "
                         "unknown)",
                         "qrels name query and document ids of the pair's own files")
    if unknown:
        log.warning("%s: %d qrels name documents that are not in %s", files["qrels"], unknown, files["docs"].name)
    if orphan:
        log.warning("%s: %d judged queries are not in %s (ignored)", files["qrels"], len(orphan), files["queries"].name)
        qrels = {q: r for q, r in qrels.items() if q in query_ids}
    sources = {**read, **{k: v for k, v in (sources or {}).items() if k not in read}}
    for key in files:
        sources.setdefault(key, sha256_file(files[key]))
    return Records(queries, docs, qrels, dict(sources), {"unknown_qrel_docs": unknown, "orphan_qrels": len(orphan)})


_WHITESPACE = re.compile(r"\s")


def _id(path: Path, n: int, kind: str, value) -> str:
    """An id as read at ``path:n``: a non-empty string (or integer) without whitespace."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BenchError(f"{path}:{n}: {kind} id {value!r} is not a string", "ids are strings without whitespace")
    value = str(value)
    if not value or _WHITESPACE.search(value):
        raise BenchError(f"{path}:{n}: {kind} id {value!r} is empty or contains whitespace",
                         "ids must be non-empty and contain no spaces or tabs (TREC runs are space-separated)")
    return value


def _unique(rows: list[tuple[int, tuple]], kind: str, path: Path) -> list:
    """The records of ``rows`` (line number, record); a repeated id is an error naming both lines."""
    seen: dict[str, int] = {}
    for n, item in rows:
        if item[0] in seen:
            raise BenchError(f"{path}:{n}: duplicate {kind} id {item[0]!r} (first on line {seen[item[0]]})",
                             "ids must be unique")
        seen[item[0]] = n
    if not rows:
        raise BenchError(f"{path} has no {'documents' if kind == 'document' else 'queries'}", HINT)
    return [item for _, item in rows]


def _read_queries(path: Path, digest=None) -> list[Query]:
    out = []
    if path.suffix == ".jsonl":
        for n, line in text_lines(path, digest):
            row = _json_line(path, n, line, ("query_id", "text"))
            text = row["text"] if isinstance(row["text"], str) else ""
            if not text.strip():
                raise BenchError(f"{path}:{n}: query {row['query_id']!r} has no text", "give every query a text")
            translation = row.get("translation")
            out.append((n, Query(_id(path, n, "query", row["query_id"]), text,
                                 str(translation) if translation not in (None, "") else None)))
    else:
        for n, line in text_lines(path, digest):
            cols = line.split("\t")
            if len(cols) not in (2, 3) or not cols[0].strip() or not cols[1].strip():
                raise BenchError(f"{path}:{n}: expected query_id<TAB>text[<TAB>translation], got {len(cols)} "
                                 "column(s)", HINT)
            qid = _id(path, n, "query", cols[0].strip())
            translation = cols[2].strip() if len(cols) == 3 and cols[2].strip() else None
            out.append((n, Query(qid, cols[1].strip(), translation)))
    return _unique(out, "query", path)


def _read_docs(path: Path, digest=None) -> list[Doc]:
    out = []
    if path.suffix == ".jsonl":
        for n, line in text_lines(path, digest):
            row = _json_line(path, n, line, ("doc_id", "text"))
            doc_id = _id(path, n, "document", row["doc_id"])
            out.append((n, Doc(doc_id, str(row.get("title") or ""), str(row["text"] or ""))))
    else:
        for n, line in text_lines(path, digest):
            cols = line.split("\t")
            if len(cols) != 2 or not cols[0].strip():
                raise BenchError(f"{path}:{n}: expected doc_id<TAB>text, got {len(cols)} column(s)", HINT)
            out.append((n, Doc(_id(path, n, "document", cols[0].strip()), "", cols[1])))
    return _unique(out, "document", path)


def _read_qrels(path: Path, digest=None) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    where: dict[tuple[str, str], int] = {}
    for n, line in text_lines(path, digest):
        cols = line.split()
        if len(cols) != 4:
            raise BenchError(f"{path}:{n}: expected 'query_id 0 doc_id relevance', got {len(cols)} column(s)", HINT)
        try:
            rel = plain_number(cols[3], int)
        except ValueError as exc:
            raise BenchError(f"{path}:{n}: relevance {cols[3]!r} {exc}", HINT) from None
        qid, doc_id = cols[0], cols[2]
        before = qrels.get(qid, {}).get(doc_id)
        if before is not None and before != rel:
            raise BenchError(f"{path}:{n}: query {qid} judges {doc_id} {rel}, but line {where[qid, doc_id]} judged it "
                             f"{before}", "keep one judgment per query and document")
        where.setdefault((qid, doc_id), n)
        qrels.setdefault(qid, {})[doc_id] = rel
    if not qrels:
        raise BenchError(f"{path} has no qrels", HINT)
    return qrels


def _json_line(path: Path, n: int, line: str, required: tuple[str, ...]) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BenchError(f"{path}:{n}: not valid JSON ({exc.msg})", HINT) from None
    if not isinstance(row, dict) or any(k not in row for k in required):
        raise BenchError(f"{path}:{n}: expected an object with {', '.join(required)}", HINT)
    return row
