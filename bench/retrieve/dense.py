"""Dense retrieval: exhaustive search and reranking by inner product, and the dense systems' runs.

Encoding is :mod:`bench.retrieve.encoder`'s, the cached encodings :mod:`bench.retrieve.encodings`',
late interaction :mod:`bench.retrieve.maxsim`'s; :func:`retrieve` wires them into a system's run.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from bench import batching
from bench.collections import Collection
from bench.retrieve import maxsim
from bench.retrieve.encoder import Encoded, Encoder, encoder  # noqa: F401  (public names of dense retrieval)
from bench.retrieve.encodings import doc_states, doc_vectors, query_vectors  # noqa: F401
from bench.retrieve.ranking import Run, top_k

log = logging.getLogger(__name__)


# --- search ---------------------------------------------------------------------------------------


def search(query_ids: Sequence[str], queries: np.ndarray, doc_ids: Sequence[str], docs: np.ndarray,
           depth: int = 1000, chunk: int = 256) -> Run:
    """Exhaustive search: the top ``depth`` documents of each query by inner product."""
    import torch

    torch.set_num_threads(batching.threads())
    d = torch.from_numpy(np.ascontiguousarray(docs, dtype=np.float32))
    k = min(depth, len(doc_ids))
    run: Run = {}
    with torch.inference_mode():
        for start in range(0, len(query_ids), chunk):
            q = torch.from_numpy(np.ascontiguousarray(queries[start:start + chunk], dtype=np.float32))
            scores, idx = torch.topk(q @ d.T, k, dim=1)
            for row, qid in enumerate(query_ids[start:start + chunk]):
                run[qid] = {doc_ids[j]: float(s) for s, j in zip(scores[row].tolist(), idx[row].tolist())}
    return run


def rerank(query_ids: Sequence[str], queries: np.ndarray, doc_ids: Sequence[str], docs: np.ndarray,
           first_stage: Run, k: int = 100) -> Run:
    """Rescore the top ``k`` documents of ``first_stage`` by inner product (only those are returned)."""
    row = {d: i for i, d in enumerate(doc_ids)}
    run: Run = {}
    candidates = top_k(first_stage, k)
    for qi, qid in enumerate(query_ids):
        cands = [d for d in candidates.get(qid, []) if d in row]
        scores = docs[[row[d] for d in cands]] @ queries[qi] if cands else []
        run[qid] = {d: float(s) for d, s in zip(cands, scores)}
    return run


# --- systems --------------------------------------------------------------------------------------


def retrieve(collection: Collection, query_spec: str, doc_spec: str, queries: Sequence[tuple[str, str]], *,
             scoring: str = "mean", depth: int = 1000, first_stage: Run | None = None, rerank_depth: int = 100,
             max_length: int | None = None) -> tuple[Run, dict]:
    """A dense system's run: queries encoded by ``query_spec``, documents of ``collection`` by ``doc_spec``.

    ``scoring`` is ``mean`` (pooled vectors) or ``maxsim`` (late interaction); with a ``first_stage``
    run, its top ``rerank_depth`` documents are rescored instead of searching the whole corpus for the
    top ``depth``. Returns the run and the models used (``query_encoder``, ``doc_encoder``: spec and
    fingerprint), for the manifest.
    """
    q_enc, d_enc = encoder(query_spec, max_length), encoder(doc_spec, max_length)
    used = {"query_encoder": q_enc.ref.describe(), "doc_encoder": d_enc.ref.describe()}
    qids = [qid for qid, _ in queries]
    if scoring == "maxsim":
        q = query_vectors(q_enc, queries, token_states=True)
        d = doc_states(d_enc, collection)
        args = (qids, q.states, q.offsets, d.doc_ids, d.states, d.offsets)
        if first_stage is not None:
            return maxsim.rerank(*args, first_stage, rerank_depth), used
        return maxsim.search(*args, depth=depth), used
    if scoring != "mean":
        raise ValueError(f"unknown dense scoring {scoring!r}")
    q = query_vectors(q_enc, queries)
    dv = doc_vectors(d_enc, collection)
    if first_stage is not None:
        return rerank(qids, q.vectors, dv.doc_ids, dv.vectors, first_stage, rerank_depth), used
    return search(qids, q.vectors, dv.doc_ids, dv.vectors, depth), used
