"""Dense retrieval: exhaustive search and reranking by inner product, and the dense systems' runs.

Encoding is :mod:`bench.methods.retrieve.encoder`'s, the cached encodings :mod:`bench.methods.retrieve.encodings`',
late interaction :mod:`bench.methods.retrieve.maxsim`'s, reading a corpus in chunks
:mod:`bench.methods.retrieve.chunked`'s; :func:`retrieve` wires them into a system's run within a memory
budget. Exhaustive search holds O(queries x depth + one chunk) whatever the corpus size. A MaxSim
search whose corpus token states would take more than the budget reranks instead: the top
``rerank_depth`` documents of the same encoders' mean-pooled search are rescored by MaxSim, and only
those documents' token states are ever encoded (the run then holds ``rerank_depth`` documents a
query, as any reranked run; ``--rerank-depth`` sets how many). The manifest says which it was.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from bench.infra import batching
from bench.data.collection import Collection
from bench.methods.retrieve import maxsim
from bench.methods.retrieve.chunked import default_budget, format_bytes, release_pages, rows_per_chunk, top_rows
from bench.methods.retrieve.encoder import Encoded, Encoder, encoder  # noqa: F401  (public names of dense retrieval)
from bench.methods.retrieve.encodings import (DOC_TEXT, STATES, DocStates, cached_doc_states, doc_lengths,  # noqa: F401
                                              doc_states, doc_vectors, query_vectors)
from bench.methods.retrieve.ranking import Run, top_k
from bench.infra.store import cached_build, fingerprint
from bench.methods.token_states import OFFSETS_FILE, TokenStates

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 << 20  # float32 document vectors scored per block by exhaustive search


# --- search ---------------------------------------------------------------------------------------


def search(query_ids: Sequence[str], queries: np.ndarray, doc_ids: Sequence[str], docs: np.ndarray,
           depth: int = 1000, chunk: int = 256, chunk_bytes: int = CHUNK_BYTES) -> Run:
    """Exhaustive search: the top ``depth`` documents of each query by inner product.

    ``docs`` (a read-only memory map, say) is read ``chunk_bytes`` of float32 at a time, each block
    scored against ``chunk`` queries at a time, and a running top ``depth`` per query merged with the
    block's (ties to the lower document index, so the chunking never changes the result).
    """
    import torch
    from bench.infra import progress

    torch.set_num_threads(batching.threads())
    n_q, n_docs = len(query_ids), len(doc_ids)
    k = min(depth, n_docs)
    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    groups = [slice(s, min(s + chunk, n_q)) for s in range(0, n_q, chunk)]
    best = [(torch.zeros((g.stop - g.start, 0)), torch.zeros((g.stop - g.start, 0), dtype=torch.long)) for g in groups]
    per_block = rows_per_chunk(int(docs.shape[1]) * 4, chunk_bytes, n_docs)
    with torch.inference_mode():
        for start in progress.bar(range(0, n_docs, per_block), desc="dense search", unit="block",
                          disable=n_docs < 100_000, mininterval=2.0):
            stop = min(start + per_block, n_docs)
            d = torch.from_numpy(np.array(docs[start:stop], dtype=np.float32))  # a copy: the map stays read-only
            for i, g in enumerate(groups):
                top, idx = top_rows(q[g] @ d.T, k)
                vals, ids = best[i]
                best[i] = top_rows(torch.cat([vals, top], 1), k, torch.cat([ids, idx + start], 1))
            release_pages(docs, stop)
    run: Run = {}
    for g, (vals, ids) in zip(groups, best):
        for row, qid in enumerate(query_ids[g]):
            run[qid] = {doc_ids[j]: float(s) for s, j in zip(vals[row].tolist(), ids[row].tolist())}
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


# --- MaxSim within a memory budget ----------------------------------------------------------------


def states_bytes(tokens: int, width: int) -> int:
    """What ``tokens`` float16 token states of ``width`` take."""
    return int(tokens) * int(width) * 2


def doc_tokens(enc: Encoder, collection: Collection) -> tuple[int, int]:
    """(token states, width) that MaxSim would keep for ``collection``: read off the states if they
    were built, else from the tokenizer's lengths of the documents (no forward pass), cached."""
    built = cached_doc_states(enc, collection)
    if built is not None:
        return int(built.offsets[-1]), int(built.states.shape[1])
    key = {"artifact": "dense-doc-tokens", "encoder": enc.key("doc"), "corpus": collection.docs_fingerprint,
           "text": DOC_TEXT, "states": STATES}

    def build(tmp: Path) -> None:
        lengths = doc_lengths(enc, collection)  # the encoder's own count (cached), specials included
        model, tokenizer = enc.loaded
        kept = int(lengths.sum()) - len(lengths) * tokenizer.num_special_tokens_to_add(pair=False)
        (tmp / "tokens.json").write_text(json.dumps({"docs": len(lengths), "tokens": kept,
                                                     "width": model.config.hidden_size}))

    counted = json.loads((cached_build("dense-docs", key, build) / "tokens.json").read_text())
    return int(counted["tokens"]), int(counted["width"])


def maxsim_plan(n_docs: int, tokens: int, width: int, budget: int, rerank_depth: int) -> dict:
    """Exhaustive MaxSim if the corpus's token states fit ``budget``; else rerank the mean-pooled top
    ``rerank_depth`` (said in one warning). The plan is what the manifest records."""
    need = states_bytes(tokens, width)
    plan = {"mode": "exhaustive", "states_bytes": need, "budget": int(budget)}
    if need <= budget:
        return plan
    log.warning("token states of %d documents would take %s > memory budget %s: MaxSim reranks the top %d "
                "of mean-pooled search instead (--memory-budget, --rerank-depth)", n_docs, format_bytes(need),
                format_bytes(budget), rerank_depth)
    return {**plan, "mode": "rerank", "first_stage": "mean", "depth": rerank_depth}


def candidate_states(enc: Encoder, collection: Collection, doc_ids: Sequence[str], budget: int,
                     width: int = 1024) -> DocStates:
    """Token states of the documents ``doc_ids`` of ``collection`` only (what a rerank reads), encoded
    in groups that fit ``budget``, streamed to disk, cached, and returned memory-mapped."""
    wanted = set(doc_ids)
    key = {"artifact": "dense-doc-states-subset", "encoder": enc.key("doc"), "corpus": collection.docs_fingerprint,
           "text": DOC_TEXT, "states": STATES, "docs": fingerprint(sorted(wanted), 32)}

    def build(tmp: Path) -> None:
        docs = [(d.doc_id, d.default_text()) for d in collection.iter_docs() if d.doc_id in wanted]
        log.info("encoding %d candidate documents token by token with %s", len(docs), enc.ref.name)
        dim, lengths = width, []
        # a document's states take at most max_length x width x 2 bytes; x2: the encoder joins a copy
        group = rows_per_chunk(enc.max_length * width * 2 * 2, budget, len(docs))
        with open(tmp / "states.f16", "wb") as out:
            for start in range(0, len(docs), group):
                part = enc.encode([text for _, text in docs[start:start + group]], "doc", token_states=True)
                dim = part.states.shape[1]
                np.ascontiguousarray(part.states, dtype=np.float16).tofile(out)  # no copy as bytes
                lengths.extend(part.lengths().tolist())
        offsets = TokenStates.offsets_of(lengths)
        (tmp / "doc_ids.json").write_text(json.dumps([d for d, _ in docs]))
        (tmp / "shape.json").write_text(json.dumps([int(offsets[-1]), int(dim)]))
        np.save(tmp / OFFSETS_FILE, offsets)

    path = cached_build("dense-docs", key, build)
    tokens, width = json.loads((path / "shape.json").read_text())
    states = (np.memmap(path / "states.f16", dtype=np.float16, mode="r", shape=(tokens, width)) if tokens
              else np.zeros((0, width), np.float16))
    return DocStates(json.loads((path / "doc_ids.json").read_text()), states, np.load(path / OFFSETS_FILE))


# --- systems --------------------------------------------------------------------------------------


def retrieve(collection: Collection, query_spec: str, doc_spec: str, queries: Sequence[tuple[str, str]], *,
             scoring: str = "mean", depth: int = 1000, first_stage: Run | None = None, rerank_depth: int = 100,
             max_length: int | None = None, memory_budget: int | None = None,
             quantize: str | None = None) -> tuple[Run, dict]:
    """A dense system's run: queries encoded by ``query_spec``, documents of ``collection`` by ``doc_spec``.

    ``scoring`` is ``mean`` (pooled vectors) or ``maxsim`` (late interaction); with a ``first_stage``
    run, its top ``rerank_depth`` documents are rescored instead of searching the whole corpus for the
    top ``depth``. ``memory_budget`` (bytes; None: a quarter of RAM) bounds the token states MaxSim
    holds (see the module's text); ``quantize`` (``int8``) quantises both encoders
    (:mod:`bench.methods.retrieve.encoder`). Returns the run and what was used, for the manifest: the models
    (``query_encoder``, ``doc_encoder``: spec and fingerprint) and, for MaxSim, ``maxsim``: the mode
    (``exhaustive`` or ``rerank``), the states' size and the budget, and which states were read.
    """
    budget = int(memory_budget or default_budget())
    q_enc, d_enc = encoder(query_spec, max_length, quantize), encoder(doc_spec, max_length, quantize)
    used = {"query_encoder": q_enc.ref.describe(), "doc_encoder": d_enc.ref.describe()}
    qids = [qid for qid, _ in queries]
    chunk_bytes = min(CHUNK_BYTES, max(1, budget // 16))
    if scoring == "maxsim":
        run, used["maxsim"] = _maxsim(collection, q_enc, d_enc, queries, depth, first_stage, rerank_depth, budget,
                                      chunk_bytes)
        return run, used
    if scoring != "mean":
        raise ValueError(f"unknown dense scoring {scoring!r}")
    q = query_vectors(q_enc, queries)
    dv = doc_vectors(d_enc, collection)
    if first_stage is not None:
        return rerank(qids, q.vectors, dv.doc_ids, dv.vectors, first_stage, rerank_depth), used
    return search(qids, q.vectors, dv.doc_ids, dv.vectors, depth, chunk_bytes=chunk_bytes), used


def corpus_files(enc: Encoder, collection: Collection, scoring: str, budget: int, rerank_depth: int,
                 reranks: bool) -> set[str]:
    """What a dense run of ``scoring`` by ``enc`` reads of the corpus (``vectors``, ``states``), as
    :func:`retrieve` decides it; ``reranks``: a first stage is given (the ``rerank`` option)."""
    if scoring == "mean":
        return {"vectors"}
    tokens, width = doc_tokens(enc, collection)
    return _maxsim_reads(maxsim_plan(collection.docs_count, tokens, width, budget, rerank_depth), reranks)


def _maxsim_reads(plan: dict, reranks: bool) -> set[str]:
    """MaxSim reads the corpus's token states where they fit the memory budget; else the vectors of its
    mean first stage, or nothing of the corpus (only its candidates' states) when it reranks a given one."""
    if plan["mode"] == "exhaustive":
        return {"states"}
    return set() if reranks else {"vectors"}


def _maxsim(collection: Collection, q_enc: Encoder, d_enc: Encoder, queries, depth: int, first_stage: Run | None,
            rerank_depth: int, budget: int, chunk_bytes: int) -> tuple[Run, dict]:
    qids = [qid for qid, _ in queries]
    tokens, width = doc_tokens(d_enc, collection)
    plan = maxsim_plan(collection.docs_count, tokens, width, budget, rerank_depth)
    fits = plan["mode"] == "exhaustive"
    if "vectors" in _maxsim_reads(plan, first_stage is not None):
        q = query_vectors(q_enc, queries)
        dv = doc_vectors(d_enc, collection)
        first_stage = search(qids, q.vectors, dv.doc_ids, dv.vectors, rerank_depth, chunk_bytes=chunk_bytes)
    elif first_stage is not None:
        plan = {**plan, "mode": "rerank", "first_stage": "given", "depth": rerank_depth}
    q = query_vectors(q_enc, queries, token_states=True)
    if first_stage is None:
        d = doc_states(d_enc, collection)
        return maxsim.search(qids, q.states, q.offsets, d.doc_ids, d.states, d.offsets, depth=depth), \
            {**plan, "states": "corpus"}
    d = cached_doc_states(d_enc, collection) or (doc_states(d_enc, collection) if fits else None)
    plan["states"] = "corpus"
    if d is None:  # only the candidates' states, never the corpus's
        candidates = sorted({doc for docs in top_k(first_stage, rerank_depth).values() for doc in docs})
        d = candidate_states(d_enc, collection, candidates, budget, width)
        plan["states"] = "candidates"
    return maxsim.rerank(qids, q.states, q.offsets, d.doc_ids, d.states, d.offsets, first_stage, rerank_depth), plan
