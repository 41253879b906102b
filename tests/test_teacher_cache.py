"""The cached teacher: the same loss and the same student as a teacher run in every step, one cache per
sentence set, the checkpoint key untouched; and the trainer's device bookkeeping."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import numpy as np
import pytest
import torch
from test_optical import ENGLISH, FOREIGN, PAIRS, TINY, tiny_net, weights

from bench.methods.distill import checkpoint_dir, load_student, train
from bench.methods.distill.optical import tokenize
from bench.methods.distill.recipes import OPTICAL, SDISTILL, STEP_CAP
from bench.methods.distill.sentence import mean_pool
from bench.methods.distill.teacher_cache import KIND, Teacher, cached_states, states_key
from bench.methods.distill.trainer import budgeted, checkpoint_key
from bench.infra.store import fingerprint
from bench.infra.training import BatchPlan, read_curve

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def nets():
    return tiny_net(ENGLISH, seed=1, name="teacher"), tiny_net(FOREIGN, seed=2, name="student")


def caches(home, kind: str = KIND) -> list[str]:
    """The finished caches of ``kind`` in the BENCH_HOME ``home``."""
    root = home / kind
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) if root.exists() else []


def recorded(config, teacher, student, **kwargs):
    """Train on the tiny bitext: the checkpoint and the record of every step."""
    losses = []
    path = train(config, PAIRS, "fp", teacher, student, progress=False, plot=False,
                 callback=lambda step, record: losses.append(record), **kwargs)
    return path, losses


def run(config, teacher, student, cached: bool, **kwargs):
    return recorded(config, teacher, student, teacher_cache=cached, **kwargs)


def assert_same_training(cached_path, cached: list[dict], plain_path, plain: list[dict], steps: int) -> None:
    """A cached and an uncached training: the same checkpoint key, losses and weights to float tolerance."""
    assert cached_path.name == plain_path.name  # a cache is not part of the checkpoint's key
    assert len(cached) == len(plain) == steps
    for a, b in zip(cached, plain):
        for part in ("loss", "ot", "sentence", "anchor"):
            assert a[part] == pytest.approx(b[part], rel=1e-5, abs=1e-7), (a["step"], part)
    w_cached, w_plain = weights(cached_path), weights(plain_path)
    assert w_cached.keys() == w_plain.keys()
    for k in w_cached:
        assert torch.allclose(w_cached[k], w_plain[k], rtol=1e-4, atol=1e-6), k


CONFIGS = {
    "ot+sentence": TINY,
    "centred, idf, unbalanced": replace(TINY, center=True, marginals="idf", tau=1.0),
    "sdistill, anchor": replace(TINY, w_ot=0.0, w_sent=1.0, anchor=0.1, freeze_embeddings=False),
    "optical recipe, two epochs": replace(OPTICAL, teacher="tiny-en", student="tiny-sw", epochs=2.0, batch_size=4,
                                          lr=1e-3, max_length=16, iterations=20, freeze_layers=1),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_cached_teacher_gives_the_uncached_losses_and_weights(bench_home, tmp_path, monkeypatch, nets, name):
    config = budgeted(CONFIGS[name], len(PAIRS))  # the recipe's two epochs: 12 steps of 4 pairs
    teacher, student = nets
    passes = []
    teacher.model.register_forward_hook(lambda module, args, output: passes.append(1))
    cached_path, cached = run(config, teacher, student, cached=True)
    assert len(caches(bench_home)) == 1
    assert len(passes) == 1  # one inference batch of the visited sentences, then no teacher pass in any step
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "uncached-home"))
    plain_path, plain = run(config, teacher, student, cached=False)
    assert caches(tmp_path / "uncached-home") == []  # switched off: no cache built
    assert len(passes) == 1 + config.steps  # a teacher pass in every step
    assert_same_training(cached_path, cached, plain_path, plain, config.steps)
    meta = json.loads((cached_path / "optical.json").read_text())
    assert meta["teacher_cache"] == caches(bench_home)[0] and meta["device"] == "cpu" and meta["precision"] == "fp32"
    assert json.loads((plain_path / "optical.json").read_text())["teacher_cache"] is None


def test_projection_and_resume_with_the_cache(bench_home, tmp_path, monkeypatch):
    """Teacher and student of other widths (a projection on the student side), and a resumed cached training."""
    teacher = tiny_net(ENGLISH, seed=1, hidden=16, name="teacher")
    student = tiny_net(FOREIGN, seed=2, hidden=32, name="student")

    class Stop(Exception):
        pass

    def stop_at_4(step, record):
        if step == 4:
            raise Stop

    with pytest.raises(Stop):
        train(TINY, PAIRS, "fp", teacher, student, progress=False, plot=False, save_every=2, callback=stop_at_4)
    state = torch.load(bench_home / "checkpoints-work" / fingerprint(
        checkpoint_key(TINY, "fp", teacher.fingerprint, student.fingerprint)) / "state.pt", weights_only=True)
    assert state["step"] == 4 and state["cuda_rng"] is None  # saved at step 4, then stopped
    assert all(t.device.type == "cpu" for t in state["trainable"].values())
    resumed, steps = run(TINY, teacher, student, cached=True, save_every=2)
    assert [r["step"] for r in steps] == [5, 6]
    assert len(caches(bench_home)) == 1  # the resumed training found the cache the first one built
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "plain"))
    plain, _ = run(TINY, teacher, student, cached=False)
    curve_a, curve_b = read_curve(resumed / "loss.csv"), read_curve(plain / "loss.csv")
    assert [r["loss"] for r in curve_a] == pytest.approx([r["loss"] for r in curve_b], rel=1e-5)
    proj_a, proj_b = load_student(resumed).projection.weight, load_student(plain).projection.weight
    assert torch.allclose(proj_a, proj_b, rtol=1e-4, atol=1e-6)


def test_cache_holds_the_teacher_outputs_of_each_unique_sentence(bench_home, nets):
    teacher, _ = nets
    texts = ["good morning", "books", "good morning", "the children play outside today"]
    states, unique, path = cached_states(teacher.model, teacher.tokenizer, teacher.fingerprint, texts, "query: ", 16)
    assert unique == ["books", "good morning", "the children play outside today"]
    assert states.lengths().tolist() == [5, 6, 9]  # [CLS] query : <1, 2, 5 words> [SEP]
    assert states.states.dtype == np.float32 and isinstance(states.states, np.memmap)
    tok = tokenize(teacher.tokenizer, unique, "query: ", 16)
    for i, ids in enumerate(tok.ids):  # one sentence at a time, no padding: the reference
        with torch.no_grad():
            hidden = teacher.model(input_ids=torch.tensor([ids])).last_hidden_state[0]
        np.testing.assert_allclose(states.states[states.offsets[i]:states.offsets[i + 1]], hidden.numpy(),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(states.pooled[i], hidden.mean(0).numpy(), rtol=1e-5, atol=1e-6)
    padded, pooled = states.batch([2, 0], width=9)
    assert padded.shape == (2, 9, 32) and torch.equal(padded[1, 5:], torch.zeros(4, 32))
    assert torch.equal(padded[1, :5], torch.from_numpy(states.states[0:5].copy()))
    assert torch.equal(padded[0], torch.from_numpy(states.states[11:20].copy()))
    # the key is the set of sentences: order and repeats do not matter, another prefix does
    again, _, same = cached_states(teacher.model, teacher.tokenizer, teacher.fingerprint,
                                   list(reversed(texts)) + ["books"], "query: ", 16)
    assert same == path and len(caches(bench_home)) == 1
    assert states_key(teacher.fingerprint, texts, "passage: ", 16) != states_key(teacher.fingerprint, texts,
                                                                                 "query: ", 16)


def test_teacher_caches_only_the_sentences_the_plan_visits(bench_home, nets):
    """3 steps of 4 rows visit at most 12 of the 24 pairs: only their English sides are computed; a
    misaligned (noisy) bitext that visits the same English sentences reuses the cache."""
    teacher, _ = nets
    english = [e for _, e in PAIRS]
    side = tokenize(teacher.tokenizer, english, "query: ", 16)
    plan = BatchPlan([len(x) for x in side.ids], 4, seed=0, bucket=16)
    visited = {i for s in range(3) for i in plan.rows(s)}
    assert len(visited) == 12
    first = Teacher(teacher.model, teacher.tokenizer, teacher.fingerprint, english, side, visited,
                    prefix="query: ", max_length=16, device="cpu")
    assert len(first.cache) == len({english[i] for i in visited}) and first.model is None
    rows = sorted(visited)[:3]
    batch = side.batch(rows)
    states, pooled = first(rows, batch)
    with torch.no_grad():
        hidden = teacher.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    keep = batch["attention_mask"].bool()
    assert torch.allclose(states[keep], hidden[keep], rtol=1e-5, atol=1e-6)
    assert torch.allclose(pooled, mean_pool(hidden, batch["attention_mask"]), rtol=1e-5, atol=1e-6)
    unvisited = [i for i in range(24) if i not in visited][:1]
    with pytest.raises(Exception, match="does not hold"):
        first(unvisited, side.batch(unvisited))
    # the same sentences at other rows (misaligned pairs): the same cache
    order = list(range(24))
    random.Random(0).shuffle(order)
    moved = [english[i] for i in order]
    rows_moved = [order.index(i) for i in visited]
    second = Teacher(teacher.model, teacher.tokenizer, teacher.fingerprint, moved,
                     tokenize(teacher.tokenizer, moved, "query: ", 16), rows_moved, prefix="query: ", max_length=16,
                     device="cpu")
    assert second.path == first.path and len(caches(bench_home)) == 1


def test_checkpoint_keys_of_the_recipes_are_unchanged():
    """Options added later (the cache, devices, ``plan``, ``epochs``) keep the keys of students trained before
    them: the earlier recipes (300 steps, every layer trained, OT weight 1) have the fingerprints they had; the recipe's
    budget in epochs keys as the steps it becomes (sw-en's 35,568 pairs: 1,112 steps of 32)."""
    earlier_optical = replace(OPTICAL, epochs=None, steps=300, freeze_layers=0, w_ot=1.0)
    assert fingerprint(checkpoint_key(earlier_optical, "bfp", "tfp", "sfp")) == "230259afe5e10d65"
    assert checkpoint_dir(earlier_optical, "bfp", "tfp", "sfp").name == "230259afe5e10d65"
    earlier_sdistill = replace(SDISTILL, epochs=None, steps=300)
    assert fingerprint(checkpoint_key(earlier_sdistill, "bfp", "tfp", "sfp")) == "85026db868d29fd1"
    assert budgeted(OPTICAL, 35568) == replace(OPTICAL, epochs=None, steps=1112)
    assert budgeted(SDISTILL, 35568).steps == 1112 and budgeted(OPTICAL, 10**6).steps == STEP_CAP


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_matches_cpu_and_loads_on_the_cpu(bench_home, tmp_path, monkeypatch, nets):
    teacher, student = nets
    gpu_path, gpu = run(TINY, teacher, student, cached=True, device="cuda")
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "cpu"))
    cpu_path, cpu = run(TINY, teacher, student, cached=True, device="cpu")
    assert [r["loss"] for r in gpu] == pytest.approx([r["loss"] for r in cpu], rel=0.05)
    meta = json.loads((gpu_path / "optical.json").read_text())
    assert meta["device"].startswith("cuda")
    assert all(v.device.type == "cpu" for v in load_student(gpu_path).model.state_dict().values())
    assert next(teacher.model.parameters()).device.type == "cpu"  # the caller's teacher never moved
