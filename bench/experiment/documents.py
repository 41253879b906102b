"""The documents of stored runs' pair, for a report that shows what went wrong in its largest losses.

A report reads runs only (:mod:`bench.results.report.losses`): to show the documents the best system ranked
above the first relevant one, it asks the loader this module makes for the pair's judgments and the titles
and texts of those documents. The pair is the one given (``--pair-file``, the pair of ``bench run``), else
the built-in pair of that name; as for the qrels (:mod:`bench.experiment.qrels`), the runs must have been
scored on the pair's data as it is now (their manifest's ``dataset_id`` and ``data``). Where the pair cannot
be loaded or its data differ, the loader gives nothing (a warning says why) and the report has no such
section: never an error.
"""

from __future__ import annotations

import logging
from typing import Collection as Ids, Mapping

from bench.data.collection import Collection
from bench.data.pair_ref import resolve_pair
from bench.data.pairs import PAIRS, Pair
from bench.errors import BenchError
from bench.experiment.qrels import check_same_data, check_same_dataset
from bench.results.runs import StoredRun

log = logging.getLogger(__name__)


class CollectionDocuments:
    """A pair's judgments and its documents' titles and texts (a
    :class:`bench.results.report.losses.PairDocuments`), each document read from the collection once."""

    def __init__(self, pair: str, collection: Collection):
        self.pair = pair
        self.qrels: Mapping[str, Mapping[str, int]] = collection.qrels
        self.sources = collection.sources  # what the runs' manifests must record (qrels.check_same_data)
        self._collection = collection
        self._found: dict[str, tuple[str, str]] = {}

    def texts(self, doc_ids: Ids[str]) -> dict[str, tuple[str, str]]:
        """doc id -> (title, text) of those of ``doc_ids`` the collection holds (the corpus is read until all
        are found; a collection that cannot be read gives what was found, with a warning)."""
        wanted = set(doc_ids) - self._found.keys()
        try:
            for doc in self._collection.iter_docs() if wanted else ():
                if doc.doc_id in wanted:
                    self._found[doc.doc_id] = (doc.title, doc.text)
                    wanted.discard(doc.doc_id)
                    if not wanted:
                        break
        except BenchError as exc:
            log.warning("the report of %s shows its documents without their texts: %s", self.pair, exc.message)
        return {d: self._found[d] for d in doc_ids if d in self._found}


def documents_loader(given: Pair | None = None):
    """A :data:`bench.results.report.losses.DocumentsLoader`: ``(pair name, runs) ->`` the documents of
    ``given`` (when it is that pair) or of the built-in pair of that name, once the runs are checked to be
    scored on its data; None (with a warning) where it is neither, or the collection cannot be read, or the
    runs were scored on other data."""
    loaded: dict[str, CollectionDocuments] = {}

    def load(pair: str, runs: list[StoredRun]) -> CollectionDocuments | None:
        if given is not None and given.name == pair:
            resolved = given
        elif pair in PAIRS:
            resolved = resolve_pair(pair)
        else:
            log.warning("the report of %s does not show the documents of its largest losses: %s is not a built-in "
                        "pair (give its pair file: --pair-file PATH)", pair, pair)
            return None
        try:
            for run in runs:
                check_same_dataset(run, resolved)
            documents = loaded.get(pair)
            if documents is None:
                documents = loaded[pair] = CollectionDocuments(pair, resolved.collection())
            for run in runs:
                check_same_data(run, resolved, documents.sources, unrecorded="showing the documents")
        except BenchError as exc:
            log.warning("the report of %s does not show the documents of its largest losses: %s", pair, exc.message)
            return None
        return documents

    return load
