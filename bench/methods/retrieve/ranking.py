"""The run type every retriever returns, and reading the top of a run.

Dense (:mod:`bench.methods.retrieve.dense`) and late-interaction (:mod:`bench.methods.retrieve.maxsim`) scoring both
produce and rerank runs; this module is what they share, so neither imports the other for it.
"""

from __future__ import annotations

from bench.results.order import ranked

Run = dict[str, dict[str, float]]  # query id -> {doc id: score}


def top_k(run: Run, k: int) -> dict[str, list[str]]:
    """The ``k`` best documents of each query of a run, in the order of its TREC file (:func:`ranked`)."""
    return {qid: [d for d, _ in ranked(docs, k)] for qid, docs in run.items()}
