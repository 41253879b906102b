"""Score fusion of runs (hybrid lexical + dense retrieval): weighted CombSUM of min-max normalised scores.

Each run's scores are rescaled per query to [0, 1] (a query whose documents all score the same gets
1 for each), so that BM25 scores and cosine similarities can be added; a document missing from a run
contributes 0 from it. The fused run keeps the ``depth`` best documents of each query, ties broken by
document id so the result does not depend on dictionary order.
"""

from __future__ import annotations

from typing import Sequence

from bench.methods.retrieve.ranking import Run


def minmax(run: Run) -> Run:
    out = {}
    for qid, docs in run.items():
        if not docs:
            out[qid] = {}
            continue
        low, high = min(docs.values()), max(docs.values())
        span = high - low
        out[qid] = {d: (s - low) / span if span > 0 else 1.0 for d, s in docs.items()}
    return out


def combsum(runs: Sequence[Run], weights: Sequence[float], depth: int = 1000) -> Run:
    """Weighted sum of the min-max normalised runs, top ``depth`` per query."""
    if len(runs) != len(weights) or not runs:
        raise ValueError("one weight per run, at least one run")
    fused: Run = {}
    for run, weight in zip(runs, weights):
        for qid, docs in minmax(run).items():
            target = fused.setdefault(qid, {})
            for doc, score in docs.items():
                target[doc] = target.get(doc, 0.0) + weight * score
    return {qid: dict(sorted(docs.items(), key=lambda x: (-x[1], x[0]))[:depth]) for qid, docs in fused.items()}
