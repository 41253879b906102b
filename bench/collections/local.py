"""A pair defined by the user from local files, in a small YAML (or TOML) file, so a new language
needs no code. Paths are relative to the pair file::

    name: xx-en                 # QQ-DD: queries in QQ, documents in DD
    queries: queries.tsv        # query_id<TAB>text[<TAB>English translation]  (or .jsonl)
    docs: docs.jsonl            # {"doc_id", "text", "title"?} per line        (or .tsv: doc_id<TAB>text)
    qrels: qrels.txt            # TREC qrels: query_id 0 doc_id relevance
    bitext: bitext.tsv          # optional: foreign<TAB>English, one pair a line
    description: ...            # optional
    measures: [AP, nDCG@10]     # optional, ir_measures names
    low_resource: true          # optional

The collection is registered in ir_datasets as ``bench-local/<name>@<sha>`` like every other
collection: the id carries a fingerprint of the files' sha256 and the pair's settings, so a changed
file is a new dataset and nothing registered in ir_datasets is ever replaced.
Unknown keys, missing files and malformed lines are errors that name the file and line.
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
from pathlib import Path

import yaml

from bench.collections.records import Doc, LazyDataset, Query, Records, register_dataset
from bench.errors import BenchError
from bench.pairs import DEFAULT_MEASURES, PAIRS, Pair
from bench.store import fingerprint, sha256_file

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
        raise BenchError(f"{path}: pair name {name!r} is a built-in pair", "choose another name, e.g. " + name + "-local")
    files = {}
    for key in ("queries", "docs", "qrels", "bitext"):
        if config.get(key):
            files[key] = (path.parent / str(config[key])).resolve()
            if not files[key].is_file():
                raise BenchError(f"{path}: {key} file {files[key]} does not exist", "paths are relative to the pair file")
    measures = config.get("measures") or list(DEFAULT_MEASURES)
    if not isinstance(measures, list) or not all(isinstance(m, str) for m in measures):
        raise BenchError(f"{path}: measures must be a list of ir_measures names", HINT)
    from bench.evaluate import parse_measures

    parse_measures(measures)
    query_lang = str(config.get("query_lang") or match.group(1))
    doc_lang = str(config.get("doc_lang") or match.group(2))
    sources = {key: sha256_file(p) for key, p in files.items()}
    settings = {"name": name, "query_lang": query_lang, "doc_lang": doc_lang, "measures": measures}
    dataset_id = f"bench-local/{name}@{fingerprint({'files': sources, **settings}, 12)}"
    pair = Pair(
        name, query_lang, doc_lang, dataset_id,
        str(config.get("description") or f"user pair from {path.name}"),
        low_resource=bool(config.get("low_resource", True)), offline=True,
        measures=tuple(measures), files=files,
    )
    loader = lambda: load_records(files, sources)  # noqa: E731
    register_dataset(dataset_id, LazyDataset(dataset_id, query_lang, doc_lang, loader))
    # validate the files now, so a malformed line fails before any work starts
    _ = pair.collection().queries
    return pair


def _read_config(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BenchError(f"cannot read pair file {path}: {exc.strerror}", "check the path") from exc
    try:
        config = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise BenchError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: {first}", HINT) from exc
    if not isinstance(config, dict):
        raise BenchError(f"{path}: expected a mapping of keys to values", HINT)
    return config


def load_records(files: dict[str, Path], sources: dict[str, str] | None = None) -> Records:
    """The collection's records from its files; ``sources`` are their sha256 where already known."""
    queries = _read_queries(files["queries"])
    docs = _read_docs(files["docs"])
    qrels = _read_qrels(files["qrels"])
    doc_ids = {d.doc_id for d in docs}
    unknown = sum(1 for rels in qrels.values() for d in rels if d not in doc_ids)
    if unknown:
        log.warning("%s: %d qrels name documents that are not in %s", files["qrels"], unknown, files["docs"].name)
    query_ids = {q.query_id for q in queries}
    orphan = [q for q in qrels if q not in query_ids]
    if orphan:
        log.warning("%s: %d judged queries are not in %s (ignored)", files["qrels"], len(orphan), files["queries"].name)
        qrels = {q: r for q, r in qrels.items() if q in query_ids}
    sources = sources or {key: sha256_file(p) for key, p in files.items()}
    return Records(queries, docs, qrels, dict(sources), {"unknown_qrel_docs": unknown, "orphan_qrels": len(orphan)})


def _lines(path: Path):
    """(line number, line) of the non-blank lines; a UTF-8 byte-order mark is dropped, and bytes that
    are not UTF-8 are an error naming the line."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BenchError(f"{path}:{n}: not UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1})",
                                 "save the file as UTF-8") from None
            if n == 1:
                line = line.removeprefix("\ufeff")
            line = line.rstrip("\n").rstrip("\r")
            if line.strip():
                yield n, line


def _unique(items: list, kind: str, path: Path) -> list:
    seen = set()
    for item in items:
        if item[0] in seen:
            raise BenchError(f"{path}: duplicate {kind} id {item[0]!r}", "ids must be unique")
        seen.add(item[0])
    return items


def _read_queries(path: Path) -> list[Query]:
    out = []
    if path.suffix == ".jsonl":
        for n, line in _lines(path):
            row = _json_line(path, n, line, ("query_id", "text"))
            out.append(Query(str(row["query_id"]), str(row["text"]), row.get("translation")))
    else:
        for n, line in _lines(path):
            cols = line.split("\t")
            if len(cols) not in (2, 3) or not cols[0].strip() or not cols[1].strip():
                raise BenchError(f"{path}:{n}: expected query_id<TAB>text[<TAB>translation], got {len(cols)} column(s)", HINT)
            out.append(Query(cols[0].strip(), cols[1].strip(), cols[2].strip() if len(cols) == 3 else None))
    return _unique(out, "query", path)


def _read_docs(path: Path) -> list[Doc]:
    out = []
    if path.suffix == ".jsonl":
        for n, line in _lines(path):
            row = _json_line(path, n, line, ("doc_id", "text"))
            out.append(Doc(str(row["doc_id"]), str(row.get("title") or ""), str(row["text"])))
    else:
        for n, line in _lines(path):
            cols = line.split("\t")
            if len(cols) != 2 or not cols[0].strip():
                raise BenchError(f"{path}:{n}: expected doc_id<TAB>text, got {len(cols)} column(s)", HINT)
            out.append(Doc(cols[0].strip(), "", cols[1]))
    return _unique(out, "document", path)


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for n, line in _lines(path):
        cols = line.split()
        if len(cols) != 4:
            raise BenchError(f"{path}:{n}: expected 'query_id 0 doc_id relevance', got {len(cols)} column(s)", HINT)
        try:
            rel = int(cols[3])
        except ValueError:
            raise BenchError(f"{path}:{n}: relevance {cols[3]!r} is not an integer", HINT) from None
        qrels.setdefault(cols[0], {})[cols[2]] = rel
    return qrels


def _json_line(path: Path, n: int, line: str, required: tuple[str, ...]) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BenchError(f"{path}:{n}: not valid JSON ({exc.msg})", HINT) from None
    if not isinstance(row, dict) or any(k not in row for k in required):
        raise BenchError(f"{path}:{n}: expected an object with {', '.join(required)}", HINT)
    return row
