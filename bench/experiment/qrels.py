"""The qrels of stored runs, for a report that scores them with measures they were not stored with.

A report reads runs only (:mod:`bench.results.report`); when it needs a measure a run lacks, it asks the
loader this module makes for the pair's qrels, given the runs that need them. The pair is the one given
(``--pair-file``, or the pair of ``bench eval``), else the built-in pair of that name; the qrels are only
used for runs that were scored on the same data: their manifest's ``dataset_id`` and ``data`` (the sha256 of
the collection's files) must be the pair's now, so a stored value and a computed one never come from two
versions of the judgments.
"""

from __future__ import annotations

import logging
from typing import Mapping

from bench.data.pair_ref import resolve_pair
from bench.data.pairs import PAIRS, Pair
from bench.errors import BenchError
from bench.results.runs import StoredRun, redo_hint

log = logging.getLogger(__name__)

_IR_DATASETS = "ir_datasets=="  # a collection read through ir_datasets records its version, not file hashes


def qrels_loader(given: Pair | None = None):
    """A :data:`bench.results.report.model.QrelsLoader`: ``(pair name, runs) -> qrels`` of ``given`` (when it is
    that pair) or of the built-in pair of that name, checked against the runs' manifests."""

    def load(pair: str, runs: list[StoredRun]) -> Mapping[str, Mapping[str, int]]:
        if given is not None and given.name == pair:
            resolved = given
        elif pair in PAIRS:
            resolved = resolve_pair(pair)
        else:
            raise BenchError(f"the runs of {pair} need its qrels to be scored with other measures, and {pair} is "
                             "not a built-in pair", "give its pair file: --pair-file PATH")
        collection = resolved.collection()
        for run in runs:
            check_same_data(run, resolved, collection.sources)
        return collection.qrels

    return load


def check_same_dataset(run: StoredRun, pair: Pair) -> None:
    """The run was scored on ``pair``'s dataset (the id its manifest records, where it records one), else one
    error; checked before the collection is read."""
    recorded_id = run.manifest.get("dataset_id")
    if recorded_id is not None and recorded_id != pair.dataset_id:
        raise BenchError(f"run {run.path} was scored on {recorded_id}, not on {pair.dataset_id}: its qrels are "
                         "not those here", redo_hint(run.manifest))


def check_same_data(run: StoredRun, pair: Pair, sources: Mapping[str, str],
                    unrecorded: str = "scoring it on the qrels") -> None:
    """The run was scored on ``pair``'s data as it is now (dataset id and files' sha256), else one error; a run
    that records no sha256 is taken with a warning that says what is done with it (``unrecorded``)."""
    check_same_dataset(run, pair)
    recorded = run.manifest.get("data")
    if not isinstance(recorded, dict):
        log.warning("run %s does not record its data's sha256: %s of %s as they are now", run.path, unrecorded,
                    pair.name)
        return
    differ = sorted(k for k in recorded.keys() | sources.keys() if recorded.get(k) != sources.get(k)
                    and not (str(recorded.get(k, "")).startswith(_IR_DATASETS)
                             and str(sources.get(k, "")).startswith(_IR_DATASETS)))
    if differ:
        raise BenchError(f"run {run.path} was scored on other data than {pair.name}'s here ({differ[0]} differs): "
                         "its qrels may have changed", redo_hint(run.manifest))
