"""Collections: queries, documents and qrels, always reached through the ir_datasets API.

Built-in datasets (``clirmatrix/...``, ``wikiclir/sw``) are ir_datasets' own. bench's own collections
(AfriQA, user pair files) are registered into ir_datasets' registry by :func:`register_builtin`
through :class:`LazyDataset`, which builds plain records on first use, so registering costs nothing.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Iterator, NamedTuple

import ir_datasets
from ir_datasets.formats import BaseDocs, BaseQrels, BaseQueries, TrecQrel

from bench.errors import BenchError

log = logging.getLogger(__name__)


class Query(NamedTuple):
    """A query with, where the collection has one, its human English translation (for oracles)."""

    query_id: str
    text: str
    translation: str | None = None

    def default_text(self) -> str:
        return self.text


class Doc(NamedTuple):
    doc_id: str
    title: str
    text: str

    def default_text(self) -> str:
        return f"{self.title} {self.text}".strip() if self.title else self.text


@dataclass
class Records:
    """A collection as plain records, as built by a loader function."""

    queries: list[Query]
    docs: list[Doc]
    qrels: dict[str, dict[str, int]]
    sources: dict[str, str] = field(default_factory=dict)  # name -> sha256 of every input file
    notes: dict[str, int] = field(default_factory=dict)  # counts of what the builder dropped, and why


class _LazyDocs(BaseDocs):
    def __init__(self, owner: "LazyDataset"):
        self._owner = owner

    def docs_iter(self):
        return iter(self._owner.records.docs)

    def docs_count(self):
        return len(self._owner.records.docs)

    def docs_cls(self):
        return Doc

    def docs_namespace(self):
        return self._owner.namespace

    def docs_lang(self):
        return self._owner.doc_lang


class _LazyQueries(BaseQueries):
    def __init__(self, owner: "LazyDataset"):
        self._owner = owner

    def queries_iter(self):
        return iter(self._owner.records.queries)

    def queries_cls(self):
        return Query

    def queries_namespace(self):
        return self._owner.namespace

    def queries_lang(self):
        return self._owner.query_lang


class _LazyQrels(BaseQrels):
    def __init__(self, owner: "LazyDataset"):
        self._owner = owner

    def qrels_iter(self):
        for qid, docs in self._owner.records.qrels.items():
            for doc_id, rel in docs.items():
                yield TrecQrel(qid, doc_id, rel, "0")

    def qrels_defs(self):
        return {1: "relevant", 0: "not relevant"}

    def qrels_cls(self):
        return TrecQrel


class LazyDataset:
    """Builds its :class:`Records` with ``loader`` on first access; exposes ir_datasets components."""

    def __init__(self, namespace: str, query_lang: str, doc_lang: str, loader: Callable[[], Records]):
        self.namespace = namespace
        self.query_lang = query_lang
        self.doc_lang = doc_lang
        self._loader = loader

    @cached_property
    def records(self) -> Records:
        return self._loader()

    def ir_dataset(self) -> ir_datasets.Dataset:
        return ir_datasets.Dataset(_LazyDocs(self), _LazyQueries(self), _LazyQrels(self))


_LAZY: dict[str, LazyDataset] = {}


def register_dataset(dataset_id: str, lazy: LazyDataset) -> None:
    """Register ``lazy`` in ir_datasets under ``dataset_id`` (again only if it is the same object)."""
    if _LAZY.get(dataset_id) is lazy:
        return
    if dataset_id in _LAZY:
        # a user pair file re-registered with new contents (tests, notebooks): replace it
        ir_datasets.registry._registered.pop(dataset_id, None)
    _LAZY[dataset_id] = lazy
    ir_datasets.registry.register(dataset_id, lazy.ir_dataset())


def lazy_dataset(dataset_id: str) -> LazyDataset | None:
    return _LAZY.get(dataset_id)


def forget_loaded() -> None:
    """Forget the records parsed in this process, so the next use reads the store again
    (for a process that changes BENCH_HOME or BENCH_MIRROR, such as a test suite)."""
    from bench.collections import afriqa

    for lazy in _LAZY.values():
        lazy.__dict__.pop("records", None)
    afriqa._corpus.cache_clear()


def register_builtin() -> None:
    """Register bench's own collections (idempotent; called before any ir_datasets.load)."""
    from bench.collections import afriqa

    afriqa.register()


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
            raise _download_error(self.dataset_id, exc, what) from exc

    @cached_property
    def queries(self) -> list[Query]:
        def load():
            return [
                q if isinstance(q, Query) else Query(q.query_id, q.default_text())
                for q in self.dataset.queries_iter()
            ]
        return self._guard("queries", load)

    def iter_docs(self) -> Iterator[Doc]:
        def start():
            return iter(self.dataset.docs_iter())
        it = self._guard("documents", start)
        for d in it:
            yield d if isinstance(d, Doc) else Doc(d.doc_id, "", d.default_text())

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
        pairs and their tuning splits) share whatever is computed from it, such as document vectors."""
        digest = hashlib.sha256()
        for doc in self.iter_docs():
            digest.update(f"{doc.doc_id}\0{doc.default_text()}\0".encode())
        return digest.hexdigest()[:16]


def _download_error(dataset_id: str, exc: Exception, what: str = "data") -> BenchError:
    root = exc
    while root.__cause__ is not None or root.__context__ is not None:
        root = root.__cause__ or root.__context__
    reason = (str(root).strip().splitlines() or [type(root).__name__])[0][:160]
    return BenchError(
        f"cannot load the {what} of {dataset_id} through ir_datasets: {reason}",
        "this collection is downloaded by ir_datasets and needs the internet (or its files in "
        "~/.ir_datasets); use an AfriQA pair (sw-en, ha-en, yo-en) offline",
    )
