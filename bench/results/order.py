"""The one order of a run's documents: score descending, equal scores by document id descending.

Equal scores are ordered as trec_eval orders them (by document id, descending), and bench uses that
order everywhere a run is ranked: the rank column of the TREC files it writes, the top of a run
(``Results.top``, the rerank depth), the ranks reciprocal rank fusion adds, and the scoring itself
(:func:`bench.results.scoring.per_query` hands ir-measures the run in this order, so measures computed by
different ir-measures providers, which otherwise break ties differently, all see the same ranking).
"""

from __future__ import annotations

from typing import Mapping


def ranked(docs: Mapping[str, float], depth: int | None = None) -> list[tuple[str, float]]:
    """``(doc_id, score)`` best first, equal scores by doc id descending; the first ``depth`` (all: None)."""
    return sorted(docs.items(), key=_key, reverse=True)[:depth]


def _key(item: tuple[str, float]) -> tuple[float, str]:
    return item[1], item[0]
