"""The cached frozen prefix (freeze_layers=k): the lower layers' outputs as the student gives them, the same
loss and student as the uncached frozen run, one cache per student, k and sentence set, none for k=0."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest
import torch
from test_optical import ENGLISH, FOREIGN, PAIRS, TINY, tiny_net, tiny_tokenizer, weights
from test_teacher_cache import assert_same_training, caches as all_caches, recorded
from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

from bench.methods.distill import Net
from bench.methods.distill import prefix_cache
from bench.methods.distill.optical import tokenize
from bench.methods.distill.prefix_cache import KIND, FrozenPrefix, cached_prefix_states, evaluating, prefix_key
from bench.methods.distill.state_cache import row_index
from bench.methods.distill.trainer import TrainingRun, checkpoint_key

pytestmark = pytest.mark.usefixtures("one_thread")

ARCHITECTURES = {"bert": (BertConfig, BertModel), "xlm-r": (XLMRobertaConfig, XLMRobertaModel)}


def tiny_student(architecture: str = "bert", layers: int = 3, seed: int = 2) -> Net:
    """A randomly initialised student of ``layers`` layers, dropout on (the frozen runs must agree with it)."""
    config_class, model_class = ARCHITECTURES[architecture]
    tokenizer = tiny_tokenizer(FOREIGN)
    torch.manual_seed(seed)
    config = config_class(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                          intermediate_size=37, max_position_embeddings=66, pad_token_id=0)
    return Net(model_class(config, add_pooling_layer=False).eval(), tokenizer, f"{architecture}-{layers}-{seed}")


@pytest.fixture
def teacher():
    return tiny_net(ENGLISH, seed=1, name="teacher")


def caches(home) -> list[str]:
    return all_caches(home, KIND)


def run(config, teacher, student, cached: bool, **kwargs):
    return recorded(config, teacher, student, prefix_cache=cached, **kwargs)


def count_calls(monkeypatch, name: str) -> list:
    """Record each call of ``prefix_cache.<name>`` (still calling it)."""
    calls, original = [], getattr(prefix_cache, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(prefix_cache, name, counted)
    return calls


@pytest.mark.parametrize("architecture, layers, config", [
    ("bert", 1, TINY),
    ("xlm-r", 2, replace(TINY, center=True, marginals="idf", tau=1.0)),
    ("bert", 2, replace(TINY, w_ot=0.0, w_sent=1.0, anchor=0.1, freeze_embeddings=False)),
])
def test_cached_prefix_gives_the_uncached_frozen_losses_and_weights(bench_home, tmp_path, monkeypatch, teacher,
                                                                    architecture, layers, config):
    """Same seed, same batches, same dropout (none below the first trainable layer in either run)."""
    config = replace(config, freeze_layers=layers)
    student = tiny_student(architecture)
    lowered = count_calls(monkeypatch, "lower")
    cached_path, cached = run(config, teacher, student, cached=True)
    assert len(caches(bench_home)) == 1
    assert len(lowered) == 2  # the check of the split and one inference batch: no frozen layer runs in a step
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "uncached-home"))
    plain_path, plain = run(config, teacher, student, cached=False)
    assert caches(tmp_path / "uncached-home") == [] and len(lowered) == 2  # switched off: no cache built
    assert_same_training(cached_path, cached, plain_path, plain, config.steps)
    start, trained = student.model.state_dict(), weights(cached_path)
    frozen = ("embeddings.",) + tuple(f"encoder.layer.{i}." for i in range(layers))
    assert all(torch.equal(trained[k], start[k]) == k.startswith(frozen) for k in trained), "only the frozen kept"
    assert json.loads((cached_path / "optical.json").read_text())["prefix_cache"] == caches(bench_home)[0]
    assert json.loads((plain_path / "optical.json").read_text())["prefix_cache"] is None


def test_frozen_layers_run_without_dropout_and_the_layers_above_with_it(bench_home, tmp_path, teacher):
    student = tiny_student()
    for cached in (True, False):
        training = TrainingRun(replace(TINY, freeze_layers=2), PAIRS, teacher, student, tmp_path / "work", "key",
                               device="cpu", prefix_cache=cached)
        model = training.student
        frozen = [model.embeddings, model.encoder.layer[0], model.encoder.layer[1]]
        assert not any(m.training for module in frozen for m in module.modules())
        assert all(m.training for m in model.encoder.layer[2].modules())
        assert (training.frozen_prefix is not None) == cached
    assert student.model.training is False  # the caller's student is untouched


def test_freeze_layers_0_builds_no_prefix_cache_and_keeps_its_key(bench_home, teacher):
    student = tiny_student()
    path, _ = run(TINY, teacher, student, cached=True)
    assert caches(bench_home) == [] and json.loads((path / "optical.json").read_text())["prefix_cache"] is None
    training = TrainingRun(TINY, PAIRS, teacher, student, bench_home / "work", "key", device="cpu")
    assert training.frozen_prefix is None and all(m.training for m in training.student.modules())
    assert "frozen_dropout" not in checkpoint_key(TINY, "b", "t", "s")  # recipes' keys: test_teacher_cache
    assert checkpoint_key(replace(TINY, freeze_layers=1), "b", "t", "s")["frozen_dropout"] is False


def test_the_cache_is_reused_for_the_same_inputs_and_rebuilt_for_another_k(bench_home, teacher, monkeypatch):
    student = tiny_student()
    builds = count_calls(monkeypatch, "build_prefix_states")
    run(replace(TINY, freeze_layers=1), teacher, student, cached=True)
    assert len(builds) == 1 and len(caches(bench_home)) == 1
    # another recipe over the same plan (same seed, batch and steps: the same foreign sentences): the same cache
    run(replace(TINY, freeze_layers=1, w_ot=0.0, w_sent=1.0), teacher, student, cached=True)
    assert len(builds) == 1 and len(caches(bench_home)) == 1
    run(replace(TINY, freeze_layers=2), teacher, student, cached=True)
    assert len(builds) == 2 and len(caches(bench_home)) == 2


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_cache_holds_what_the_embeddings_and_lowest_layers_give_each_sentence(bench_home, architecture):
    student = tiny_student(architecture)
    model, layers = student.model, 2
    texts = ["habari ya asubuhi", "vitabu", "habari ya asubuhi", "watoto wanacheza nje leo sana"]
    states, unique, path = cached_prefix_states(model, student.tokenizer, student.fingerprint, texts, "query: ", 16,
                                                layers, "cpu")
    assert unique == ["habari ya asubuhi", "vitabu", "watoto wanacheza nje leo sana"]
    assert states.lengths().tolist() == [7, 5, 9]  # [CLS] query : <3, 1, 5 words> [SEP]
    side = tokenize(student.tokenizer, unique, "query: ", 16)
    for i, ids in enumerate(side.ids):  # one sentence at a time, no padding: the reference
        with torch.no_grad():
            hidden = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[layers][0]
        torch.testing.assert_close(torch.from_numpy(states.states[states.offsets[i]:states.offsets[i + 1]].copy()),
                                   hidden, rtol=1e-5, atol=1e-6)
    # a padded batch through the upper layers from the cache: the student's own last hidden state
    index = row_index(states, unique, unique, side, range(3), path)
    step = FrozenPrefix(model, layers, states, index, path, "cpu")
    batch = side.batch([2, 0, 1])
    with torch.no_grad(), evaluating(model):
        got = step([2, 0, 1], batch)
        want = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(got[real], want[real], rtol=1e-5, atol=1e-6)
    index[2] = -1  # a row the cache does not hold
    with pytest.raises(Exception, match="does not hold"):
        FrozenPrefix(model, layers, states, index, path, "cpu")([2], side.batch([2]))
    # the key is the set of sentences: order and repeats do not matter; k and the student do
    again, _, same = cached_prefix_states(model, student.tokenizer, student.fingerprint, list(reversed(texts)),
                                          "query: ", 16, layers, "cpu")
    assert same == path and len(caches(bench_home)) == 1
    key = prefix_key(student.fingerprint, texts, "query: ", 16, layers)
    assert key != prefix_key(student.fingerprint, texts, "query: ", 16, 1)
    assert key != prefix_key("another-student", texts, "query: ", 16, layers)


def test_a_student_the_split_does_not_reproduce_trains_without_the_cache(bench_home, teacher, monkeypatch, caplog):
    """A layer stack that ignores the padding mask (standing for another layout or attention masks): the
    check on a padded batch fails, nothing is cached, and the frozen layers run in every step."""
    student = tiny_student()
    monkeypatch.setattr(prefix_cache, "layer_mask", lambda model, hidden, attention_mask: None)
    with caplog.at_level(logging.WARNING, logger="bench.methods.distill.prefix_cache"):
        path, losses = run(replace(TINY, freeze_layers=1), teacher, student, cached=True)
    assert "does not reproduce the student" in caplog.text and caches(bench_home) == []
    assert len(losses) == TINY.steps and json.loads((path / "optical.json").read_text())["prefix_cache"] is None
