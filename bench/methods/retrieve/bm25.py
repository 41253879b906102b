"""Lucene BM25 through pyserini (k1 = 0.9, b = 0.4), with the index cached by fingerprint.

English documents use Lucene's English analysis as Anserini configures it (Porter stemming, English
stop words). Other languages are tokenised by :func:`bench.infra.text.tokenize`, identically for documents
and queries: Unicode NFC, case folding, split on anything that is not a letter, mark or digit; no
stemming, no stop words. They are indexed pre-tokenised with Lucene's whitespace analyzer (pyserini's
own ``--language sw`` would be a case-sensitive whitespace split, which is not what we want).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from bench.infra import progress

from bench.data.collection import Collection
from bench.methods.retrieve.lucene import ensure_jvm
from bench.infra.store import cached_build
from bench.infra.text import tokenize

log = logging.getLogger(__name__)

K1, B = 0.9, 0.4
INDEX_VERSION = 2  # bump when the way documents are written changes (2: indexes built before
# downloads were verified on every use may hold a corrupted corpus under a clean key)
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


def build_index(collection: Collection, lang: str, threads: int = 2) -> Bm25Index:
    """The Lucene index of ``collection``'s documents (built once, then reused by fingerprint)."""
    key = {
        "artifact": "lucene-index",
        "version": INDEX_VERSION,
        "collection": collection.fingerprint_key(),
        "analyzer": analyzer_name(lang),
    }

    def build(tmp: Path) -> None:
        ensure_jvm()
        from pyserini.index.lucene import LuceneIndexer

        args = ["-index", str(tmp / "index"), "-storePositions", "-storeDocvectors", "-storeRaw"]
        if lang != "en":
            args.append("-pretokenized")
        log.info("indexing %d documents with Lucene (%s)", collection.docs_count, analyzer_name(lang))
        indexer = LuceneIndexer(args=args, threads=threads)
        count, empty = _index_documents(collection, lang, indexer)
        indexer.close()
        if empty:
            log.warning("%d documents have no text and cannot be retrieved by BM25", empty)
        indexed = _doc_count(tmp / "index")
        if indexed != count:
            raise RuntimeError(f"Lucene indexed {indexed} of {count} non-empty documents")

    path = cached_build("indexes", key, build)
    return Bm25Index(path / "index", lang)


def _index_documents(collection: Collection, lang: str, indexer) -> tuple[int, int]:
    """Add every document (as Anserini's JsonCollection records, in batches of BATCH_DOCS) with a progress
    bar; returns (documents indexed, empty documents skipped)."""
    count = empty = 0
    batch: list[str] = []
    bar = progress.bar(collection.iter_docs(), total=collection.docs_count, desc=f"indexing ({analyzer_name(lang)})",
               unit="doc", mininterval=1.0, disable=collection.docs_count < 1000)
    for doc in bar:
        text = doc.default_text()
        contents = text if lang == "en" else " ".join(tokenize(text))
        if not contents.strip():  # Lucene would skip it anyway
            empty += 1
            continue
        batch.append(json.dumps({"id": doc.doc_id, "contents": contents}, ensure_ascii=False))
        count += 1
        if len(batch) >= BATCH_DOCS:
            indexer.add_batch_raw(batch)
            batch = []
    if batch:
        indexer.add_batch_raw(batch)
    return count, empty


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

    searcher = LuceneSearcher(str(index.path))
    searcher.set_bm25(k1, b)
    if index.pretokenized:
        from pyserini.analysis import JWhiteSpaceAnalyzer

        searcher.set_analyzer(JWhiteSpaceAnalyzer())
    return searcher


def prepare_query(text: str, lang: str) -> str:
    return text if lang == "en" else " ".join(tokenize(text))


def search(index: Bm25Index, queries: list[tuple[str, str]], lang: str, depth: int = 1000,
           threads: int = 2, *, k1: float = K1, b: float = B) -> dict[str, dict[str, float]]:
    """BM25 (``k1``, ``b``) top-``depth`` for each (query_id, text); a query with no matching term gets no
    results."""
    searcher = _searcher(index, k1, b)
    qids = [qid for qid, _ in queries]
    texts = [_within_limit(qid, prepare_query(text, lang)) for qid, text in queries]
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
