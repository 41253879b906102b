"""NMT: translation with any HF seq2seq model (cached, batched, deterministic) and `train mt` on a tiny bitext."""

from __future__ import annotations

import itertools
import json
import types

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from bench.errors import BenchError  # noqa: E402
from bench.data import models  # noqa: E402
from bench.infra import batching  # noqa: E402
from bench.methods.translate import flores, nmt  # noqa: E402

SENTENCES = ["a b c", "d e", "f", "a a b b c c d", "e f a", "c"]
WORDS = ["<pad>", "<s>", "</s>", "<unk>", *"abcdefghijklmnopqrstuvwxyz", "habari", "yako", "asante", "sana",
         "ninapenda", "chai", "mbwa", "wangu", "ni", "mkubwa", "kwaheri", "rafiki", "jina", "langu",
         "how", "are", "you", "thank", "very", "much", "like", "tea", "my", "dog", "is", "big", "goodbye",
         "friend", "name", "juma", "asha", "baraka", "neema", "zawadi", "rehema"]


def tiny_tokenizer(words=WORDS):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", cls_token="<s>", sep_token="</s>")


def write_tiny_marian(path: Path) -> Path:
    """A tiny random Marian translation model and its tokenizer, saved at ``path``."""
    from transformers import MarianConfig, MarianMTModel

    torch.manual_seed(0)
    config = MarianConfig(vocab_size=len(WORDS), d_model=16, encoder_layers=1, decoder_layers=1,
                          encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                          decoder_ffn_dim=32, max_position_embeddings=64, pad_token_id=0, eos_token_id=2,
                          decoder_start_token_id=0, forced_eos_token_id=2)
    MarianMTModel(config).save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return path


@pytest.fixture
def tiny_marian(tmp_path):
    return write_tiny_marian(tmp_path / "tiny-marian")


def test_translate_is_cached_ordered_and_deterministic(bench_home, tiny_marian, monkeypatch):
    params = nmt.DecodeParams(num_beams=2, max_new_tokens=6, batch_size=2)
    first = nmt.translate(SENTENCES, tiny_marian, "sw", "en", params)
    assert len(first) == len(SENTENCES) and all(isinstance(t, str) for t in first)

    # batching (length-sorted, batch of 2) keeps the input order: same as one text at a time
    ref = nmt.resolve(tiny_marian)
    one_by_one = [nmt.translate_uncached([s], ref, "sw", "en", params)[0] for s in SENTENCES]
    assert first == one_by_one
    # deterministic: an uncached run gives the same output
    assert nmt.translate_uncached(SENTENCES, ref, "sw", "en", params) == first

    # cached: the second call does not run the model
    def boom(*args, **kwargs):
        raise AssertionError("the model ran although the translations are cached")

    monkeypatch.setattr(nmt, "translate_uncached", boom)
    assert nmt.translate(SENTENCES, tiny_marian, "sw", "en", params) == first
    with pytest.raises(AssertionError):  # other texts or parameters are a cache miss
        nmt.translate(SENTENCES[:2], tiny_marian, "sw", "en", params)
    with pytest.raises(AssertionError):
        nmt.translate(SENTENCES, tiny_marian, "sw", "en", nmt.DecodeParams(num_beams=1, max_new_tokens=6))


def test_fingerprint_changes_with_weights(bench_home, tiny_marian):
    from safetensors.torch import load_file, save_file

    before = nmt.resolve(tiny_marian).fingerprint
    weights = load_file(tiny_marian / "model.safetensors")
    name = next(iter(weights))
    weights[name] = weights[name] + 1
    save_file(weights, tiny_marian / "model.safetensors", metadata={"format": "pt"})
    assert nmt.resolve(tiny_marian).fingerprint != before


def test_unknown_model_is_one_line_error(bench_home, tmp_path):
    from bench.errors import BenchError

    with pytest.raises(BenchError):
        nmt.resolve(str(tmp_path / "missing" / "model"))


def test_language_codes_for_multilingual_tokenizers():
    class Nllb:
        src_lang = "eng_Latn"

        def get_vocab(self):
            return {"swh_Latn": 5, "eng_Latn": 6}

    class M2M:
        src_lang = "en"

        def get_vocab(self):
            return {"__sw__": 7, "__en__": 8}

    assert nmt.language_codes(Nllb(), "sw", "en") == ("swh_Latn", 6)
    assert nmt.language_codes(M2M(), "sw", "en") == ("__sw__", 8)
    assert nmt.language_codes(tiny_tokenizer(), "sw", "en") == (None, None)


def test_flores_score_perfect_and_worse():
    refs = ["The cat sat on the mat.", "It is raining today."]
    perfect = flores.score(refs, refs)
    assert perfect["chrF"] == pytest.approx(100.0) and perfect["BLEU"] == pytest.approx(100.0)
    worse = flores.score(["A dog.", "Sun."], refs)
    # sacrebleu's own chrF (character 6-grams, beta 2, no word n-grams) of the same texts, rounded as flores does
    assert worse["chrF"] == pytest.approx(2.68) and worse["BLEU"] == 0.0 and worse["sentences"] == 2
    assert "nc:6|nw:0" in worse["chrF_signature"] and "tok:13a" in worse["BLEU_signature"]


# --- training -----------------------------------------------------------------------------------

NAMES = ["juma", "asha", "baraka", "neema", "zawadi"]
BITEXT = [
    ("habari yako", "how are you"),
    ("asante sana", "thank you very much"),
    ("ninapenda chai", "i like tea"),
    ("mbwa wangu ni mkubwa", "my dog is big"),
    ("kwaheri rafiki", "goodbye friend"),
] * 4 + [(f"jina langu ni {name}", f"my name is {name}") for name in NAMES] * 3


def write_tiny_encoder(path: Path, layers: int = 1) -> Path:
    """A randomly initialised (seeded) BERT of ``layers`` layers, 16 wide, over :data:`WORDS`, saved at ``path``."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, pad_token_id=0)
    BertModel(config, add_pooling_layer=False).save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return path


@pytest.fixture
def tiny_encoder(tmp_path):
    return write_tiny_encoder(tmp_path / "tiny-encoder")


def test_source_states_are_the_full_encoders_layer_states_from_the_truncated_encoder(bench_home, tmp_path,
                                                                                    monkeypatch):
    from bench.methods.translate import mt_data

    ref = models.resolve(str(write_tiny_encoder(tmp_path / "three-layer-encoder", layers=3)))
    texts = ["habari yako", "mbwa wangu ni mkubwa sana", "a", "jina langu ni rehema"]
    full, tokenizer = models.load(ref)

    with monkeypatch.context() as patch:  # the layer above the states is never run
        patch.setattr(full.encoder.layer[2], "forward", lambda *a, **k: pytest.fail("layer 3 ran"))
        generator = torch.get_rng_state()
        got = mt_data.encode_states(ref, 2, 16, texts)
    # nothing drawn from torch's generator: the MT training seeds it just before it builds the states
    assert torch.equal(torch.get_rng_state(), generator)

    with torch.inference_mode():
        for i, text in enumerate(texts):
            ids = tokenizer([text], return_tensors="pt")
            expected = full(**ids, output_hidden_states=True).hidden_states[2][0].to(torch.float16).numpy()
            assert got.get(i).shape == (len(ids["input_ids"][0]), 16)
            assert (abs(got.get(i).astype("float32") - expected.astype("float32")) <= 1e-3).all()


def test_tiny_training_overfits_and_copies_unseen_names(bench_home, tiny_encoder):
    from bench.methods.translate.mt_model import MODEL_FILE
    from bench.methods.translate.mt_config import MtConfig
    from bench.methods.translate.mt_train import train_on_bitext

    config = MtConfig(encoder=str(tiny_encoder), encoder_layer=1, d_model=32, layers=1, heads=2,
                      ffn=64, dropout=0.0, label_smoothing=0.0, lr=3e-3, warmup=10, max_steps=400, min_count=1,
                      batch_tokens=200, max_minutes=600, dev_size=2, eval_every=200, eval_sentences=2)
    path = train_on_bitext(BITEXT, "tiny-bitext", config, seed=0)
    meta = json.loads((path / MODEL_FILE).read_text())
    vocabulary = set(meta["vocabulary"])
    assert WORDS.index("rehema") not in vocabulary  # never on the English side: only copying can produce it
    assert WORDS.index("dog") in vocabulary and WORDS.index("mbwa") not in vocabulary
    curve = (path / "curve.csv").read_text().splitlines()
    assert curve[0].startswith("step,") and len(curve) == 3  # header + steps 200, 400
    assert (path / "curve.png").exists()
    record = json.loads((path / "bench-mt.json").read_text())
    assert record["steps"] == 400 and record["stopped_by"] == "max_steps" and record["peak_rss_mb"] > 0
    assert record["threads"] == batching.threads()

    greedy = nmt.DecodeParams(num_beams=1, max_new_tokens=40)
    sources = ["habari yako", "mbwa wangu ni mkubwa", "kwaheri rafiki", "jina langu ni rehema"]
    got = nmt.translate(sources, path, "sw", "en", greedy)
    assert got == ["how are you", "my dog is big", "goodbye friend", "my name is rehema"]
    beam = nmt.translate(sources, path, "sw", "en", nmt.DecodeParams(num_beams=3, max_new_tokens=40))
    assert beam == got

    # the same input is not trained again
    assert train_on_bitext(BITEXT, "tiny-bitext", config, seed=0) == path


def test_a_stopped_mt_training_resumes_and_ends_with_the_uninterrupted_model(bench_home, tmp_path, monkeypatch,
                                                                            tiny_encoder):
    from bench.infra.store import fingerprint, is_complete
    from bench.infra import training
    from bench.methods.translate.mt_config import MtConfig
    from bench.methods.translate.mt_train import model_key, train_on_bitext
    from bench.methods.translate.mt_model import MODEL_FILE

    class Stopped(Exception):
        pass

    def stop_at_70(step, record):
        if step == 70:
            raise Stopped

    config = MtConfig(encoder=str(tiny_encoder), encoder_layer=1, d_model=32, layers=1, heads=2, ffn=64, dropout=0.1,
                      label_smoothing=0.1, lr=3e-3, warmup=10, max_steps=100, min_count=1, batch_tokens=200,
                      max_minutes=600, dev_size=2, eval_every=40, eval_sentences=2)
    clock = itertools.count()  # a fake clock: one second per reading, so the recorded minutes are exact
    monkeypatch.setattr(training, "time", types.SimpleNamespace(monotonic=lambda: float(next(clock))))
    with pytest.raises(Stopped):
        train_on_bitext(BITEXT, "tiny-bitext", config, seed=0, save_every=30, callback=stop_at_70)
    key = model_key("tiny-bitext", models.resolve(str(tiny_encoder)).fingerprint, config, 0)
    work = bench_home / "mt-models-work" / fingerprint(key)
    assert (work / "state.pt").is_file()  # saved at step 60: the next call resumes there
    steps: list[int] = []
    resumed = train_on_bitext(BITEXT, "tiny-bitext", config, seed=0, save_every=30,
                              callback=lambda step, record: steps.append(step))
    assert steps == list(range(61, 101)) and is_complete(resumed) and not work.exists()
    record = json.loads((resumed / "bench-mt.json").read_text())
    assert record["resumed_at_step"] == 60 and record["steps"] == 100
    # this process read the clock 41 times (the start, 40 steps); the state saved at step 60 carried 60 seconds
    assert record["train_minutes"] == round(41 / 60, 2) and record["train_minutes_total"] == round(101 / 60, 2)

    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "uninterrupted"))
    straight = train_on_bitext(BITEXT, "tiny-bitext", config, seed=0)
    assert json.loads((straight / "bench-mt.json").read_text())["resumed_at_step"] is None
    assert (resumed / MODEL_FILE).read_text() == (straight / MODEL_FILE).read_text()
    curves = [[line.split(",") for line in (p / "curve.csv").read_text().splitlines()] for p in (resumed, straight)]
    minutes = curves[0][0].index("minutes")  # wall time: the one column that may differ
    assert [r[:minutes] + r[minutes + 1:] for r in curves[0]] == [r[:minutes] + r[minutes + 1:] for r in curves[1]]
    from safetensors.torch import load_file

    weights = [load_file(str(p / "model.safetensors")) for p in (resumed, straight)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_config_rejects_unknown_options():
    from bench.errors import BenchError
    from bench.methods.translate.mt_config import MtConfig

    assert MtConfig.from_dict({"layers": 2}).layers == 2
    with pytest.raises(BenchError, match="unknown MT training option"):
        MtConfig.from_dict({"layerz": 2})


def test_config_refuses_bad_adaptive_softmax_cutoffs():
    from bench.errors import BenchError
    from bench.methods.translate.mt_config import MtConfig
    from bench.methods.translate.mt_train import model_key

    assert MtConfig.from_dict({"output_clusters": [1000, 4000]}).output_clusters == (1000, 4000)
    with pytest.raises(BenchError, match="exclude each other"):
        MtConfig(shortlist=2000, output_clusters=(1000,))
    with pytest.raises(BenchError, match="rising cutoffs above 0"):
        MtConfig(output_clusters=(4000, 1000))
    with pytest.raises(BenchError, match="rising cutoffs above 0"):
        MtConfig(output_clusters=(0,))
    assert "output_clusters" not in model_key("b", "e", MtConfig(), 0)["config"]
    assert model_key("b", "e", MtConfig(output_clusters=(8,)), 0)["config"]["output_clusters"] == (8,)


def test_an_adaptive_softmax_training_translates_and_is_another_model(bench_home, tiny_encoder):
    from dataclasses import replace

    from safetensors.torch import load_file

    from bench.infra.store import artifact_dir
    from bench.methods.translate.mt_model import EOS, MODEL_FILE
    from bench.methods.translate.mt_config import MtConfig
    from bench.methods.translate.mt_train import model_key, train_on_bitext

    config = MtConfig(encoder=str(tiny_encoder), encoder_layer=1, d_model=32, layers=1, heads=2, ffn=64, dropout=0.0,
                      label_smoothing=0.0, lr=3e-3, warmup=10, max_steps=400, min_count=1, batch_tokens=200,
                      max_minutes=600, dev_size=2, eval_every=200, eval_sentences=2, output_clusters=(4, 10))
    path = train_on_bitext(BITEXT, "tiny-bitext", config, seed=0)
    full_softmax = model_key("tiny-bitext", models.resolve(str(tiny_encoder)).fingerprint,
                             replace(config, output_clusters=()), 0)
    assert path != artifact_dir("mt-models", full_softmax)
    meta = json.loads((path / MODEL_FILE).read_text())
    assert meta["architecture"]["output_clusters"] == [4, 10]
    by_rank = load_file(str(path / "model.safetensors"))["by_rank"].tolist()
    assert by_rank[0] == EOS and sorted(by_rank) == list(range(len(meta["vocabulary"])))  # </s> ends every row
    greedy = nmt.DecodeParams(num_beams=1, max_new_tokens=40)
    sources = ["habari yako", "mbwa wangu ni mkubwa", "kwaheri rafiki", "jina langu ni rehema"]
    assert nmt.translate(sources, path, "sw", "en", greedy) == ["how are you", "my dog is big", "goodbye friend",
                                                                "my name is rehema"]
    # a cutoff past the vocabulary is dropped: its cluster would be empty
    beyond = train_on_bitext(BITEXT, "tiny-bitext", replace(config, output_clusters=(4, 500)), seed=0)
    assert json.loads((beyond / MODEL_FILE).read_text())["architecture"]["output_clusters"] == [4]


def test_nmt_systems_translate_queries_with_the_given_model(bench_home, tiny_marian):
    from types import SimpleNamespace

    from bench.data.collection import Query
    from bench.systems import RunContext, get_system
    from bench.systems.stages import Nmt

    assert get_system("bm25-nmt").spec["query"] == "nmt" and get_system("nmt-dense").spec["query"] == "nmt"
    pair = SimpleNamespace(name="sw-en", query_lang="sw", doc_lang="en")
    coll = SimpleNamespace(queries=[Query("q1", "a b c"), Query("q2", "d e")])
    ctx = RunContext(pair, coll, options={"mt_model": str(tiny_marian)})
    translated = Nmt().texts(ctx)
    assert [qid for qid, _ in translated] == ["q1", "q2"]
    assert ctx.artifacts["mt_model"]["fingerprint"] == nmt.resolve(tiny_marian).fingerprint


def test_nmt_systems_translate_with_the_model_bench_trains_when_none_is_given(bench_home, tiny_marian, monkeypatch):
    """Without an mt_model, the query side asks `bench train mt`'s model of the pair, with the run's noise,
    seed and the profile's steps (the training itself is replaced by the tiny model here), and both the run
    and the grid's builder translate through the same function."""
    from types import SimpleNamespace

    from bench.data.collection import Query
    from bench.methods.translate import mt_train
    from bench.systems import RunContext
    from bench.systems.builders import translated_queries
    from bench.systems.stages import NMT_DECODE, Nmt

    asked = []

    def trained(pair, config, noise, seed):
        asked.append((pair.name, config, noise, seed))
        return tiny_marian

    monkeypatch.setattr(mt_train, "train_mt", trained)
    pair = SimpleNamespace(name="sw-en", query_lang="sw", doc_lang="en")
    coll = SimpleNamespace(queries=[Query("q1", "a b c"), Query("q2", "d e")])
    ctx = RunContext(pair, coll, seed=3, options={"profile": "ci", "bitext_noise": 0.2})
    translated = Nmt().texts(ctx)
    assert asked == [("sw-en", {"max_steps": 150}, 0.2, 3)]
    # --mt-size small: its three settings, the profile's steps still over its own
    Nmt().texts(RunContext(pair, coll, seed=0, options={"mt_size": "small"}))
    Nmt().texts(RunContext(pair, coll, seed=0, options={"mt_size": "small", "profile": "ci"}))
    assert asked[1:] == [("sw-en", {"layers": 2, "output_clusters": (1000, 4000), "max_steps": 2500}, 0.0, 0),
                         ("sw-en", {"layers": 2, "output_clusters": (1000, 4000), "max_steps": 150}, 0.0, 0)]
    assert [qid for qid, _ in translated] == ["q1", "q2"] and ctx.artifacts["query_translations"] == dict(translated)
    again, info = translated_queries(pair, ctx.foreign_queries(), None, {"max_steps": 150}, 0.2, 3, NMT_DECODE)
    assert again == translated and info == ctx.artifacts["mt_model"]
    with pytest.raises(BenchError, match="bench trains foreign→English NMT only; en-sw needs an `mt_model` option"):
        translated_queries(SimpleNamespace(name="en-sw", query_lang="en", doc_lang="sw"), [], None, {}, 0.0, 0,
                           NMT_DECODE)


def test_nmt_systems_are_in_the_default_set_only_for_english_documents():
    from bench.systems import default_systems

    english = [s.name for s in default_systems(has_translations=True, doc_lang="en")]
    assert "bm25-nmt" in english and "nmt-dense" in english and "oracle-bm25" in english
    swahili = [s.name for s in default_systems(has_translations=False, doc_lang="sw")]
    assert "bm25-nmt" not in swahili and "nmt-dense" not in swahili and "oracle-bm25" not in swahili
    assert set(swahili) < set(english) and "bm25-psq" in swahili


@pytest.mark.integration
def test_flores_devtest_from_the_mirror(real_data):
    """The evaluation set `bench train mt` reports chrF on: 1,012 sw→en pairs, read through the store."""
    pairs = flores.devtest("sw")
    assert len(pairs) == 1012
    assert pairs[0] == ('"Sasa tuna panya wenye umri wa miezi minne ambao hawana kisukari ambao awali walikuwa '
                        'na kisukari", aliongeza.',
                        '"We now have 4-month-old mice that are non-diabetic that used to be diabetic," he added.')


def test_the_training_shortlist_holds_the_frequent_pieces_and_the_batch_labels_and_keys_only_when_set():
    from bench.methods.translate.mt_model import EOS, Vocabulary
    from bench.methods.translate.mt_config import MtConfig
    from bench.methods.translate.mt_train import _Data, batch_shortlist, model_key

    vocab = Vocabulary([1, 0, 2, 3, *range(4, 10)], 40)  # local ids 0-9
    data = _Data.__new__(_Data)
    data.vocab, data.target_ids = vocab, [[4, 4, 5], [4, 6, 12], [6, 7]]  # 12: an extended (copied) id
    # labels of the three rows: 4 and EOS three times each (EOS closes every row), 6 twice, 5 and 7 once
    assert data.frequent([0, 1, 2], 2).tolist() == [EOS, 4]
    assert data.frequent([0, 1, 2], 3).tolist() == [EOS, 4, 6]
    assert data.frequent([2], 5).tolist() == [EOS, 6, 7]  # only the pieces seen
    labels = torch.tensor([[9, 4, EOS], [13, -100, -100]])  # 13 extended, -100 padding: neither kept
    assert batch_shortlist(torch.tensor([4, 6]), labels, len(vocab)).tolist() == [EOS, 4, 6, 9]
    assert "shortlist" not in model_key("b", "e", MtConfig(), 0)["config"]
    assert model_key("b", "e", MtConfig(shortlist=2000), 0)["config"]["shortlist"] == 2000


def test_a_shortlist_training_learns_and_is_another_model(bench_home, tiny_encoder):
    from dataclasses import replace

    from bench.infra.store import artifact_dir
    from bench.methods.translate.mt_model import MODEL_FILE
    from bench.methods.translate.mt_config import MtConfig
    from bench.methods.translate.mt_train import model_key, train_on_bitext

    config = MtConfig(encoder=str(tiny_encoder), encoder_layer=1, d_model=32, layers=1, heads=2, ffn=64, dropout=0.0,
                      label_smoothing=0.1, lr=3e-3, warmup=10, max_steps=120, min_count=1, batch_tokens=200,
                      max_minutes=600, dev_size=2, eval_every=60, eval_sentences=2, shortlist=4)
    path = train_on_bitext(BITEXT, "tiny-bitext", config, seed=0)
    record = json.loads((path / "bench-mt.json").read_text())
    full_softmax = model_key("tiny-bitext", record["encoder"]["fingerprint"], replace(config, shortlist=0), 0)
    assert path != artifact_dir("mt-models", full_softmax)
    assert record["config"]["shortlist"] == 4 and record["steps"] == 120
    curve = [line.split(",") for line in (path / "curve.csv").read_text().splitlines()[1:]]
    assert float(curve[-1][4]) < float(curve[0][4])  # the training loss fell
    assert json.loads((path / MODEL_FILE).read_text())["vocabulary"]  # a model that loads like any other
