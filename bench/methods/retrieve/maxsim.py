"""Late interaction (ColBERT-style MaxSim) over cached, L2-normalised token states.

The score of a document for a query is the sum over the query's kept tokens (prefix and special
tokens excluded) of the best cosine between that token and any of the document's tokens. Search is
exhaustive, one chunk of whole documents at a time, so the similarity matrix stays under a fixed
number of elements whatever the corpus size; memory-mapped states are read chunk by chunk (float32
only for the chunk in hand), and a running top ``depth`` per query is merged with each chunk's.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from bench.infra import batching, devices
from bench.methods.retrieve.chunked import release_pages, top_rows
from bench.methods.retrieve.ranking import Run, top_k
from bench.methods.token_states import TokenStates

CHUNK_ELEMENTS = 1 << 24  # query tokens x document tokens per similarity block (64 MB of float32)


def _maxsim(d, q, d_lengths, q_index, n_q: int):
    """(n_q, n_docs) MaxSim of query tokens ``q`` (with their query ``q_index``) against documents ``d``
    (all their tokens, ``d_lengths`` per document): best cosine per (document, query token), summed."""
    import torch

    best = torch.segment_reduce(d @ q.T, "max", lengths=d_lengths, axis=0, unsafe=True)  # (n_docs, Tq)
    best = torch.nan_to_num(best, nan=0.0, neginf=0.0)  # a document without tokens scores 0
    return torch.zeros((len(d_lengths), n_q), device=best.device).index_add_(1, q_index, best).T


def _query_index(q_offsets: np.ndarray):
    import torch

    return torch.repeat_interleave(torch.arange(len(q_offsets) - 1), torch.from_numpy(np.diff(q_offsets)))


def scores(q_states: np.ndarray, q_offsets: np.ndarray, d_states: np.ndarray, d_offsets: np.ndarray):
    """MaxSim scores (n_queries, n_docs) of every query against every document given (no chunking)."""
    import torch

    q = torch.from_numpy(np.asarray(q_states, dtype=np.float32))
    d = torch.from_numpy(np.asarray(d_states, dtype=np.float32))
    return _maxsim(d, q, torch.from_numpy(np.diff(d_offsets)), _query_index(q_offsets), len(q_offsets) - 1)


def search(query_ids: Sequence[str], q_states: np.ndarray, q_offsets: np.ndarray, doc_ids: Sequence[str],
           d_states: np.ndarray, d_offsets: np.ndarray, depth: int = 1000,
           chunk_elements: int = CHUNK_ELEMENTS) -> Run:
    """Exhaustive MaxSim: the top ``depth`` documents of each query, documents scored chunk by chunk
    on :func:`bench.infra.devices.resolve`'s device (the running top ``depth`` is kept on the CPU)."""
    import torch
    from bench.infra import progress

    torch.set_num_threads(batching.threads())
    n_q, n_docs = len(query_ids), len(doc_ids)
    device = devices.resolve()
    q = torch.from_numpy(np.asarray(q_states, dtype=np.float32)).to(device)
    q_index = _query_index(q_offsets).to(device)
    tokens_per_chunk = max(1, chunk_elements // max(1, len(q)))
    best = torch.full((n_q, 0), float("-inf"))
    best_idx = torch.zeros((n_q, 0), dtype=torch.long)
    k = min(depth, n_docs)
    with torch.inference_mode():
        bar = progress.bar(total=n_docs, desc="MaxSim", unit="doc", disable=n_docs < 2000, mininterval=2.0)
        start = 0
        while start < n_docs:
            # whole documents, at least one, within the token budget
            stop = int(np.searchsorted(d_offsets, d_offsets[start] + tokens_per_chunk, side="right")) - 1
            stop = min(max(stop, start + 1), n_docs)
            d = torch.from_numpy(np.asarray(d_states[d_offsets[start]:d_offsets[stop]], dtype=np.float32)).to(device)
            lengths = torch.from_numpy(np.diff(d_offsets[start:stop + 1])).to(device)
            chunk = _maxsim(d, q, lengths, q_index, n_q).cpu()
            top, idx = top_rows(chunk, k)  # the chunk's best, then merged with the running best
            best, best_idx = top_rows(torch.cat([best, top], 1), k, torch.cat([best_idx, idx + start], 1))
            release_pages(d_states, int(d_offsets[stop]))
            bar.update(stop - start)
            start = stop
        bar.close()
    return {qid: {doc_ids[j]: float(s) for s, j in zip(best[r].tolist(), best_idx[r].tolist())}
            for r, qid in enumerate(query_ids)}


def rerank(query_ids: Sequence[str], q_states: np.ndarray, q_offsets: np.ndarray, doc_ids: Sequence[str],
           d_states: np.ndarray, d_offsets: np.ndarray, first_stage: Run, k: int = 100) -> Run:
    """Rescore the top ``k`` documents of ``first_stage`` by MaxSim (only those are returned)."""
    row = {d: i for i, d in enumerate(doc_ids)}
    queries, docs = TokenStates(q_states, q_offsets), TokenStates(d_states, d_offsets)
    candidates = top_k(first_stage, k)
    run: Run = {}
    for qi, qid in enumerate(query_ids):
        cands = [d for d in candidates.get(qid, []) if d in row]
        if not cands:
            run[qid] = {}
            continue
        ranked = TokenStates.join([docs.get(row[d]) for d in cands], d_states.shape[1], d_states.dtype)
        release_pages(d_states, len(d_states))  # a memory map's pages read for this query go back
        q = queries.get(qi)
        values = scores(q, np.array([0, len(q)]), ranked.states, ranked.offsets)[0].tolist()
        run[qid] = dict(zip(cands, values))
    return run
