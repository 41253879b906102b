"""Lucene BM25 through pyserini (k1 = 0.9, b = 0.4), with the index cached by the corpus's content.

English documents use Lucene's English analysis as Anserini configures it (Porter stemming, English
stop words). Other languages are tokenised by :func:`bench.infra.text.tokenize`, identically for documents
and queries: Unicode NFC, case folding, split on anything that is not a letter, mark or digit; no
stemming, no stop words. They are indexed pre-tokenised with Lucene's whitespace analyzer (pyserini's
own ``--language sw`` would be a case-sensitive whitespace split, which is not what we want).

The index is keyed by the documents alone (their ids and texts: ``Collection.docs_fingerprint``), the
analyzer and :data:`INDEX_VERSION`, so pairs and splits over one corpus share one index. Lucene reads each
document as a JSON record whose text may have at most :func:`max_doc_chars` characters (Jackson's limit);
a longer document is cut at the last whole word within it, with a warning naming it and what was kept.
Every Java failure, a full disk included, is one error line (:func:`bench.methods.retrieve.lucene.java_work`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from bench.infra import progress

from bench.data.collection import Collection
from bench.errors import BenchError
from bench.infra.library_output import Captured
from bench.methods.retrieve.lucene import ensure_jvm, java_error, java_work
from bench.infra.rates import timed
from bench.infra.store import artifact_dir, cached_build, says_disk_full
from bench.infra.text import tokenize

log = logging.getLogger(__name__)

K1, B = 0.9, 0.4
INDEX_VERSION = 3  # bump when the way documents are written changes (2: indexes built before
# downloads were verified on every use may hold a corrupted corpus under a clean key; 3: keyed by the
# documents alone, a document over Lucene's length limit cut instead of left out)
BATCH_DOCS = 1000  # documents handed to Lucene at once (the indexing bar moves as they go)


def analyzer_name(lang: str) -> str:
    return "lucene-english" if lang == "en" else "bench-lowercase-split"


@dataclass(frozen=True)
class Bm25Index:
    path: Path
    lang: str

    @property
    def name(self) -> str:
        return self.path.parent.name

    @property
    def pretokenized(self) -> bool:
        return self.lang != "en"


def index_key(collection: Collection, lang: str) -> dict:
    """What determines the index: the documents (not the queries or qrels), the analyzer, the version."""
    return {"artifact": "lucene-index", "version": INDEX_VERSION, "docs": collection.docs_fingerprint,
            "analyzer": analyzer_name(lang)}


def build_index(collection: Collection, lang: str, threads: int = 2) -> Bm25Index:
    """The Lucene index of ``collection``'s documents (built once, then reused by any collection of the same
    documents)."""
    key = index_key(collection, lang)
    where = artifact_dir("indexes", key)

    def build(tmp: Path) -> None:
        ensure_jvm()
        from pyserini.index.lucene import LuceneIndexer

        args = ["-index", str(tmp / "index"), "-storePositions", "-storeDocvectors", "-storeRaw"]
        if lang != "en":
            args.append("-pretokenized")
        log.info("indexing %d documents with Lucene (%s)", collection.docs_count, analyzer_name(lang))
        output = Captured()  # what Java prints while indexing (a full disk at its commit is only said there)
        with java_work(where, "indexing", output):
            indexer = LuceneIndexer(args=args, threads=threads)
        count, empty, unsure = _index_documents(collection, lang, indexer, where, output)
        with java_work(where, "indexing", output):
            indexer.close()
        if empty:
            log.warning("%d documents have no text and cannot be retrieved by BM25", empty)
        with java_work(where, "indexing", output):
            indexed = _doc_count(tmp / "index")
            missing = [] if indexed == count else _missing(tmp / "index", unsure)
        if indexed != count:
            raise _left_out(collection, where, indexed, count, missing, output)

    path = cached_build("indexes", key, timed("lucene-index", collection.docs_count, build))
    return Bm25Index(path / "index", lang)


def _index_documents(collection: Collection, lang: str, indexer, where: Path,
                     output: Captured) -> tuple[int, int, list[str]]:
    """Add every document (as Anserini's JsonCollection records, in batches of BATCH_DOCS) with a progress
    bar; returns (documents given to Lucene, empty documents skipped, the ids of the batches of which Lucene
    took fewer than it was given)."""
    count = empty = 0
    unsure: list[str] = []
    batch: list[str] = []
    ids: list[str] = []
    limit = max_doc_chars()

    def add() -> None:
        with java_work(where, "indexing", output):
            added = indexer.object.addRawDocuments(batch)  # pyserini's add_batch_raw, with Lucene's count
        if added != len(batch):
            unsure.extend(ids)
        batch.clear()
        ids.clear()

    bar = progress.bar(collection.iter_docs(), total=collection.docs_count, desc=f"indexing ({analyzer_name(lang)})",
                       unit="doc", mininterval=1.0, disable=collection.docs_count < 1000)
    for doc in bar:
        text = doc.default_text()
        contents = _within_length(collection, doc.doc_id, text if lang == "en" else " ".join(tokenize(text)), limit)
        if not contents.strip():  # Lucene would skip it anyway
            empty += 1
            continue
        batch.append(json.dumps({"id": doc.doc_id, "contents": contents}, ensure_ascii=False))
        ids.append(doc.doc_id)
        count += 1
        if len(batch) >= BATCH_DOCS:
            add()
    if batch:
        add()
    return count, empty, unsure


def max_doc_chars() -> int:
    """The most characters (UTF-16 code units) of one document's text Lucene reads: Anserini parses each
    record with Jackson, whose limit on one string is this (20,000,000 since Jackson 2.15)."""
    ensure_jvm()
    from jnius import autoclass

    return int(autoclass("com.fasterxml.jackson.core.StreamReadConstraints").defaults().getMaxStringLength())


def _within_length(collection: Collection, doc_id: str, contents: str, limit: int) -> str:
    """``contents`` cut to at most ``limit`` UTF-16 code units, after its last whole word within them, with
    a warning naming the document and what was kept."""
    if len(contents) <= limit // 2:  # a character is at most two code units
        return contents
    encoded = contents.encode("utf-16-le")
    if len(encoded) <= 2 * limit:
        return contents
    kept = encoded[:2 * limit].decode("utf-16-le", errors="ignore")  # a split surrogate pair dropped
    if not (kept[-1:].isspace() or contents[len(kept)].isspace()):  # cut inside a word: keep the words before it
        words = kept.rsplit(None, 1)
        kept = words[0] if len(words) == 2 else kept
    log.warning("document %s of %s has %s characters, more than Lucene reads of one document (%s): indexing its "
                "first %s", doc_id, collection.dataset_id, f"{len(contents):,}", f"{limit:,}", f"{len(kept):,}")
    return kept


def _missing(index_dir: Path, ids: list[str]) -> list[str]:
    """Those of ``ids`` that are not in the index."""
    from pyserini.index.lucene import LuceneIndexReader

    reader = LuceneIndexReader(str(index_dir))
    return [doc_id for doc_id in ids if reader.doc(doc_id) is None]


def _left_out(collection: Collection, where: Path, indexed: int, count: int, missing: list[str],
              output: Captured) -> BenchError:
    """The error of an index that lacks documents: a full disk where Java said so, else one line naming them."""
    if says_disk_full(output.text):
        return java_error(where, "indexing", None, output.text)
    named = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    return BenchError(f"Lucene indexed {indexed} of the {count} non-empty documents of {collection.dataset_id}"
                      + (f", not {named}" if missing else ""), "rerun with --debug to see Java's own output about it")


def _doc_count(index_dir: Path) -> int:
    from pyserini.index.lucene import LuceneIndexReader

    return int(LuceneIndexReader(str(index_dir)).stats()["documents"])


# Lucene refuses a boolean query of more than 1,024 clauses (one per distinct query term); a translated or
# structured query of a long question can have more, so bench lifts the limit for its searches
MAX_CLAUSES = 1 << 16


def _searcher(index: Bm25Index, k1: float = K1, b: float = B):
    ensure_jvm()
    from jnius import autoclass
    from pyserini.search.lucene import LuceneSearcher

    searcher_class = autoclass("org.apache.lucene.search.IndexSearcher")
    if searcher_class.getMaxClauseCount() < MAX_CLAUSES:
        searcher_class.setMaxClauseCount(MAX_CLAUSES)

    with java_work(index.path, "opening", hint=_damaged(index)):
        searcher = LuceneSearcher(str(index.path))
    searcher.set_bm25(k1, b)
    if index.pretokenized:
        from pyserini.analysis import JWhiteSpaceAnalyzer

        searcher.set_analyzer(JWhiteSpaceAnalyzer())
    return searcher


def _damaged(index: Bm25Index) -> str:
    return f"if the index is damaged, delete {index.path.parent} to build it again; --debug shows Java's trace"


def prepare_query(text: str, lang: str) -> str:
    return text if lang == "en" else " ".join(tokenize(text))


def search(index: Bm25Index, queries: list[tuple[str, str]], lang: str, depth: int = 1000,
           threads: int = 2, *, k1: float = K1, b: float = B) -> dict[str, dict[str, float]]:
    """BM25 (``k1``, ``b``) top-``depth`` for each (query_id, text); a query with no matching term gets no
    results."""
    searcher = _searcher(index, k1, b)
    qids = [qid for qid, _ in queries]
    texts = [_within_limit(qid, prepare_query(text, lang)) for qid, text in queries]
    with java_work(index.path, "searching", hint=_damaged(index)):
        hits = searcher.batch_search(texts, qids, k=depth, threads=threads)
    return {qid: {h.docid: float(h.score) for h in hits.get(qid, [])} for qid in qids}


def _within_limit(qid: str, text: str) -> str:
    """``text`` with at most :data:`MAX_CLAUSES` distinct words (the first ones), with a warning naming the query."""
    words = text.split()
    distinct = list(dict.fromkeys(words))
    if len(distinct) <= MAX_CLAUSES:
        return text
    kept = set(distinct[:MAX_CLAUSES])
    log.warning("query %s has %d distinct terms: keeping the first %d", qid, len(distinct), MAX_CLAUSES)
    return " ".join(w for w in words if w in kept)


def search_weighted(
    index: Bm25Index, queries: Mapping[str, Mapping[str, float]], depth: int = 1000, *, k1: float = K1,
    b: float = B,
) -> dict[str, dict[str, float]]:
    """BM25 with weighted bag-of-words queries: ``{qid: {term: weight}}`` (e.g. structured queries).

    Each term is analysed as the documents were (English terms stemmed), weights of terms that
    analyse to the same index term are added, and each index term becomes a boosted SHOULD clause of
    one Lucene boolean query; a query with no term left gets no results.
    """
    searcher = _searcher(index, k1, b)
    from pyserini.search.lucene import querybuilder

    should = querybuilder.JBooleanClauseOccur["should"].value
    analyse = index_analyser(index)
    run: dict[str, dict[str, float]] = {}
    for qid, terms in progress.bar(queries.items(), desc="weighted BM25", unit="query", leave=False):
        merged: dict[str, float] = {}
        for term, weight in terms.items():
            for token in analyse(term):
                merged[token] = merged.get(token, 0.0) + weight
        if len(merged) > MAX_CLAUSES:  # the heaviest terms, as many as Lucene takes
            log.warning("query %s has %d distinct terms: keeping the %d of highest weight", qid, len(merged),
                        MAX_CLAUSES)
            merged = dict(sorted(merged.items(), key=lambda kv: -kv[1])[:MAX_CLAUSES])
        builder = querybuilder.get_boolean_query_builder()
        clauses = 0
        for token, weight in sorted(merged.items()):
            if weight > 0:
                term_query = querybuilder.JTermQuery(querybuilder.JTerm("contents", token))
                builder.add(querybuilder.get_boost_query(term_query, float(weight)), should)
                clauses += 1
        with java_work(index.path, "searching", hint=_damaged(index)):
            hits = searcher.search(builder.build(), k=depth) if clauses else []
        run[qid] = {h.docid: float(h.score) for h in hits}
    return run


def index_analyser(index: Bm25Index) -> Callable[[str], list[str]]:
    """The function that turns text into the index's terms."""
    if index.pretokenized:
        return tokenize
    ensure_jvm()
    from pyserini.analysis import Analyzer, get_lucene_analyzer

    return Analyzer(get_lucene_analyzer()).analyze
