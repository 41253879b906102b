"""Large corpora: exhaustive search in chunks with a running top-k, MaxSim within a memory budget."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.errors import BenchError
from bench.systems.options import RunOptions
from bench.methods.retrieve import dense, encodings, maxsim
from bench.methods.retrieve import encoder as encoder_module
from bench.methods.retrieve.chunked import format_bytes, release_pages, top_rows
from test_dense import DOCS, QUERIES, TinyCollection, tiny_ref, write_tiny_model  # noqa: F401 (tiny_ref: a fixture)

ROOT = Path(__file__).resolve().parents[1]


def brute_force(queries: np.ndarray, docs: np.ndarray, depth: int) -> list[list[int]]:
    """Per query, the ``depth`` best document rows by inner product, ties to the lower row."""
    scores = queries.astype(np.float64) @ docs.astype(np.float64).T
    return [list(np.lexsort((np.arange(len(docs)), -row))[:depth]) for row in scores]


def random_corpus(seed: int, n_docs: int = 60, n_queries: int = 7, dim: int = 16):
    rng = np.random.default_rng(seed)
    docs = rng.normal(size=(n_docs, dim)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    return docs, rng.normal(size=(n_queries, dim)).astype(np.float32), [f"d{i}" for i in range(n_docs)]


@pytest.mark.parametrize("chunk_bytes", [1, 64 * 5, 64 * 59, 64 * 60, 1 << 30])  # 1 doc, 5, 59, all, more
@pytest.mark.parametrize("query_chunk", [1, 3, 256])
def test_chunked_search_equals_the_brute_force_ranking(chunk_bytes, query_chunk):
    docs, queries, doc_ids = random_corpus(0)
    qids = [f"q{i}" for i in range(len(queries))]
    run = dense.search(qids, queries, doc_ids, docs, depth=10, chunk=query_chunk, chunk_bytes=chunk_bytes)
    whole = dense.search(qids, queries, doc_ids, docs, depth=10)  # one block: the unchunked search
    for qi, qid in enumerate(qids):
        top = brute_force(queries, docs, 10)[qi]
        assert list(run[qid]) == [doc_ids[j] for j in top] == list(whole[qid])
        np.testing.assert_allclose(list(run[qid].values()), docs[top] @ queries[qi], rtol=0, atol=1e-6)
        np.testing.assert_allclose(list(run[qid].values()), list(whole[qid].values()), rtol=0, atol=1e-6)


def test_a_memory_mapped_corpus_gives_the_same_run_and_depth_beyond_the_corpus_returns_it_all(tmp_path):
    docs, queries, doc_ids = random_corpus(1, n_docs=3000, dim=24)  # 3000 x 96 bytes: 70 pages
    np.save(tmp_path / "docs.npy", docs)
    mapped = np.load(tmp_path / "docs.npy", mmap_mode="r")
    qids = [f"q{i}" for i in range(len(queries))]
    assert dense.search(qids, queries, doc_ids, mapped, depth=50, chunk_bytes=96 * 100) == \
        dense.search(qids, queries, doc_ids, docs, depth=50, chunk_bytes=96 * 100)
    release_pages(mapped, len(doc_ids))  # pages handed back are read again from the file
    np.testing.assert_array_equal(mapped, docs)
    everything = dense.search(qids[:1], queries[:1], doc_ids[:5], docs[:5], depth=1000, chunk_bytes=1)
    assert list(everything["q0"]) == [doc_ids[j] for j in brute_force(queries[:1], docs[:5], 5)[0]]


def test_the_running_merge_keeps_the_true_top_k_and_breaks_ties_by_the_lower_document():
    values = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0], [0.5, 0.25, 0.75, 0.75, 0.125]])
    top, ids = top_rows(values, 2)
    assert top.tolist() == [[3.0, 3.0], [0.75, 0.75]] and ids.tolist() == [[1, 2], [2, 3]]
    top, ids = top_rows(values, 3, torch.tensor([[9, 8, 7, 6, 5]] * 2))  # ties go to the lower given index
    assert top.tolist() == [[3.0, 3.0, 3.0], [0.75, 0.75, 0.5]] and ids.tolist() == [[5, 7, 8], [6, 7, 9]]
    # a corpus of duplicates: equal scores everywhere, whatever the chunking the first documents win
    docs = np.tile(np.array([[0.6, 0.8]], np.float32), (12, 1))
    docs[[4, 9]] = [1.0, 0.0]  # the two best, then ten ties
    for chunk_bytes in (8, 8 * 3, 8 * 12):
        run = dense.search(["q"], np.array([[1.0, 0.0]], np.float32), [f"d{i}" for i in range(12)], docs,
                           depth=5, chunk_bytes=chunk_bytes)
        assert list(run["q"]) == ["d4", "d9", "d0", "d1", "d2"]
        assert list(run["q"].values()) == pytest.approx([1.0, 1.0, 0.6, 0.6, 0.6])


# --- MaxSim within a memory budget ----------------------------------------------------------------

DOC_TOKENS = 8 + 8 + 8 + 4  # "passage :" + the words of each document (its title first); no [CLS]/[SEP]
STATES_BYTES = DOC_TOKENS * 32 * 2  # width 32, float16


@pytest.fixture
def tiny_spec(tiny_ref, monkeypatch) -> str:  # noqa: F811 (tiny_ref: the fixture imported above)
    monkeypatch.setattr(encoder_module, "_ENCODERS", {})
    spec = str(tiny_ref.path)
    monkeypatch.setitem(encoder_module._ENCODERS, (spec, None), dense.Encoder(tiny_ref))
    return spec


def queries():
    return [(q.query_id, q.text) for q in QUERIES]


def mean_then_maxsim(spec: str, collection, k: int, states) -> dict:
    """What the budget's fallback must equal: MaxSim reranking of the mean-pooled top ``k``."""
    enc = dense.encoder(spec)
    qv, dv = dense.query_vectors(enc, queries()), dense.doc_vectors(enc, collection)
    first = dense.search(["q1", "q2"], qv.vectors, dv.doc_ids, dv.vectors, depth=k)
    qs = dense.query_vectors(enc, queries(), token_states=True)
    return maxsim.rerank(["q1", "q2"], qs.states, qs.offsets, states.doc_ids, states.states, states.offsets, first, k)


def test_the_token_count_is_the_encoders(tiny_spec):
    collection = TinyCollection(DOCS, QUERIES)
    assert dense.doc_tokens(dense.encoder(tiny_spec), collection) == (DOC_TOKENS, 32)  # counted by the tokenizer
    states = dense.doc_states(dense.encoder(tiny_spec), collection)
    assert int(states.offsets[-1]) == DOC_TOKENS


def test_a_tiny_budget_makes_maxsim_rerank_the_mean_pooled_top_k(tiny_spec, caplog):
    collection = TinyCollection(DOCS, QUERIES)
    with caplog.at_level(logging.WARNING, logger="bench.methods.retrieve.dense"):
        run, used = dense.retrieve(collection, tiny_spec, tiny_spec, queries(), scoring="maxsim", depth=3,
                                   rerank_depth=2, memory_budget=1000)
    # a corpus this small keeps its states with its vectors
    assert used["maxsim"] == {"mode": "rerank", "first_stage": "mean", "depth": 2, "states_bytes": STATES_BYTES,
                              "budget": 1000, "states": "corpus"}
    assert [r.getMessage() for r in caplog.records] == [
        "token states of 4 documents would take 1.8 KiB > memory budget 1000 B: MaxSim reranks the top 2 of "
        "mean-pooled search instead (--memory-budget, --rerank-depth)"]
    expected = mean_then_maxsim(tiny_spec, collection, 2, dense.doc_states(dense.encoder(tiny_spec), collection))
    assert run == expected and all(len(docs) == 2 for docs in run.values())


def test_reranking_encodes_only_the_candidates_when_the_corpus_states_do_not_exist(tiny_spec, monkeypatch, bench_home):
    monkeypatch.setattr(encodings, "STATES_WITH_VECTORS_MAX_DOCS", 0)  # vectors alone, as for a large corpus
    collection = TinyCollection(DOCS, QUERIES)
    encoded: list[list[str]] = []
    encode = dense.Encoder.encode

    def spy(self, texts, side, token_states=False, **kwargs):
        if side == "doc" and token_states:
            encoded.append(list(texts))
        return encode(self, texts, side, token_states=token_states, **kwargs)

    monkeypatch.setattr(dense.Encoder, "encode", spy)
    run, used = dense.retrieve(collection, tiny_spec, tiny_spec, queries(), scoring="maxsim", rerank_depth=1,
                               memory_budget=1000)
    assert used["maxsim"]["mode"] == "rerank" and used["maxsim"]["states"] == "candidates"
    kinds = {json.loads(p.read_text())["artifact"] for p in (bench_home / "dense-docs").glob("*/key.json")}
    assert "dense-doc-states" not in kinds  # the corpus's states were never built
    texts = {d.doc_id: d.default_text() for d in DOCS}
    top1 = {doc for docs_ in run.values() for doc in docs_}
    assert all(len(docs_) == 1 for docs_ in run.values()) and len(top1) < len(DOCS)
    assert sorted(t for group in encoded for t in group) == sorted(texts[d] for d in top1)
    full = encode(dense.encoder(tiny_spec), [d.default_text() for d in DOCS], "doc", token_states=True)
    reference = encodings.DocStates([d.doc_id for d in DOCS], full.states, full.offsets)
    expected = mean_then_maxsim(tiny_spec, collection, 1, reference)
    assert {q: list(d) for q, d in run.items()} == {q: list(d) for q, d in expected.items()}
    for qid in run:
        assert list(run[qid].values()) == pytest.approx(list(expected[qid].values()), abs=2e-3)
    monkeypatch.setattr(dense.Encoder, "encode", lambda *a, **k: pytest.fail("re-encoded the candidates"))
    assert dense.retrieve(collection, tiny_spec, tiny_spec, queries(), scoring="maxsim", rerank_depth=1,
                          memory_budget=1000)[0] == run  # the candidates' states are cached


def test_with_a_large_budget_maxsim_stays_exhaustive(tiny_spec, caplog):
    collection = TinyCollection(DOCS, QUERIES)
    with caplog.at_level(logging.WARNING, logger="bench.methods.retrieve.dense"):
        run, used = dense.retrieve(collection, tiny_spec, tiny_spec, queries(), scoring="maxsim", depth=3,
                                   memory_budget=10**9)
    assert caplog.records == []
    assert used["maxsim"] == {"mode": "exhaustive", "states_bytes": STATES_BYTES, "budget": 10**9, "states": "corpus"}
    enc = dense.encoder(tiny_spec)
    qs, ds = dense.query_vectors(enc, queries(), token_states=True), dense.doc_states(enc, collection)
    assert run == maxsim.search(["q1", "q2"], qs.states, qs.offsets, ds.doc_ids, ds.states, ds.offsets, depth=3)
    assert all(len(docs) == 3 for docs in run.values())


def test_the_manifest_of_a_run_says_maxsim_reranked(bench_home, tmp_path):
    from bench.data.collection.local import load_pair_file
    from bench.experiment.runner import run_systems
    from bench.systems import parse_systems

    model = write_tiny_model(tmp_path / "tiny")
    pair = load_pair_file(ROOT / "tests" / "data" / "tiny-pair" / "pair.yaml")
    options = {"encoder": str(model), "memory_budget": "1K", "rerank_depth": 3}
    result = run_systems(pair, parse_systems("mdense-maxsim"), tmp_path / "runs", options=options)[0]
    manifest = json.loads((result.path / "manifest.json").read_text())
    maxsim_entry = manifest["artifacts"]["maxsim"]
    assert {k: maxsim_entry[k] for k in ("mode", "first_stage", "depth", "budget")} == \
        {"mode": "rerank", "first_stage": "mean", "depth": 3, "budget": 1024}
    assert maxsim_entry["states_bytes"] > 1024
    assert len((result.path / "run.trec").read_text().splitlines()) == 3 * 3  # 3 queries x the top 3


# --- the option -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, size", [("4G", 4 << 30), ("512M", 512 << 20), ("1.5g", 3 << 29), ("64KiB", 65536),
                                        ("1000000", 10**6), (2048, 2048)])
def test_memory_budget_parses_sizes(text, size):
    assert RunOptions.from_mapping({"memory_budget": text}).memory_budget == size
    assert RunOptions(memory_budget=text).memory_budget == size


@pytest.mark.parametrize("text", ["0", "abc", "4X", "-1G", "", True])
def test_memory_budget_refuses_what_is_not_a_positive_size(text):
    with pytest.raises(BenchError, match="option memory_budget must be a"):
        RunOptions.from_mapping({"memory_budget": text})


def test_budget_sizes_read_as_binary_units():
    assert [format_bytes(n) for n in (1000, 1792, 3 << 29, 6 << 40)] == ["1000 B", "1.8 KiB", "1.5 GiB", "6.0 TiB"]
