"""Collections: queries, documents and qrels, always reached through the ir_datasets API.

Built-in datasets (``clirmatrix/...``, ``wikiclir/sw``) are ir_datasets' own. bench's own collections
(AfriQA, CIRAL, AfriCLIRMatrix, user pair files) are registered into ir_datasets' registry by
:func:`register_builtin` through :class:`LazyDataset`, which builds plain records on first use, so
registering costs nothing. Each module of a built-in one declares itself as a :class:`Source` (its
dataset ids, the files each is built from, its corpus published outside GitHub); :func:`source_of` and
:func:`corpus_of` answer by dataset id, so no caller branches on an id's spelling.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from functools import cache, cached_property
from typing import Callable, Iterator

import ir_datasets

from bench.data.collection.records import (Doc, LazyDataset, Query, Records, forget_records,  # noqa: F401 (the API)
                                           lazy_dataset, register_dataset)
from bench.data.collection.remote import ExternalCorpus, Source
from bench.errors import BenchError
from bench.infra.registry import Registry

log = logging.getLogger(__name__)
_WHITESPACE = re.compile(r"\s")


def forget_loaded() -> None:
    """Forget the records parsed in this process, so the next use reads the store again
    (for a process that changes BENCH_HOME or BENCH_MIRROR, such as a test suite)."""
    from bench.data.collection import afriqa

    forget_records()
    afriqa._corpus.cache_clear()


def sources() -> tuple[Source, ...]:
    """The built-in collections of bench's own, each as its module declares itself."""
    from bench.data.collection import africlirmatrix, afriqa, ciral

    return afriqa.SOURCE, ciral.SOURCE, africlirmatrix.SOURCE


@cache
def _by_dataset() -> Registry[Source]:
    by_dataset: Registry[Source] = Registry("dataset")
    for source in sources():
        for dataset_id in source.datasets:
            by_dataset.register(dataset_id, source)
    return by_dataset


def source_of(dataset_id: str) -> Source | None:
    """The declaration of the collection module that registers ``dataset_id``; None for a dataset of
    ir_datasets' own (or a user's pair file)."""
    by_dataset = _by_dataset()
    return by_dataset.get(dataset_id) if dataset_id in by_dataset else None


def corpus_of(dataset_id: str) -> ExternalCorpus | None:
    """The corpus of ``dataset_id`` published outside GitHub, if its collection declares one."""
    source = source_of(dataset_id)
    return source.corpus(dataset_id) if source is not None and source.corpus is not None else None


def register_builtin() -> None:
    """Register bench's own collections (idempotent; called before any ir_datasets.load)."""
    for source in sources():
        source.register()


class Collection:
    """One evaluation collection of a pair, loaded through ir_datasets."""

    def __init__(self, dataset_id: str):
        register_builtin()
        self.dataset_id = dataset_id
        try:
            self.dataset = ir_datasets.load(dataset_id)
        except KeyError as exc:
            raise BenchError(f"ir_datasets has no dataset {dataset_id!r}", "check the pair definition") from exc
        except Exception as exc:  # ir_datasets downloads at load time for some collections
            raise _download_error(dataset_id, exc) from exc

    def _guard(self, what: str, fn: Callable):
        try:
            return fn()
        except BenchError:
            raise
        except Exception as exc:
            if lazy_dataset(self.dataset_id) is not None:  # bench's own loader: a bug or a bad file, not the network
                raise BenchError(f"cannot read the {what} of {self.dataset_id}: {_root_reason(exc)}",
                                 "check the collection's files (bench fetch re-verifies downloaded ones)") from exc
            raise _download_error(self.dataset_id, exc, what) from exc

    @cached_property
    def queries(self) -> list[Query]:
        def load():
            return [
                q if isinstance(q, Query) else Query(q.query_id, q.default_text())
                for q in self.dataset.queries_iter()
            ]
        queries = self._guard("queries", load)
        for q in queries:
            self._check_id("query", q.query_id)
        return queries

    def iter_docs(self) -> Iterator[Doc]:
        def start():
            return iter(self.dataset.docs_iter())
        it = self._guard("documents", start)
        for d in it:
            self._check_id("document", d.doc_id)
            yield d if isinstance(d, Doc) else Doc(d.doc_id, "", d.default_text())

    def _check_id(self, kind: str, value) -> None:
        """Ids become fields of space-separated TREC lines: empty ones, or ones with whitespace, are refused
        (bench's own loaders name the file and line; this catches any other collection)."""
        if not isinstance(value, str) or not value or _WHITESPACE.search(value):
            raise BenchError(f"{self.dataset_id}: {kind} id {value!r} is empty or contains whitespace",
                             "ids must be non-empty and contain no whitespace (TREC runs are space-separated)")

    @cached_property
    def docs_count(self) -> int:
        return self._guard("documents", self.dataset.docs_count)

    @cached_property
    def qrels(self) -> dict[str, dict[str, int]]:
        def load():
            out: dict[str, dict[str, int]] = {}
            for q in self.dataset.qrels_iter():
                out.setdefault(q.query_id, {})[q.doc_id] = int(q.relevance)
            return out
        return self._guard("qrels", load)

    @property
    def sources(self) -> dict[str, str]:
        """sha256 of every input file where bench built the collection; else the dataset id."""
        lazy = lazy_dataset(self.dataset_id)
        if lazy is not None:
            return dict(lazy.records.sources)
        return {self.dataset_id: f"ir_datasets=={ir_datasets.__version__}"}

    @property
    def notes(self) -> dict[str, int]:
        lazy = lazy_dataset(self.dataset_id)
        return dict(lazy.records.notes) if lazy is not None else {}

    def fingerprint_key(self) -> dict:
        return {"dataset": self.dataset_id, "sources": self.sources}

    @cached_property
    def docs_fingerprint(self) -> str:
        """sha256 of the corpus itself (ids and texts), so collections sharing a corpus (the AfriQA
        pairs and their tuning splits) share whatever is computed from it, such as the Lucene index and
        document vectors. A corpus is read for it once: the value is remembered in BENCH_HOME under the
        collection's :meth:`fingerprint_key` (its files' sha256), which determines it."""
        from bench.infra.store import atomic_file, bench_home, fingerprint, NotBuilt, raise_if_probing

        memo = bench_home() / "docs-fingerprints" / fingerprint(self.fingerprint_key())
        with contextlib.suppress(OSError, UnicodeDecodeError):
            known = memo.read_text().strip()
            if re.fullmatch(r"[0-9a-f]{16}", known):
                return known
        digest = hashlib.sha256()
        for doc in self.iter_docs():
            digest.update(f"{doc.doc_id}\0{doc.default_text()}\0".encode())
        value = digest.hexdigest()[:16]
        try:
            raise_if_probing("the documents' fingerprint")  # a plan's estimate writes nothing
            with atomic_file(memo) as tmp:
                tmp.write_text(value)
        except NotBuilt:
            pass
        except (OSError, BenchError) as exc:  # a read-only or full BENCH_HOME: read the corpus again next time
            log.debug("cannot remember the documents' fingerprint of %s: %s", self.dataset_id, exc)
        return value


def _root(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    return exc


def _root_reason(exc: BaseException) -> str:
    """The first line of the innermost cause of ``exc``, with its type."""
    root = _root(exc)
    first = (str(root).strip().splitlines() or [""])[0][:160]
    return f"{type(root).__name__}: {first}" if first else type(root).__name__


def _is_network(exc: BaseException) -> bool:
    root = _root(exc)
    if isinstance(root, (ConnectionError, TimeoutError)):
        return True
    text = f"{type(root).__module__} {root}".lower()
    return any(w in text for w in ("requests", "urllib", "http", "download", "connect", "resolve"))


def _download_error(dataset_id: str, exc: Exception, what: str = "data") -> BenchError:
    """An ir_datasets failure: the network where the cause is a network or download error, else the cause."""
    if not _is_network(exc):
        return BenchError(f"ir_datasets cannot read the {what} of {dataset_id}: {_root_reason(exc)}",
                          "check its files under ~/.ir_datasets (delete them to download again)")
    reason = (str(_root(exc)).strip().splitlines() or [type(_root(exc)).__name__])[0][:160]
    return BenchError(
        f"cannot load the {what} of {dataset_id} through ir_datasets: {reason}",
        "this collection is downloaded by ir_datasets and needs the internet (or its files in "
        "~/.ir_datasets); use an AfriQA pair (sw-en, ha-en, yo-en) offline",
    )
