"""Scoring with ir-measures: a per-query long table in which a query missing from the run scores 0."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
from typing import Mapping

import ir_measures
import pandas as pd

from bench.errors import BenchError
from bench.results.order import ranked

log = logging.getLogger(__name__)

# The columns of the long per-query tables, each the one before it plus the column that tells its rows apart:
# one run's (per_query(), a run's per_query.csv), then several systems' on one pair (bench.api.Results), then
# the report's (bench.results.report.model.REPORT_PER_QUERY_COLUMNS adds the pair).
RUN_PER_QUERY_COLUMNS = ["query_id", "measure", "value"]
SYSTEMS_PER_QUERY_COLUMNS = ["system", *RUN_PER_QUERY_COLUMNS]


def parse_measures(names) -> list:
    try:
        return [ir_measures.parse_measure(n) if isinstance(n, str) else n for n in names]
    except (ValueError, NameError, SyntaxError) as exc:
        raise BenchError(f"unknown measure in {list(names)}: {exc}",
                         "use ir_measures names such as AP, nDCG@10") from exc


# A tiny judged collection every measure bench accepts must score (graded qrels, an unjudged document, a
# query the run misses): what check_measures tries each measure on
_PROBE_QRELS = {"q1": {"d1": 2, "d2": 0, "d3": 1}, "q2": {"d4": 1}, "q3": {"d1": 1}}
_PROBE_RUN = {"q1": {"d1": 3.0, "d2": 2.0, "d5": 1.0}, "q2": {"d4": 2.0, "d1": 1.0}}
_PROBE = ("import json, sys\nfrom bench.results.scoring import _PROBE_QRELS, _PROBE_RUN, per_query\n"
          "per_query(_PROBE_RUN, _PROBE_QRELS, json.loads(sys.argv[1]))\n")


def check_measures(names) -> list[str]:
    """The measures ``names`` in ir_measures' canonical form, each checked before any work: its cutoff a
    whole number of at least 1, and scored on a tiny judged collection through :func:`per_query` in a
    child process (a measure can abort a provider's C code, which would end bench). A measure that
    cannot be computed here is one error naming it."""
    measures = parse_measures(names)
    for m in measures:
        cutoff = m.params.get("cutoff") if isinstance(getattr(m, "params", None), dict) else None
        if cutoff is not None and (isinstance(cutoff, bool) or not isinstance(cutoff, int) or cutoff < 1):
            raise BenchError(f"measure {m}: its cutoff must be a whole number of at least 1, not {cutoff!r}",
                             f"e.g. {m.NAME}@10")
    canonical = [str(m) for m in measures]
    if _probe(canonical) is None:
        return canonical
    for name in canonical:  # name the one that fails
        reason = _probe([name])
        if reason is not None:
            raise BenchError(f"measure {name} cannot be computed here: {reason}",
                             "choose another measure (ir_measures names, e.g. AP, nDCG@10, R@100)")
    raise BenchError(f"the measures {', '.join(canonical)} cannot be computed together: {_probe(canonical)}",
                     "give fewer measures")


def _probe(names: list[str]) -> str | None:
    """None when ``names`` score the probe collection; else why not, in a few words."""
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(names)], capture_output=True, text=True,
                          timeout=300)
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    if done.returncode < 0:
        return f"it ends the process (signal {-done.returncode})"
    return (lines[-1] if lines else f"exit status {done.returncode}")[:200]


def per_query(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]], measures) -> pd.DataFrame:
    """One row per (query with qrels, measure); queries the run does not answer get 0.

    Only queries that have qrels are scored (the usual trec_eval convention); the run's other
    queries are ignored. Every measure sees the documents in the one order of
    :func:`bench.results.order.ranked` (ir-measures' providers break equal scores differently).
    """
    measures = parse_measures(measures)
    judged = {qid: docs for qid, docs in qrels.items() if docs}
    rows = {(m.query_id, str(m.measure)): m.value for m in ir_measures.iter_calc(measures, judged, in_order(run))}
    table = [
        (qid, str(measure), float(rows.get((qid, str(measure)), 0.0)))
        for qid in sorted(judged)
        for measure in measures
    ]
    return pd.DataFrame(table, columns=RUN_PER_QUERY_COLUMNS)


def in_order(run: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """``run`` with each query's scores replaced by n, n - 1, ..., 1 in the order of :func:`ranked`: the same
    ranking, with no equal scores left for a provider to order its own way."""
    return {qid: {doc: float(len(docs) - i) for i, (doc, _) in enumerate(ranked(docs))} for qid, docs in run.items()}


def means(table: pd.DataFrame) -> dict[str, float]:
    """Mean over queries of each measure of a per-query table, measures in the order first seen (every
    judged query counts, answered or not). The one place bench averages over queries."""
    by_measure = table.groupby("measure", sort=False)["value"].mean()
    return {str(measure): float(value) for measure, value in by_measure.items()}




def checked_run(run, query_ids: set[str], pair: str, source: str, *,
                coerce_ids: bool = False) -> dict[str, dict[str, float]]:
    """A run dict ``{query_id: {doc_id: score}}`` that ``source`` made (a plugin system, a caller of
    ``bench.evaluate``), checked before it is scored: string ids (``coerce_ids``: other ids are turned into
    text), finite scores, at least one scored document, and query ids of ``pair`` (some unknown ones are
    ignored with a warning, all unknown is an error). Each failure is one error naming ``source`` and the
    entry."""
    if not isinstance(run, Mapping):
        raise BenchError(f"{source} gave a {type(run).__name__}, not a run {{query_id: {{doc_id: score}}}}")
    out: dict[str, dict[str, float]] = {}
    for qid, docs in run.items():
        if not isinstance(docs, Mapping):
            raise BenchError(f"{source}: run[{qid!r}] is a {type(docs).__name__}, not a dict {{doc_id: score}}")
        for doc_id in (qid, *docs):
            if not isinstance(doc_id, str) and not coerce_ids:
                raise BenchError(f"{source}: id {doc_id!r} is a {type(doc_id).__name__}, not a string",
                                 "query and document ids are strings, as in the collection")
        out[str(qid)] = {}
        for doc_id, score in docs.items():
            try:
                value = float(score)
            except (TypeError, ValueError):
                value = math.nan
            if isinstance(score, bool) or not math.isfinite(value):
                raise BenchError(f"{source}: run[{qid!r}][{doc_id!r}] = {score!r} is not a finite number")
            out[str(qid)][str(doc_id)] = value
    if not any(out.values()):
        raise BenchError(f"{source} gave an empty run: no query has a scored document",
                         "a run ranks documents for the pair's queries")
    unknown = [qid for qid in out if qid not in query_ids]
    if len(unknown) == len(out):
        raise BenchError(f"{source}: none of the run's {len(out)} query ids is a query of {pair} "
                         f"(e.g. {unknown[0]!r})", "is it a run of another pair?")
    if unknown:
        log.warning("%s: %d of the run's query ids are not queries of %s (e.g. %s): ignored", source,
                    len(unknown), pair, unknown[0])
    return out
