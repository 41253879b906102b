"""Scoring with ir-measures: a per-query long table in which a query missing from the run scores 0."""

from __future__ import annotations

import ir_measures
import pandas as pd

from bench.errors import BenchError

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


def per_query(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]], measures) -> pd.DataFrame:
    """One row per (query with qrels, measure); queries the run does not answer get 0.

    Only queries that have qrels are scored (the usual trec_eval convention); the run's other
    queries are ignored.
    """
    measures = parse_measures(measures)
    judged = {qid: docs for qid, docs in qrels.items() if docs}
    rows = {(m.query_id, str(m.measure)): m.value for m in ir_measures.iter_calc(measures, judged, run)}
    table = [
        (qid, str(measure), float(rows.get((qid, str(measure)), 0.0)))
        for qid in sorted(judged)
        for measure in measures
    ]
    return pd.DataFrame(table, columns=RUN_PER_QUERY_COLUMNS)


def means(table: pd.DataFrame) -> dict[str, float]:
    """Mean over queries of each measure of a per-query table, measures in the order first seen (every
    judged query counts, answered or not). The one place bench averages over queries."""
    by_measure = table.groupby("measure", sort=False)["value"].mean()
    return {str(measure): float(value) for measure, value in by_measure.items()}


