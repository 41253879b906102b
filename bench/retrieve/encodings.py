"""Cached document and query encodings: pooled vectors and per-token states, keyed by fingerprint.

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

from bench.collections import Collection
from bench.retrieve.encoder import Encoded, Encoder
from bench.store import artifact_dir, cached_build, fingerprint, is_complete

log = logging.getLogger(__name__)

DOC_TEXT = "title+text"  # what a document's text is: Doc.default_text()
STATES_WITH_VECTORS_MAX_DOCS = 20_000  # ~2.3 GB of float16 token states at 150 tokens a passage


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
