"""Dense retrieval: encode with a model's own conventions, cache by fingerprint, search exhaustively.

An :class:`Encoder` applies its model's conventions (E5: ``query: `` / ``passage: `` prefixes; mean
pooling over non-padding tokens; L2 normalisation) in length-sorted batches under
``torch.inference_mode`` with torch threads set to the cores. Its model is loaded only when something
has to be encoded, so a fully cached run never loads it.

Document vectors are cached under ``BENCH_HOME/dense-docs/<fingerprint>`` keyed by the model
fingerprint, the corpus, the maximum length, the prefix and the pooling, and so are shared by every
system and run that encodes the same side with the same model. Per-token document states for late
interaction (:mod:`bench.retrieve.maxsim`) are a second artifact, built by the same pass.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from bench import batching, models
from bench.collections import Collection
from bench.retrieve import maxsim
from bench.retrieve.ranking import Run, top_k
from bench.store import artifact_dir, cached_build, fingerprint, is_complete

log = logging.getLogger(__name__)

ENCODE_VERSION = 1  # bump when the way texts are encoded changes
BATCH_TOKENS = 8192  # padded tokens per forward pass (length-sorted batches)
MAX_BATCH = 64
DOC_TEXT = "title+text"  # what a document's text is: Doc.default_text()
_PLURAL = {"query": "queries", "doc": "documents"}
STATES_WITH_VECTORS_MAX_DOCS = 20_000  # ~2.3 GB of float16 token states at 150 tokens a passage


@dataclass
class Encoded:
    """Pooled vectors of n texts and, optionally, their kept token states (row i = tokens offsets[i]:offsets[i+1])."""

    vectors: np.ndarray  # (n, d) float32
    states: np.ndarray | None = None  # (T, d) float16, L2-normalised per token
    offsets: np.ndarray | None = None  # (n + 1,) int64


class Encoder:
    """A resolved model with its conventions; the model itself is loaded on first use."""

    def __init__(self, ref: models.ModelRef, max_length: int | None = None,
                 batch_tokens: int = BATCH_TOKENS, max_batch: int = MAX_BATCH):
        self.ref = ref
        self.conventions = ref.conventions
        self.max_length = int(max_length or ref.conventions.max_length)
        self.batch_tokens = batch_tokens
        self.max_batch = max_batch
        self._loaded = None

    @property
    def loaded(self):
        if self._loaded is None:
            self._loaded = models.load(self.ref)
        return self._loaded

    def prefix(self, side: str) -> str:
        return self.conventions.query_prefix if side == "query" else self.conventions.doc_prefix

    def key(self, side: str) -> dict:
        """Everything about this encoder that determines the vectors of one side."""
        c = self.conventions
        return {"model": self.ref.fingerprint, "max_length": self.max_length, "prefix": self.prefix(side),
                "pooling": c.pooling, "normalize": c.normalize, "version": ENCODE_VERSION}

    def encode(self, texts: Sequence[str], side: str, token_states: bool = False, desc: str | None = None) -> Encoded:
        """Encode ``texts`` as queries or documents (``side``); keep token states if asked.

        Token states drop special tokens and padding; on the query side also the prefix tokens.
        """
        import torch
        from tqdm import tqdm

        model, tokenizer = self.loaded
        torch.set_num_threads(batching.threads())
        prefix = self.prefix(side)
        drop_prefix = token_states and side == "query" and bool(prefix.strip())
        batch = tokenizer([prefix + t for t in texts], truncation=True, max_length=self.max_length,
                          return_attention_mask=False, return_token_type_ids=False,
                          return_special_tokens_mask=token_states, return_offsets_mapping=drop_prefix)
        ids = batch["input_ids"]
        keep = _kept_tokens(batch, len(prefix.rstrip()) if drop_prefix else 0) if token_states else None
        vectors = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
        states: list[np.ndarray | None] = [None] * len(texts)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        bar = tqdm(total=len(texts), desc=desc or f"encoding {_PLURAL[side]} ({self.ref.name})", unit=side,
                   disable=len(texts) < 256, mininterval=2.0)
        with torch.inference_mode(), bar:
            for rows in batching.length_batches([len(x) for x in ids], self.batch_tokens, self.max_batch):
                input_ids, mask = batching.pad_batch(ids, rows, pad_id)
                hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
                vectors[rows] = self._pool(hidden, mask).numpy()
                if token_states:
                    normed = torch.nn.functional.normalize(hidden, dim=-1).to(torch.float16).numpy()
                    for j, i in enumerate(rows):
                        states[i] = normed[j, :len(ids[i])][keep[i]]
                bar.update(len(rows))
        if not token_states:
            return Encoded(vectors)
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(s) for s in states])
        dim = vectors.shape[1]
        flat = np.concatenate(states) if states else np.zeros((0, dim), np.float16)
        return Encoded(vectors, flat.reshape(-1, dim), offsets)

    def _pool(self, hidden, mask):
        import torch

        if self.conventions.pooling == "cls":
            pooled = hidden[:, 0]
        else:  # mean over real tokens only: padding never counts
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
        return torch.nn.functional.normalize(pooled, dim=-1) if self.conventions.normalize else pooled


def _kept_tokens(batch, prefix_chars: int) -> list[np.ndarray]:
    """Per text, a boolean mask of the tokens whose states are kept (not special, not prefix)."""
    out = []
    for i, special in enumerate(batch["special_tokens_mask"]):
        keep = np.asarray(special, dtype=np.int8) == 0
        if prefix_chars:
            starts = np.array([s for s, _ in batch["offset_mapping"][i]])
            keep &= starts >= prefix_chars
        out.append(keep)
    return out


_ENCODERS: dict[tuple, Encoder] = {}


def encoder(spec: str, max_length: int | None = None) -> Encoder:
    """The encoder of a model spec (one per spec and length per process, so a model loads once)."""
    key = (spec, max_length)
    if key not in _ENCODERS:
        _ENCODERS[key] = Encoder(models.resolve(spec), max_length)
    return _ENCODERS[key]


# --- cached document and query vectors ------------------------------------------------------------


@dataclass
class DocVectors:
    doc_ids: list[str]
    vectors: np.ndarray  # (n, d) float32


@dataclass
class DocStates:
    doc_ids: list[str]
    states: np.ndarray  # (T, d) float16, memory-mapped
    offsets: np.ndarray  # (n + 1,) int64


def _doc_key(enc: Encoder, collection: Collection, artifact: str) -> dict:
    return {"artifact": artifact, "encoder": enc.key("doc"), "corpus": collection.docs_fingerprint, "text": DOC_TEXT}


def _read_docs(collection: Collection) -> tuple[list[str], list[str]]:
    docs = list(collection.iter_docs())
    return [d.doc_id for d in docs], [d.default_text() for d in docs]


def _write_vectors(tmp: Path, doc_ids: list[str], vectors: np.ndarray) -> None:
    (tmp / "doc_ids.json").write_text(json.dumps(doc_ids))
    np.save(tmp / "vectors.npy", vectors)


def doc_vectors(enc: Encoder, collection: Collection) -> DocVectors:
    """Pooled document vectors of ``collection`` (encoded once per model, corpus and settings).

    For a corpus of at most :data:`STATES_WITH_VECTORS_MAX_DOCS` documents the same pass also keeps
    the token states, so a MaxSim system run afterwards encodes nothing.
    """
    key = _doc_key(enc, collection, "dense-doc-vectors")
    if not is_complete(artifact_dir("dense-docs", key)) and collection.docs_count <= STATES_WITH_VECTORS_MAX_DOCS:
        doc_states(enc, collection)  # fills both caches in one pass

    def build(tmp: Path) -> None:
        doc_ids, texts = _read_docs(collection)
        log.info("encoding %d documents with %s", len(texts), enc.ref.name)
        _write_vectors(tmp, doc_ids, enc.encode(texts, "doc").vectors)

    path = cached_build("dense-docs", key, build)
    return DocVectors(json.loads((path / "doc_ids.json").read_text()), np.load(path / "vectors.npy"))


def doc_states(enc: Encoder, collection: Collection) -> DocStates:
    """Per-token document states (float16, with offsets); the same pass fills the vector cache."""
    key = {**_doc_key(enc, collection, "dense-doc-states"), "states": "no-specials,l2,float16"}
    vec_key = _doc_key(enc, collection, "dense-doc-vectors")

    def build(tmp: Path) -> None:
        doc_ids, texts = _read_docs(collection)
        log.info("encoding %d documents token by token with %s", len(texts), enc.ref.name)
        encoded = enc.encode(texts, "doc", token_states=True)
        (tmp / "doc_ids.json").write_text(json.dumps(doc_ids))
        np.save(tmp / "states.npy", encoded.states)
        np.save(tmp / "offsets.npy", encoded.offsets)
        if not is_complete(artifact_dir("dense-docs", vec_key)):
            cached_build("dense-docs", vec_key, lambda t: _write_vectors(t, doc_ids, encoded.vectors))

    path = cached_build("dense-docs", key, build)
    return DocStates(json.loads((path / "doc_ids.json").read_text()),
                     np.load(path / "states.npy", mmap_mode="r"), np.load(path / "offsets.npy"))


def query_vectors(enc: Encoder, queries: Sequence[tuple[str, str]], token_states: bool = False) -> Encoded:
    """Encoded queries ``[(qid, text)]`` (cached, so a repeated run needs no model at all)."""
    key = {"artifact": "dense-queries", "encoder": enc.key("query"),
           "token_states": "no-specials,no-prefix,l2,float16" if token_states else None,
           "queries": fingerprint([list(q) for q in queries], 32)}

    def build(tmp: Path) -> None:
        encoded = enc.encode([text for _, text in queries], "query", token_states=token_states)
        np.save(tmp / "vectors.npy", encoded.vectors)
        if token_states:
            np.save(tmp / "states.npy", encoded.states)
            np.save(tmp / "offsets.npy", encoded.offsets)

    path = cached_build("dense-queries", key, build)
    if not token_states:
        return Encoded(np.load(path / "vectors.npy"))
    return Encoded(np.load(path / "vectors.npy"), np.load(path / "states.npy"), np.load(path / "offsets.npy"))


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
