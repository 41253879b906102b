"""Cached document and query encodings: pooled vectors and per-token states, keyed by fingerprint.

Document vectors are cached under ``BENCH_HOME/dense-docs/<fingerprint>`` keyed by the model
fingerprint, the corpus, the maximum length, the prefix and the pooling, and so are shared by every
system and run that encodes the same side with the same model. Per-token document states for late
interaction (:mod:`bench.methods.retrieve.maxsim`) are a second artifact, built by the same pass.

A corpus is encoded in the order of its batch plan (:func:`bench.infra.batching.length_batches` over the
documents' token lengths, :func:`doc_lengths`), a chunk of whole batches at a time, each chunk
streamed to disk, so no encoding of a corpus is held in memory twice. The plan may be cut into
``shards``: contiguous runs of its batches, each a cached artifact of its own that another process
can build (:func:`doc_shard`), assembled into the one artifact under the same key. A shard is
contiguous in the length-sorted plan, not in the corpus, because batched float arithmetic differs in
the last bits with the batch a text is padded in: so every document is encoded in exactly the batch
the one-pass encoding puts it in, and the assembled files are byte-identical to the unsharded ones.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from bench.data.collection import Collection
from bench.infra import batching, progress
from bench.infra.interrupts import raise_if_stopping
from bench.infra.rates import timed
from bench.infra.store import artifact_dir, cached_build, fingerprint, is_complete
from bench.methods.retrieve.encoder import Encoded, Encoder
from bench.methods.token_states import OFFSETS_FILE, STATES_FILE, TokenStates

log = logging.getLogger(__name__)

STATES = "no-specials,l2,float16"  # the document token states MaxSim reads, as doc_states keeps them
DOC_TEXT = "title+text"  # what a document's text is: Doc.default_text()
STATES_WITH_VECTORS_MAX_DOCS = 20_000  # ~2.3 GB of float16 token states at 150 tokens a passage
CHUNK_TOKENS = 1 << 18  # padded tokens encoded before a chunk goes to disk (whole batches; at least one)
TOKENIZE_BLOCK = 10_000  # documents tokenized at once when counting lengths
_SCRATCH = ".parts"  # inside an artifact being built: the encoding in plan order, removed before it is complete


@dataclass
class DocVectors:
    doc_ids: list[str]
    vectors: np.ndarray  # (n, d) float32
    path: Path | None = None  # the artifact directory


@dataclass(init=False)
class DocStates(TokenStates):
    """The token states of a corpus's documents (float16, memory-mapped), with their ids."""

    doc_ids: list[str]
    path: Path | None = None  # the artifact directory

    def __init__(self, doc_ids: list[str], states: np.ndarray, offsets: np.ndarray, path: Path | None = None):
        super().__init__(states, offsets)
        self.doc_ids, self.path = doc_ids, path


def _doc_key(enc: Encoder, collection: Collection, artifact: str) -> dict:
    return {"artifact": artifact, "encoder": enc.key("doc"), "corpus": collection.docs_fingerprint, "text": DOC_TEXT}


def _read_docs(collection: Collection) -> tuple[list[str], list[str]]:
    docs = list(collection.iter_docs())
    return [d.doc_id for d in docs], [d.default_text() for d in docs]


def doc_vectors(enc: Encoder, collection: Collection, shards: int = 1) -> DocVectors:
    """Pooled document vectors of ``collection`` (encoded once per model, corpus and settings).

    For a corpus of at most :data:`STATES_WITH_VECTORS_MAX_DOCS` documents the same pass also keeps
    the token states, so a MaxSim system run afterwards encodes nothing. ``shards``: assembled from
    that many :func:`doc_shard` artifacts (built here if missing); the artifact is the same.
    """
    _check_shards(shards)
    key = _doc_key(enc, collection, "dense-doc-vectors")
    if not is_complete(artifact_dir("dense-docs", key)) and collection.docs_count <= STATES_WITH_VECTORS_MAX_DOCS:
        doc_states(enc, collection, shards)  # fills both caches in one pass

    def build(tmp: Path) -> None:
        doc_ids, texts = _read_docs(collection)
        log.info("encoding %d documents with %s", len(texts), enc.ref.name)
        _save_vectors(tmp, doc_ids, _parts(enc, collection, texts, False, shards, tmp))
        shutil.rmtree(tmp / _SCRATCH, ignore_errors=True)

    path = cached_build("dense-docs", key, _timed_encoding(collection, shards, build))
    return DocVectors(json.loads((path / "doc_ids.json").read_text()), np.load(path / "vectors.npy", mmap_mode="r"),
                      path)


def _timed_encoding(collection: Collection, shards: int, build):
    """A corpus's encoding, measured (:mod:`bench.infra.rates`) when it is encoded in one pass here; one
    assembled from shards is not (other tasks may have encoded them)."""
    return timed("doc-encoding", collection.docs_count, build) if shards == 1 else build


def _states_key(enc: Encoder, collection: Collection) -> dict:
    return {**_doc_key(enc, collection, "dense-doc-states"), "states": STATES}


def cached_doc_states(enc: Encoder, collection: Collection) -> DocStates | None:
    """The token states of ``collection`` if they were built already (memory-mapped), else None; encodes nothing."""
    path = artifact_dir("dense-docs", _states_key(enc, collection))
    return doc_states(enc, collection) if is_complete(path) else None


def doc_states(enc: Encoder, collection: Collection, shards: int = 1) -> DocStates:
    """Per-token document states (float16, with offsets); the same pass fills the vector cache.
    ``shards``: as for :func:`doc_vectors`."""
    _check_shards(shards)
    key = _states_key(enc, collection)
    vec_key = _doc_key(enc, collection, "dense-doc-vectors")

    def build(tmp: Path) -> None:
        doc_ids, texts = _read_docs(collection)
        log.info("encoding %d documents token by token with %s", len(texts), enc.ref.name)
        parts = _parts(enc, collection, texts, True, shards, tmp)
        _save_states(tmp, doc_ids, parts)
        if not is_complete(artifact_dir("dense-docs", vec_key)):
            cached_build("dense-docs", vec_key, lambda t: _save_vectors(t, doc_ids, parts))
        parts.clear()  # the parts' memory maps go before their files do
        shutil.rmtree(tmp / _SCRATCH, ignore_errors=True)

    path = cached_build("dense-docs", key, _timed_encoding(collection, shards, build))
    kept = TokenStates.read(path, mmap=True)
    return DocStates(json.loads((path / "doc_ids.json").read_text()), kept.states, kept.offsets, path)


def doc_shard(enc: Encoder, collection: Collection, index: int, shards: int, states: bool = False) -> Path:
    """Shard ``index`` of ``shards`` of the corpus's encoding (with token states if ``states``, or where
    :func:`doc_vectors` keeps them: a small corpus), a cached artifact; the assembler is
    :func:`doc_vectors` or :func:`doc_states` with the same ``shards``."""
    _check_shards(shards)
    if not 0 <= index < shards:
        raise ValueError(f"shard {index} of {shards}")
    states = states or collection.docs_count <= STATES_WITH_VECTORS_MAX_DOCS
    full = _states_key(enc, collection) if states else _doc_key(enc, collection, "dense-doc-vectors")
    # the batching is part of the key: the plan it cuts must be the one the assembler's pass would make
    key = {**full, "shard": [index, shards], "batching": [enc.batch_tokens, enc.max_batch]}

    def build(tmp: Path) -> None:
        _, texts = _read_docs(collection)
        lengths, batches = _plan(enc, collection)
        mine = batches[index * len(batches) // shards:(index + 1) * len(batches) // shards]
        log.info("encoding shard %d/%d of %d documents (%d of %d batches) with %s", index + 1, shards, len(texts),
                 len(mine), len(batches), enc.ref.name)
        desc = f"encoding documents ({enc.ref.name}) shard {index + 1}/{shards}"
        _encode_part(enc, texts, lengths, mine, tmp, states, desc)

    return cached_build("dense-docs", key, build)


def doc_lengths(enc: Encoder, collection: Collection) -> np.ndarray:
    """The token count of each document as the encoder tokenizes it (specials included; cached): the
    lengths its batches are planned on."""
    key = _doc_key(enc, collection, "dense-doc-lengths")

    def build(tmp: Path) -> None:
        _, tokenizer = enc.loaded
        prefix, lengths, block = enc.prefix("doc"), [], []

        def count() -> None:  # tokenized exactly as Encoder.encode tokenizes (truncation at max_length)
            ids = tokenizer(block, truncation=True, max_length=enc.max_length, return_attention_mask=False,
                            return_token_type_ids=False)["input_ids"]
            lengths.extend(len(x) for x in ids)
            block.clear()

        for doc in collection.iter_docs():
            block.append(prefix + doc.default_text())
            if len(block) == TOKENIZE_BLOCK:
                count()
        if block:
            count()
        np.save(tmp / "lengths.npy", np.asarray(lengths, dtype=np.int64))

    return np.load(cached_build("dense-docs", key, build) / "lengths.npy")


def _check_shards(shards: int) -> None:
    if not isinstance(shards, int) or shards < 1:
        raise ValueError(f"shards must be a positive integer, not {shards!r}")


def _plan(enc: Encoder, collection: Collection) -> tuple[np.ndarray, list[list[int]]]:
    """The documents' lengths and the batches one pass of :meth:`Encoder.encode` would make of them."""
    lengths = doc_lengths(enc, collection)
    return lengths, batching.length_batches(lengths.tolist(), enc.batch_tokens, enc.max_batch)


def _chunks(batches: list[list[int]], lengths: np.ndarray, limit: int) -> Iterator[list[int]]:
    """Consecutive whole batches, up to ``limit`` padded tokens together (at least one batch each). The
    encoder batches a chunk given in plan order exactly as the one pass does: its texts are sorted by
    length, ties in their order, and the greedy batching restarts at a batch boundary."""
    chunk: list[int] = []
    tokens = 0
    for batch in batches:
        padded = len(batch) * int(lengths[batch[0]])  # the first of a batch is its longest
        if chunk and tokens + padded > limit:
            yield chunk
            chunk, tokens = [], 0
        chunk.extend(batch)
        tokens += padded
    if chunk:
        yield chunk


def _encode_part(enc: Encoder, texts: Sequence[str], lengths: np.ndarray, batches: list[list[int]], out: Path,
                 states: bool, desc: str) -> None:
    """Encode the documents of ``batches`` (consecutive batches of the plan) into ``out``, chunk by chunk:
    ``rows.npy`` (their indices, in plan order), ``vectors.npy`` and, with ``states``, ``states.f16``
    (raw float16, rows' order) and ``counts.npy`` (states per row)."""
    rows = np.asarray([i for batch in batches for i in batch], dtype=np.int64)
    dim = int(enc.loaded[0].config.hidden_size)
    vectors = np.lib.format.open_memmap(out / "vectors.npy", mode="w+", dtype=np.float32, shape=(len(rows), dim))
    counts = np.zeros(len(rows), dtype=np.int64)
    chunks = list(_chunks(batches, lengths, CHUNK_TOKENS))
    done = 0
    bar = progress.bar(total=len(rows), desc=desc, unit="doc", disable=len(rows) < 256, mininterval=2.0)
    with open(out / "states.f16", "wb") as raw, bar:  # one bar over every chunk: the whole part's rate and ETA
        for chunk in chunks:
            raise_if_stopping()
            encoded = enc.encode([texts[i] for i in chunk], "doc", token_states=states, bar=bar)
            vectors[done:done + len(chunk)] = encoded.vectors
            if states:
                np.ascontiguousarray(encoded.states, dtype=np.float16).tofile(raw)
                counts[done:done + len(chunk)] = encoded.lengths()
            done += len(chunk)
    vectors.flush()
    del vectors
    np.save(out / "rows.npy", rows)
    np.save(out / "counts.npy", counts)


@dataclass
class _Part:
    rows: np.ndarray
    vectors: np.ndarray
    counts: np.ndarray
    states: np.ndarray | None


def _read_part(path: Path, states: bool) -> _Part:
    rows, counts = np.load(path / "rows.npy"), np.load(path / "counts.npy")
    vectors = np.load(path / "vectors.npy", mmap_mode="r")
    kept = None
    if states:
        total, dim = int(counts.sum()), vectors.shape[1]
        kept = (np.memmap(path / "states.f16", dtype=np.float16, mode="r", shape=(total, dim)) if total
                else np.zeros((0, dim), dtype=np.float16))
    return _Part(rows, vectors, counts, kept)


def _parts(enc: Encoder, collection: Collection, texts: Sequence[str], states: bool, shards: int,
           tmp: Path) -> list[_Part]:
    """The corpus's encoding in plan order: one part encoded here (in ``tmp``'s scratch), or the shards."""
    if shards > 1:
        return [_read_part(doc_shard(enc, collection, i, shards, states), states) for i in range(shards)]
    lengths, batches = _plan(enc, collection)
    scratch = tmp / _SCRATCH
    scratch.mkdir()
    _encode_part(enc, texts, lengths, batches, scratch, states, f"encoding documents ({enc.ref.name})")
    return [_read_part(scratch, states)]


def _save_vectors(out: Path, doc_ids: list[str], parts: list[_Part]) -> None:
    """``doc_ids.json`` and ``vectors.npy`` in document order (written as ``np.save`` writes them)."""
    (out / "doc_ids.json").write_text(json.dumps(doc_ids))
    dim = parts[0].vectors.shape[1]
    vectors = np.lib.format.open_memmap(out / "vectors.npy", mode="w+", dtype=np.float32, shape=(len(doc_ids), dim))
    for part in parts:
        vectors[part.rows] = part.vectors
    vectors.flush()


def _save_states(out: Path, doc_ids: list[str], parts: list[_Part]) -> None:
    """``doc_ids.json``, ``states.npy`` and ``offsets.npy`` in document order, one document at a time."""
    (out / "doc_ids.json").write_text(json.dumps(doc_ids))
    counts = np.zeros(len(doc_ids), dtype=np.int64)
    for part in parts:
        counts[part.rows] = part.counts
    offsets = TokenStates.offsets_of(counts)
    dim = parts[0].vectors.shape[1]
    states = np.lib.format.open_memmap(out / STATES_FILE, mode="w+", dtype=np.float16, shape=(int(offsets[-1]), dim))
    for part in parts:
        starts = np.concatenate([[0], np.cumsum(part.counts)])
        for j, row in enumerate(part.rows.tolist()):
            states[offsets[row]:offsets[row + 1]] = part.states[starts[j]:starts[j + 1]]
    states.flush()
    del states
    np.save(out / OFFSETS_FILE, offsets)


def query_vectors(enc: Encoder, queries: Sequence[tuple[str, str]], token_states: bool = False) -> Encoded:
    """Encoded queries ``[(qid, text)]`` (cached, so a repeated run needs no model at all)."""
    key = {"artifact": "dense-queries", "encoder": enc.key("query"),
           "token_states": "no-specials,no-prefix,l2,float16" if token_states else None,
           "queries": fingerprint([list(q) for q in queries], 32)}

    def build(tmp: Path) -> None:
        encoded = enc.encode([text for _, text in queries], "query", token_states=token_states)
        np.save(tmp / "vectors.npy", encoded.vectors)
        if token_states:
            encoded.save(tmp)

    path = cached_build("dense-queries", key, timed("query-encoding", len(queries), build))
    if not token_states:
        return Encoded(np.load(path / "vectors.npy"))
    kept = TokenStates.read(path)
    return Encoded(np.load(path / "vectors.npy"), kept.states, kept.offsets)
