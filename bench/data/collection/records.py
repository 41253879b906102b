"""The records of a collection and bench's own datasets in ir_datasets' registry.

bench's collections (AfriQA, user pair files) build plain :class:`Records` with a loader function;
:class:`LazyDataset` exposes them as ir_datasets components and builds them on first use, so
registering costs nothing. They answer ir_datasets' whole API: ``docs_iter()``, ``queries_iter()``,
``qrels_iter()``, the counts (``docs_count()``, ``queries_count()``, ``qrels_count()``) and
``docs_store()`` (``.get(doc_id)``, ``.get_many(doc_ids)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, NamedTuple

import ir_datasets
from ir_datasets.formats import BaseDocs, BaseQrels, BaseQueries, TrecQrel
from ir_datasets.indices import Docstore


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

    def docs_store(self, field: str = "doc_id") -> "RecordsDocstore":
        return RecordsDocstore(self._owner)

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

    def queries_count(self):
        return len(self._owner.records.queries)

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

    def qrels_count(self):
        return sum(len(docs) for docs in self._owner.records.qrels.values())

    def qrels_defs(self):
        return {1: "relevant", 0: "not relevant"}

    def qrels_cls(self):
        return TrecQrel


class RecordsDocstore(Docstore):
    """Documents by id (ir_datasets' docs store API: ``get``, ``get_many``, ``get_many_iter``)."""

    def __init__(self, owner: "LazyDataset"):
        super().__init__(Doc, "doc_id")
        self._owner = owner

    def get_many_iter(self, doc_ids):
        by_id = self._owner.doc_index
        return (by_id[d] for d in doc_ids if d in by_id)


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

    @cached_property
    def doc_index(self) -> dict[str, Doc]:
        return {d.doc_id: d for d in self.records.docs}

    def forget(self) -> None:
        """Forget the parsed records (the next use runs the loader again)."""
        self.__dict__.pop("records", None)
        self.__dict__.pop("doc_index", None)

    def reload_with(self, other: "LazyDataset") -> None:
        """Read the same content through ``other``'s loader from now on (forgetting parsed records)."""
        self._loader = other._loader
        self.forget()

    def ir_dataset(self) -> ir_datasets.Dataset:
        return ir_datasets.Dataset(_LazyDocs(self), _LazyQueries(self), _LazyQrels(self))


_LAZY: dict[str, LazyDataset] = {}


def register_dataset(dataset_id: str, lazy: LazyDataset) -> None:
    """Register ``lazy`` in ir_datasets under ``dataset_id``; nothing registered is ever replaced.

    An id names one content (bench's AfriQA ids name fixed files, a user pair's id carries the sha of
    its files: ``bench-local/<name>@<sha>``), so registering an id again only points the registered
    dataset at the new loader (the same content, perhaps read from another copy of the files)."""
    known = _LAZY.get(dataset_id)
    if known is lazy:
        return
    if known is not None:
        known.reload_with(lazy)
        return
    _LAZY[dataset_id] = lazy
    ir_datasets.registry.register(dataset_id, lazy.ir_dataset())


def lazy_dataset(dataset_id: str) -> LazyDataset | None:
    return _LAZY.get(dataset_id)


def forget_records() -> None:
    """Forget every parsed :class:`Records` (the next use runs the loaders again)."""
    for lazy in _LAZY.values():
        lazy.forget()
