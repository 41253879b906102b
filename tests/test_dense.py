"""Dense retrieval on tiny, randomly initialised models: pooling, caches, search, MaxSim, systems."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.infra import batching

from bench.data import models
from bench.data.collection import Doc, Query
from bench.methods.retrieve import dense, maxsim
from bench.methods.retrieve import encoder as encoder_module, encodings

WORDS = ["query", "passage", ":", "the", "river", "nile", "flows", "north", "mto", "unapita", "kaskazini",
         "egypt", "kenya", "capital", "nairobi", "city", "is", "a", "of", "in"]


def write_tiny_model(path: Path, seed: int = 0) -> Path:
    """A 4-layer BERT (hidden 32) with a word-level WordPiece tokenizer, saved as a model directory (4 layers: the
    `optical` recipe freezes the lowest 3)."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=64, unk_token="[UNK]", pad_token="[PAD]",
                            cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]").save_pretrained(path)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config, add_pooling_layer=False).save_pretrained(path)
    return path


@pytest.fixture
def tiny_ref(bench_home, tmp_path) -> models.ModelRef:
    ref = models.resolve(str(write_tiny_model(tmp_path / "tiny")))
    return replace(ref, conventions=models.Conventions(query_prefix="query: ", doc_prefix="passage: ", max_length=64))


class TinyCollection:
    """Just what dense retrieval reads from a collection."""

    def __init__(self, docs, queries):
        self.docs, self.queries = docs, queries

    def iter_docs(self):
        return iter(self.docs)

    @property
    def docs_count(self):
        return len(self.docs)

    def fingerprint_key(self):
        return {"dataset": "tiny", "docs": [list(d) for d in self.docs]}

    @property
    def docs_fingerprint(self):
        return json.dumps([list(d) for d in self.docs])


DOCS = [Doc("d1", "Nile", "the river nile flows north"), Doc("d2", "", "nairobi is the capital of kenya"),
        Doc("d3", "Egypt", "the nile flows in egypt"), Doc("d4", "", "a city")]
QUERIES = [Query("q1", "mto nile unapita kaskazini", "the nile flows north"),
           Query("q2", "capital of kenya", "capital of kenya")]


def hidden_states(ref, text: str) -> torch.Tensor:
    model, tokenizer = models.load(ref)
    with torch.inference_mode():
        return model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0]


def test_length_batches_sort_by_length_and_respect_the_token_budget():
    lengths = [5, 30, 12, 30, 7, 2, 19]
    batches = batching.length_batches(lengths, batch_tokens=40, max_batch=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert [i for b in batches for i in b] == sorted(range(7), key=lambda i: (-lengths[i], i))
    assert all(len(b) * lengths[b[0]] <= 40 and len(b) <= 3 for b in batches)


def test_mean_pooling_excludes_padding_and_applies_the_prefix(tiny_ref):
    enc = dense.Encoder(tiny_ref)
    short = "the nile"
    alone = enc.encode([short], "doc").vectors[0]
    padded = enc.encode([short, "nairobi is the capital city of kenya in a river of the north"], "doc").vectors[0]
    np.testing.assert_allclose(padded, alone, atol=1e-5)  # padding never counts
    expected = torch.nn.functional.normalize(hidden_states(tiny_ref, "passage: " + short).mean(0), dim=0)
    np.testing.assert_allclose(alone, expected.numpy(), atol=1e-5)
    assert abs(np.linalg.norm(alone) - 1) < 1e-5


def test_token_states_drop_special_and_query_prefix_tokens(tiny_ref):
    enc = dense.Encoder(tiny_ref)
    doc = enc.encode(["the nile flows"], "doc", token_states=True)
    # [CLS] passage : the nile flows [SEP] -> the prefix stays on the document side, specials go
    assert list(doc.offsets) == [0, 5] and doc.states.dtype == np.float16
    full = torch.nn.functional.normalize(hidden_states(tiny_ref, "passage: the nile flows"), dim=-1)
    np.testing.assert_allclose(doc.states.astype(np.float32), full[1:-1].numpy(), atol=2e-3)
    query = enc.encode(["the nile flows", "kenya"], "query", token_states=True)
    assert list(query.offsets) == [0, 3, 4]  # "query :" and [CLS]/[SEP] excluded
    full = torch.nn.functional.normalize(hidden_states(tiny_ref, "query: the nile flows"), dim=-1)
    np.testing.assert_allclose(query.states[:3].astype(np.float32), full[3:-1].numpy(), atol=2e-3)


def test_exhaustive_search_returns_the_argmax_first():
    rng = np.random.default_rng(0)
    docs, queries = rng.normal(size=(50, 8)).astype(np.float32), rng.normal(size=(3, 8)).astype(np.float32)
    doc_ids = [f"d{i}" for i in range(50)]
    run = dense.search(["a", "b", "c"], queries, doc_ids, docs, depth=10, chunk=2)
    for qi, qid in enumerate("abc"):
        ranked = sorted(run[qid].items(), key=lambda kv: -kv[1])
        assert len(ranked) == 10 and ranked[0][0] == doc_ids[int(np.argmax(docs @ queries[qi]))]
        assert ranked[0][1] == pytest.approx(float(np.max(docs @ queries[qi])), abs=1e-5)


def test_rerank_rescores_only_the_top_k_of_the_first_stage():
    docs = np.eye(4, dtype=np.float32)
    first = {"q": {"d0": 4.0, "d1": 3.0, "d2": 2.0, "d3": 1.0}}
    run = dense.rerank(["q"], np.array([[0.1, 0.2, 0.9, 1.0]], np.float32), ["d0", "d1", "d2", "d3"], docs, first, k=3)
    assert run == {"q": pytest.approx({"d0": 0.1, "d1": 0.2, "d2": 0.9})}


def test_document_vectors_are_cached_and_reused(tiny_ref, monkeypatch):
    collection = TinyCollection(DOCS, QUERIES)
    first = dense.doc_vectors(dense.Encoder(tiny_ref), collection)
    assert first.doc_ids == ["d1", "d2", "d3", "d4"] and first.vectors.shape == (4, 32)

    def fail(*args, **kwargs):
        raise AssertionError("re-encoded a cached corpus")

    monkeypatch.setattr(dense.Encoder, "encode", fail)
    again = dense.doc_vectors(dense.Encoder(tiny_ref), collection)  # a new encoder, as in a new run
    np.testing.assert_array_equal(again.vectors, first.vectors)
    with pytest.raises(AssertionError, match="re-encoded"):  # another max length is another artifact
        dense.doc_vectors(dense.Encoder(tiny_ref, max_length=8), collection)


def test_a_large_corpus_encodes_vectors_without_token_states(tiny_ref, monkeypatch, bench_home):
    monkeypatch.setattr(encodings, "STATES_WITH_VECTORS_MAX_DOCS", 3)
    dense.doc_vectors(dense.Encoder(tiny_ref), TinyCollection(DOCS, QUERIES))
    kinds = {json.loads(p.read_text())["artifact"] for p in (bench_home / "dense-docs").glob("*/key.json")}
    assert kinds == {"dense-doc-vectors", "dense-doc-lengths"}  # no token states: the lengths decide


def test_token_state_pass_also_fills_the_vector_cache(tiny_ref, monkeypatch):
    collection = TinyCollection(DOCS, QUERIES)
    states = dense.doc_states(dense.Encoder(tiny_ref), collection)
    assert states.offsets[-1] == len(states.states) and len(states.offsets) == 5
    norms = np.linalg.norm(states.states.astype(np.float32), axis=1)
    np.testing.assert_allclose(norms, 1, atol=2e-3)
    monkeypatch.setattr(dense.Encoder, "encode", lambda *a, **k: pytest.fail("re-encoded"))
    assert dense.doc_vectors(dense.Encoder(tiny_ref), collection).vectors.shape == (4, 32)


def hand_maxsim(q: np.ndarray, d: np.ndarray) -> float:
    """Sum over query tokens of the best cosine over the document's tokens, written out by hand."""
    total = 0.0
    for qt in q:
        total += max(float(qt @ dt / np.linalg.norm(qt) / np.linalg.norm(dt)) for dt in d)
    return total


def random_states(rng, lengths, dim=8):
    states = rng.normal(size=(sum(lengths), dim)).astype(np.float32)
    states /= np.linalg.norm(states, axis=1, keepdims=True)
    return states, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def test_maxsim_equals_the_sum_of_best_cosines_and_chunking_changes_nothing():
    rng = np.random.default_rng(1)
    q_states, q_off = random_states(rng, [3, 5])
    d_lengths = [4, 1, 7, 2, 6, 3, 5]
    d_states, d_off = random_states(rng, d_lengths)
    d16 = d_states.astype(np.float16)
    expected = np.array([[hand_maxsim(q_states[q_off[i]:q_off[i + 1]], d_states[d_off[j]:d_off[j + 1]])
                          for j in range(len(d_lengths))] for i in range(2)])
    # documents are stored in float16: cosines within its precision
    np.testing.assert_allclose(maxsim.scores(q_states, q_off, d16, d_off).numpy(), expected, atol=3e-3)
    doc_ids = [f"d{j}" for j in range(len(d_lengths))]
    for budget in (1, 40, 10**6):  # one document per chunk, a few, all at once
        run = maxsim.search(["a", "b"], q_states, q_off, doc_ids, d16, d_off, depth=3, chunk_elements=budget)
        for i, qid in enumerate("ab"):
            top = np.argsort(-expected[i])[:3]
            assert list(run[qid]) == [doc_ids[j] for j in top]
            np.testing.assert_allclose(list(run[qid].values()), expected[i][top], atol=3e-3)
    first = {"a": {"d0": 3, "d1": 2, "d2": 1, "d6": 0.5}}
    reranked = maxsim.rerank(["a"], q_states, q_off, doc_ids, d16, d_off, first, k=2)
    assert reranked["a"] == pytest.approx({"d0": expected[0][0], "d1": expected[0][1]}, abs=3e-3)


def test_dense_systems_run_and_a_second_run_needs_no_model(tiny_ref, monkeypatch):
    from bench.data.pairs import get_pair
    from bench.systems import RunContext, get_system

    monkeypatch.setattr(encoder_module, "_ENCODERS", {})
    spec = str(tiny_ref.path)
    monkeypatch.setitem(encoder_module._ENCODERS, (spec, None), dense.Encoder(tiny_ref))
    collection = TinyCollection(DOCS, QUERIES)
    runs = {}
    for name in ("mdense", "mdense-maxsim", "oracle-dense"):
        ctx = RunContext(get_pair("sw-en"), collection, depth=3, options={"encoder": spec})
        runs[name] = get_system(name).run(ctx)
        assert set(runs[name]) == {"q1", "q2"} and all(len(r) == 3 for r in runs[name].values())
        assert ctx.artifacts["models"]["doc_encoder"]["fingerprint"] == tiny_ref.fingerprint
    monkeypatch.setattr(models, "load", lambda ref: pytest.fail("loaded the model for a cached run"))
    monkeypatch.setitem(encoder_module._ENCODERS, (spec, None), dense.Encoder(tiny_ref))
    for name, run in runs.items():
        ctx = RunContext(get_pair("sw-en"), collection, depth=3, options={"encoder": spec})
        assert get_system(name).run(ctx) == run
    ctx = RunContext(get_pair("sw-en"), collection, depth=3,
                     options={"encoder": spec, "rerank": "mdense", "rerank_depth": 2})
    reranked = get_system("mdense-maxsim").run(ctx)
    assert all(set(reranked[q]) <= set(runs["mdense"][q]) and len(reranked[q]) == 2 for q in reranked)
