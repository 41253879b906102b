"""Score fusion of runs: weighted CombSUM of min-max normalised scores, and weighted reciprocal rank fusion.

- :func:`combsum`: each run's scores are rescaled per query to [0, 1] (a query whose documents all score the
  same gets 1 for each), so that BM25 scores and cosine similarities can be added, then summed with the
  run's weight. The built-in hybrids (``mdense-hybrid``, ``optical-hybrid``) are this function applied to
  their two components, as is ``bench fuse --method combsum``.
- :func:`rrf`: reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009): a document scores
  ``sum_i w_i / (k + rank_i)``, ``rank_i`` its rank in run ``i`` (from 1, in the one order of
  :func:`bench.results.order.ranked`: by score, equal scores by document id descending), ``k`` 60 by default.

In both, a document missing from a run contributes 0 from it, and the fused run keeps the ``depth`` best
documents of each query in that same order, so the result does not depend on dictionary order.
:func:`fuse` is either by name (:data:`METHODS`). Weights must be one per run, none negative and not all
zero; ``k`` must be positive: anything else is a :class:`BenchError`.
"""

from __future__ import annotations

import math
from typing import Sequence

from bench.errors import BenchError
from bench.methods.retrieve.ranking import Run
from bench.results.order import ranked

RRF_K = 60  # Cormack et al. (2009)


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


def check_weights(n_runs: int, weights: Sequence[float]) -> None:
    """One finite, non-negative weight per run (at least one run, not every weight 0)."""
    if not n_runs:
        raise BenchError("nothing to fuse: no run given", "give the runs to fuse")
    if len(weights) != n_runs:
        raise BenchError(f"{len(weights)} weight(s) for {n_runs} run(s)", "give one weight per run, in the runs' order")
    for weight in weights:
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise BenchError(f"weight {weight!r} is not a finite number", "weights are numbers such as 0.5")
        if weight < 0:
            raise BenchError(f"weight {weight:g} is negative", "weights are 0 or more")
    if not any(weights):
        raise BenchError("every weight is 0: the fused run would score every document 0", "give a positive weight")


def check_k(k: float) -> None:
    """The RRF constant: a finite number above 0."""
    number = not isinstance(k, bool) and isinstance(k, (int, float)) and math.isfinite(k)
    if not number or k <= 0:
        raise BenchError(f"the RRF constant k must be a positive number, not {f'{k:g}' if number else repr(k)}",
                         f"e.g. {RRF_K}, the default")


def _best(fused: Run, depth: int | None) -> Run:
    return {qid: dict(ranked(docs, depth)) for qid, docs in fused.items()}


def combsum(runs: Sequence[Run], weights: Sequence[float], depth: int = 1000) -> Run:
    """Weighted sum of the min-max normalised runs, top ``depth`` per query."""
    check_weights(len(runs), weights)
    fused: Run = {}
    for run, weight in zip(runs, weights):
        for qid, docs in minmax(run).items():
            target = fused.setdefault(qid, {})
            for doc, score in docs.items():
                target[doc] = target.get(doc, 0.0) + weight * score
    return _best(fused, depth)


def rrf(runs: Sequence[Run], weights: Sequence[float], depth: int = 1000, k: float = RRF_K) -> Run:
    """Weighted reciprocal rank fusion: ``sum_i w_i / (k + rank_i)``, top ``depth`` per query."""
    check_weights(len(runs), weights)
    check_k(k)
    fused: Run = {}
    for run, weight in zip(runs, weights):
        for qid, docs in run.items():
            target = fused.setdefault(qid, {})
            for rank, (doc, _) in enumerate(ranked(docs), 1):
                target[doc] = target.get(doc, 0.0) + weight / (k + rank)
    return _best(fused, depth)


METHODS = ("combsum", "rrf")


def fuse(method: str, runs: Sequence[Run], weights: Sequence[float], depth: int = 1000, k: float = RRF_K) -> Run:
    """The runs fused by ``method`` (one of :data:`METHODS`; ``k`` is read by ``rrf`` only)."""
    if method == "combsum":
        return combsum(runs, weights, depth)
    if method == "rrf":
        return rrf(runs, weights, depth, k)
    raise BenchError(f"unknown fusion method {method!r}", "one of: " + ", ".join(METHODS))
