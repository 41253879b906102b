"""OPTICAL loss and trainer on tiny random BERT models: gradients, masks, determinism, resume, cache."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from tokenizers.processors import TemplateProcessing
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

from bench.methods.distill import (
    SDISTILL, Net, OpticalConfig, checkpoint_dir, cosine_cost, load_student, ot_loss, sentence_loss, sinkhorn,
    student_ref, train,
)
from bench.methods.distill.optical import center_states, idf_table, tokenize
from bench.methods.distill.trainer import budgeted, checkpoint_key
from bench.errors import BenchError
from bench.infra.store import is_complete
from bench.infra.training import BatchPlan, read_curve
from bench.infra.training import warmup_then_decay as lr_factor

FOREIGN = "habari ya asubuhi leo ni siku nzuri sana mimi ninapenda kusoma vitabu watoto wanacheza nje".split()
ENGLISH = "good morning today is a very nice day i love reading books the children play outside".split()
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "query", ":"]


def tiny_tokenizer(words: list[str]) -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(SPECIALS + sorted(set(words)))}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    tok.post_processor = TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]")


def tiny_net(words: list[str], seed: int, hidden: int = 32, name: str = "net") -> Net:
    tokenizer = tiny_tokenizer(words)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=64, pad_token_id=0)
    model = BertModel(config, add_pooling_layer=False).eval()
    return Net(model, tokenizer, f"{name}-{seed}-{hidden}")


def bitext(n: int = 24, seed: int = 0) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        idx = rng.choice(len(FOREIGN), size=int(rng.integers(2, 7)), replace=False)
        pairs.append((" ".join(FOREIGN[i] for i in idx), " ".join(ENGLISH[i] for i in idx)))
    return pairs


PAIRS = bitext()
TINY = OpticalConfig(teacher="tiny-en", student="tiny-sw", steps=6, batch_size=4, lr=1e-3, warmup=0.34,
                     max_length=16, iterations=20, w_sent=0.5)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def nets():
    return tiny_net(ENGLISH, seed=1, name="teacher"), tiny_net(FOREIGN, seed=2, name="student")


def weights(path) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in load_student(path).model.state_dict().items()}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- the loss ------------------------------------------------------------------------------------------


def _states(seed: int, batch=3, n=6, m=5, d=8):
    gen = torch.Generator().manual_seed(seed)
    t = torch.randn(batch, n, d, generator=gen, dtype=torch.float64)
    s = torch.randn(batch, m, d, generator=gen, dtype=torch.float64, requires_grad=True)
    mask_t = torch.ones(batch, n, dtype=torch.bool)
    mask_s = torch.ones(batch, m, dtype=torch.bool)
    mask_t[0, -2:] = False
    mask_s[1, 0] = False
    return t, s, mask_t, mask_s


def test_ot_loss_is_frobenius_product_and_gradient_holds_plan_constant():
    t, s, mask_t, mask_s = _states(0)
    loss, plan = ot_loss(t, s, mask_t, mask_s, epsilon=0.05, iterations=100)
    cost = cosine_cost(t, s)
    assert not plan.requires_grad
    assert torch.allclose(loss, (plan * cost).sum((-2, -1)), atol=1e-12)
    (grad,) = torch.autograd.grad(loss.sum(), s)
    s2 = s.detach().clone().requires_grad_(True)
    (expected,) = torch.autograd.grad((plan.detach() * cosine_cost(t, s2)).sum(), s2)
    assert torch.allclose(grad, expected, atol=1e-12)
    assert grad[1, 0].abs().max() == 0  # a masked student token receives no gradient


def test_envelope_theorem_plan_is_gradient_of_entropic_ot_value():
    """d/dC [min_P <P,C> + ε KL(P | a⊗b)] = P*: the detached plan gives the exact gradient."""
    rng = np.random.default_rng(0)
    n, m, eps = 5, 4, 0.1
    cost = torch.tensor(rng.random((n, m)))
    a, b = torch.full((n,), 1 / n, dtype=torch.float64), torch.full((m,), 1 / m, dtype=torch.float64)

    def value(c):
        p = sinkhorn(c, epsilon=eps, iterations=2000)
        return float((p * c).sum() + eps * (p * torch.log(p / (a[:, None] * b[None, :]))).sum())

    plan = sinkhorn(cost, epsilon=eps, iterations=2000)
    direction = torch.tensor(rng.standard_normal((n, m)))
    h = 1e-5
    numeric = (value(cost + h * direction) - value(cost - h * direction)) / (2 * h)
    assert abs(numeric - float((plan * direction).sum())) < 1e-7


def test_ot_loss_plan_value_and_gradient_agree_with_pot_on_masked_weighted_marginals():
    """Issue 25: the plan and the loss checked against POT's log-domain Sinkhorn on the same masked, weighted
    marginals (not against the plan ot_loss itself returns), and the gradient against finite differences of
    the entropic OT value POT computes."""
    ot = pytest.importorskip("ot")
    t, s, mask_t, mask_s = _states(3)
    gen = torch.Generator().manual_seed(4)
    w_t = torch.rand(t.shape[:2], generator=gen, dtype=torch.float64) + 0.1
    w_s = torch.rand(s.shape[:2], generator=gen, dtype=torch.float64) + 0.1
    eps = 0.1
    loss, plan = ot_loss(t, s, mask_t, mask_s, teacher_weights=w_t, student_weights=w_s, epsilon=eps,
                         iterations=3000)
    (grad,) = torch.autograd.grad(loss.sum(), s)

    def pot(i: int, student: torch.Tensor):
        rows, cols = mask_t[i].numpy(), mask_s[i].numpy()
        a = w_t[i].numpy()[rows] / w_t[i].numpy()[rows].sum()
        b = w_s[i].numpy()[cols] / w_s[i].numpy()[cols].sum()
        cost = cosine_cost(t[i:i + 1], student[i:i + 1]).detach()[0].numpy()[np.ix_(rows, cols)]
        p = ot.sinkhorn(a, b, cost, eps, method="sinkhorn_log", numItermax=100_000, stopThr=1e-15)
        value = (p * cost).sum() + eps * (p * np.log(p / np.outer(a, b))).sum()
        return p, cost, value, rows, cols

    direction = torch.randn(s.shape, generator=gen, dtype=torch.float64)
    h = 1e-6
    for i in range(t.shape[0]):
        expected, cost, _, rows, cols = pot(i, s.detach())
        assert np.allclose(plan[i].numpy()[np.ix_(rows, cols)], expected, atol=1e-9)
        assert plan[i].numpy()[~rows].sum() == 0 and plan[i].numpy()[:, ~cols].sum() == 0
        assert float(loss[i].detach()) == pytest.approx(float((expected * cost).sum()), abs=1e-9)
        one = torch.zeros_like(direction)
        one[i] = direction[i]
        numeric = (pot(i, s.detach() + h * one)[2] - pot(i, s.detach() - h * one)[2]) / (2 * h)
        assert float((grad[i] * direction[i]).sum()) == pytest.approx(numeric, abs=1e-6)


def test_ot_loss_prefers_aligned_translation():
    t = torch.randn(1, 6, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    aligned = t[:, torch.randperm(6)]
    unrelated = torch.randn_like(t)
    full = torch.ones(1, 6, dtype=torch.bool)
    good, _ = ot_loss(t, aligned, full, full, epsilon=0.05, iterations=50)
    bad, _ = ot_loss(t, unrelated, full, full, epsilon=0.05, iterations=50)
    assert float(good) < 0.05 < float(bad)


def test_maxsim_plan_puts_each_student_tokens_weight_on_its_nearest_teacher_token():
    teacher = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    student = torch.tensor([[[1.0, 0.1], [0.1, 1.0], [-1.0, 0.0]]], requires_grad=True)
    keep_t = torch.tensor([[True, True, False]])  # (1, 1) is masked out: it gets no weight
    keep_s = torch.tensor([[True, True, True]])
    loss, plan = ot_loss(teacher, student, keep_t, keep_s, plan="maxsim", epsilon=9.0, tau=0.5)
    # (-1, 0) costs 2 to (1, 0) and 1 to (0, 1): its weight goes to (0, 1)
    expected = torch.tensor([[1 / 3, 0.0, 0.0], [0.0, 1 / 3, 1 / 3], [0.0, 0.0, 0.0]])
    assert torch.allclose(plan[0], expected)
    best = 1 - torch.tensor([1 / 1.01 ** 0.5, 1 / 1.01 ** 0.5, 0.0])  # 1 − max_j cos per student token
    assert loss.item() == pytest.approx(best.mean().item())
    # weighted: the student's weights are its marginal; an empty teacher side gives a zero plan
    idf = torch.tensor([[2.0, 1.0, 1.0]])
    _, weighted = ot_loss(teacher, student, keep_t, keep_s, student_weights=idf, plan="maxsim")
    assert weighted[0].sum(0).tolist() == pytest.approx([0.5, 0.25, 0.25])
    none, empty = ot_loss(teacher, student, torch.zeros_like(keep_t), keep_s, plan="maxsim")
    assert none.item() == 0.0 and empty.abs().sum().item() == 0.0
    (grad,) = torch.autograd.grad(loss.sum(), student)
    assert grad[0, :2].abs().sum() > 0
    with pytest.raises(ValueError, match="unknown plan"):
        ot_loss(teacher, student, keep_t, keep_s, plan="greedy")


def test_center_states_subtracts_the_mean_unmasked_teacher_token_from_both_sides():
    t = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 0.0], [0.0, 0.0], [0.0, 0.0]]])
    keep = torch.tensor([[True, True, False], [True, False, False]])  # the third token is masked out
    s = torch.ones(2, 2, 2, requires_grad=True)
    tc, sc = center_states(t, s, keep)
    origin = torch.tensor([3.0, 2.0])  # mean of (1,2), (3,4), (5,0)
    assert torch.allclose(tc, t - origin) and torch.allclose(sc, s - origin)
    (grad,) = torch.autograd.grad(sc.sum(), s)
    assert torch.equal(grad, torch.ones_like(s))  # the origin is a constant: no gradient through it
    # centring separates near-parallel states: raw 1 − cos barely tells the two teacher tokens apart
    teacher = torch.tensor([[[10.0, 1.0], [10.0, -1.0]]])  # origin (10, 0)
    student = torch.tensor([[[10.0, 1.0]]])  # the first teacher token
    raw = cosine_cost(teacher, student).flatten()
    centred = cosine_cost(*center_states(teacher, student, torch.ones(1, 2, dtype=torch.bool))).flatten()
    assert raw.tolist() == pytest.approx([0.0, 2 / 101])
    assert centred.tolist() == pytest.approx([0.0, 2.0])


def test_sentence_loss():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    y = torch.tensor([[3.0, 0.0], [1.0, 0.0]])
    assert torch.allclose(sentence_loss(x, y), torch.tensor([0.0, 1.0]))


# --- tokens --------------------------------------------------------------------------------------------


def test_tokenize_masks_special_and_prefix_tokens():
    tok = tiny_tokenizer(ENGLISH)
    side = tokenize(tok, ["good morning", "books"], "query: ", max_length=16)
    assert tok.convert_ids_to_tokens(side.ids[0]) == ["[CLS]", "query", ":", "good", "morning", "[SEP]"]
    assert side.keep[0].tolist() == [False, False, False, True, True, False]
    batch = side.batch([0, 1])
    assert batch["attention_mask"].tolist() == [[1] * 6, [1] * 5 + [0]]
    assert batch["keep"].tolist() == [[False, False, False, True, True, False], [False] * 3 + [True] + [False] * 2]
    plain = tokenize(tok, ["good morning"], "", max_length=16)
    assert plain.keep[0].tolist() == [False, True, True, False]


def test_idf_weights_rare_tokens_more():
    tok = tiny_tokenizer(ENGLISH)
    side = tokenize(tok, ["good morning", "good day", "good books"], "query: ", max_length=16)
    idf = idf_table(side, len(tok))
    good, books = tok.convert_tokens_to_ids(["good", "books"])
    assert idf[books] > idf[good] > 0
    assert idf[good] == pytest.approx(np.log(4 / 4) + 1)
    weights = side.batch([2], idf)["weights"][0]
    assert weights[side.keep[2].tolist().index(True)] == pytest.approx(idf[good])
    assert float(weights[0]) == 0.0  # special tokens carry no weight


# --- the trainer ---------------------------------------------------------------------------------------


def test_batch_plan_is_seeded_epochs_of_length_buckets():
    lengths = np.random.default_rng(0).integers(3, 60, size=50)
    plan = BatchPlan(lengths, batch_size=4, seed=0, bucket=3)
    assert plan.per_epoch == 13  # 4 chunks of 12 pairs (3 batches each) + a last chunk of 2 pairs
    epochs = [[plan.rows(s) for s in range(e * 13, (e + 1) * 13)] for e in range(2)]
    for batches in epochs:  # every pair exactly once per epoch
        assert sorted(sum(batches, [])) == list(range(50))
    assert epochs[0] != epochs[1]
    assert [BatchPlan(lengths, 4, 0, 3).rows(s) for s in range(26)] == sum(epochs, [])
    assert [BatchPlan(lengths, 4, 1, 3).rows(s) for s in range(13)] != epochs[0]

    def padding(p):
        return sum(len(r) * lengths[r].max() - lengths[r].sum() for r in (p.rows(s) for s in range(13)))

    assert padding(plan) < padding(BatchPlan(lengths, 4, 0, bucket=1))
    small = BatchPlan([5, 6, 7], batch_size=4, seed=0)
    assert small.per_epoch == 1 and sorted(small.rows(0)) == sorted(small.rows(1)) == [0, 1, 2]


def test_lr_schedule_warms_up_then_decays():
    factors = [lr_factor(s, 10, 0.2) for s in range(10)]
    assert factors[:3] == [0.5, 1.0, 1.0] and factors[-1] == pytest.approx(1 / 8)
    assert all(x >= y for x, y in zip(factors[1:], factors[2:]))


def test_train_writes_checkpoint_and_reuses_it(bench_home, nets):
    teacher, student = nets
    before = {k: v.clone() for k, v in student.model.state_dict().items()}
    path = train(TINY, PAIRS, "bitext-fp", teacher, student, progress=False, save_every=2)
    assert is_complete(path) and path == checkpoint_dir(TINY, "bitext-fp", teacher.fingerprint, student.fingerprint)
    assert same_weights(before, student.model.state_dict())  # the initial student is not touched
    trained = load_student(path)
    assert not same_weights(before, trained.model.state_dict())
    # frozen word embeddings stay equal, the rest moved
    emb = "embeddings.word_embeddings.weight"
    assert torch.equal(trained.model.state_dict()[emb], before[emb])
    assert trained.projection is None
    curve = read_curve(path / "loss.csv")
    assert [r["step"] for r in curve] == list(range(1, 7))
    assert all(r["ot"] > 0 and r["sentence"] > 0 for r in curve)
    assert all(r["loss"] == pytest.approx(r["ot"] + 0.5 * r["sentence"], rel=1e-5) for r in curve)
    assert (path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    meta = json.loads((path / "optical.json").read_text())
    assert meta["steps"] == 6 and meta["config"]["w_sent"] == 0.5 and meta["system"] == "optical"
    # the training process's peak memory, as the report's Training table shows it (no GPU here: none there)
    import resource

    assert 0 < meta["peak_rss_mb"] <= resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    assert meta["peak_cuda_mb"] is None
    assert not (bench_home / "checkpoints-work").exists() or not any((bench_home / "checkpoints-work").iterdir())
    # a second call reuses the finished checkpoint without training
    calls = []
    again = train(TINY, PAIRS, "bitext-fp", teacher, student, progress=False, callback=lambda s, r: calls.append(s))
    assert again == path
    assert calls == []
    ref = student_ref(path)
    assert ref.conventions.query_prefix == "query: " and ref.path == path / "student"


def test_a_budget_in_epochs_trains_its_steps_under_their_key(bench_home, nets):
    teacher, student = nets
    by_epochs = replace(TINY, epochs=0.75, steps=100)  # 24 pairs in batches of 4: 6 steps an epoch
    assert budgeted(by_epochs, 24) == replace(TINY, steps=5)  # ceil(0.75 * 6), epochs then None
    assert budgeted(by_epochs, 22).steps == 5 and budgeted(by_epochs, 25).steps == 6  # ceil(pairs / 4) batches
    assert budgeted(replace(TINY, epochs=10, steps=20), 24).steps == 20  # steps cap the budget
    assert budgeted(TINY, 24) is TINY  # no epochs: the steps
    assert by_epochs.with_steps(7) == replace(TINY, steps=7)  # a step count given replaces the epochs
    assert "epochs" not in checkpoint_key(TINY, "fp", "t", "s")["config"]
    path = train(by_epochs, PAIRS, "bitext-fp", teacher, student, progress=False)
    assert path == checkpoint_dir(replace(TINY, steps=5), "bitext-fp", teacher.fingerprint, student.fingerprint)
    assert [r["step"] for r in read_curve(path / "loss.csv")] == [1, 2, 3, 4, 5]
    with pytest.raises(BenchError, match="epochs must be > 0"):
        OpticalConfig(epochs=0)


def test_same_seed_same_weights_other_seed_differs(bench_home, tmp_path, monkeypatch, nets):
    teacher, student = nets
    first = weights(train(TINY, PAIRS, "fp", teacher, student, progress=False, plot=False))
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "other-home"))  # a fresh cache: really train again
    again = weights(train(TINY, PAIRS, "fp", teacher, student, progress=False, plot=False))
    assert same_weights(first, again)
    other = weights(train(OpticalConfig(**{**TINY.__dict__, "seed": 1}), PAIRS, "fp", teacher, student,
                          progress=False, plot=False))
    assert not same_weights(first, other)


class Interrupted(Exception):
    pass


def test_resume_after_interruption_gives_the_same_weights(bench_home, tmp_path, monkeypatch, nets):
    teacher, student = nets
    config = OpticalConfig(**{**TINY.__dict__, "marginals": "idf", "tau": 1.0})

    def stop_at_5(step, record):
        if step == 5:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(config, PAIRS, "fp", teacher, student, progress=False, plot=False, save_every=2, callback=stop_at_5)
    path = checkpoint_dir(config, "fp", teacher.fingerprint, student.fingerprint)
    assert not is_complete(path)  # no completion marker for an unfinished training
    steps = []
    resumed = train(config, PAIRS, "fp", teacher, student, progress=False, plot=False, save_every=2,
                    callback=lambda s, r: steps.append(s))
    assert steps == [5, 6]  # picked up after the state saved at step 4
    meta = json.loads((resumed / "optical.json").read_text())
    assert meta["resumed"] is True
    assert meta["seconds"] is not None and meta["seconds"] >= meta["seconds_last_session"]  # both processes counted
    assert [r["step"] for r in read_curve(resumed / "loss.csv")] == list(range(1, 7))

    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "uninterrupted"))
    straight = train(config, PAIRS, "fp", teacher, student, progress=False, plot=False, save_every=2)
    alone = json.loads((straight / "optical.json").read_text())
    assert alone["seconds"] == alone["seconds_last_session"] and alone["resumed"] is False
    assert same_weights(weights(resumed), weights(straight))
    assert read_curve(resumed / "loss.csv") == read_curve(straight / "loss.csv")


def test_projection_when_widths_differ_and_teacher_is_frozen(bench_home):
    teacher = tiny_net(ENGLISH, seed=1, hidden=16, name="teacher")
    student = tiny_net(FOREIGN, seed=2, hidden=32, name="student")
    teacher_before = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    path = train(TINY, PAIRS, "fp", teacher, student, progress=False, plot=False)
    trained = load_student(path)
    assert trained.projection is not None and tuple(trained.projection.weight.shape) == (16, 32)
    assert same_weights(teacher_before, teacher.model.state_dict())
    with pytest.raises(BenchError):
        student_ref(path)


def test_sdistill_and_unfrozen_embeddings(bench_home, nets):
    teacher, student = nets
    config = OpticalConfig(**{**SDISTILL.__dict__, "steps": 3, "batch_size": 4, "lr": 1e-3,
                              "freeze_embeddings": False, "anchor": 0.1})
    path = train(config, PAIRS, "fp", teacher, student, progress=False, plot=False)
    curve = read_curve(path / "loss.csv")
    assert all(r["ot"] == 0 and r["sentence"] > 0 for r in curve)
    assert curve[0]["anchor"] == 0 and curve[-1]["anchor"] > 0
    emb = "embeddings.word_embeddings.weight"
    assert not torch.equal(load_student(path).model.state_dict()[emb], student.model.state_dict()[emb])
    assert json.loads((path / "optical.json").read_text())["system"] == "sdistill"


def test_config_validation_and_fingerprint_changes(nets):
    teacher, student = nets
    with pytest.raises(BenchError):
        OpticalConfig(marginals="tfidf")
    with pytest.raises(BenchError):
        OpticalConfig(w_ot=0.0, w_sent=0.0)
    base = checkpoint_dir(TINY, "fp", "t", "s")
    assert checkpoint_dir(OpticalConfig(**{**TINY.__dict__, "epsilon": 0.1}), "fp", "t", "s") != base
    assert checkpoint_dir(TINY, "other-bitext", "t", "s") != base
    assert checkpoint_dir(TINY, "fp", "t2", "s") != base
    # an option added later enters the key only when set, so cached checkpoints keep their fingerprints
    assert "center" not in checkpoint_key(TINY, "fp", "t", "s")["config"]
    assert checkpoint_dir(OpticalConfig(**{**TINY.__dict__, "center": True}), "fp", "t", "s") != base
    assert "plan" not in checkpoint_key(TINY, "fp", "t", "s")["config"]
    assert checkpoint_dir(OpticalConfig(**{**TINY.__dict__, "plan": "maxsim"}), "fp", "t", "s") != base
    with pytest.raises(BenchError, match="unknown plan"):
        OpticalConfig(plan="greedy")
    with pytest.raises(BenchError):
        train(TINY, [], "fp", teacher, student)


def test_train_specs_resolves_models_and_skips_loading_when_trained(bench_home, tmp_path, monkeypatch, nets):
    from bench.data import models
    from bench.methods.distill import train_specs

    refs = {}
    for name, net in zip(("tiny-en", "tiny-sw"), nets):
        net.model.save_pretrained(tmp_path / name)
        net.tokenizer.save_pretrained(tmp_path / name)
        refs[name] = models.ModelRef(name, tmp_path / name, models.model_fingerprint(tmp_path / name),
                                     models.Conventions(query_prefix="query: "))
    monkeypatch.setattr(models, "resolve", lambda spec: refs[spec])
    config = OpticalConfig(**{**TINY.__dict__, "steps": 2})
    path = train_specs(config, PAIRS, "fp", progress=False, plot=False)
    assert is_complete(path)
    assert path == checkpoint_dir(config, "fp", refs["tiny-en"].fingerprint, refs["tiny-sw"].fingerprint)

    def no_loading(ref):
        raise AssertionError("a trained checkpoint must not load the models")

    monkeypatch.setattr(models, "load", no_loading)
    assert train_specs(config, PAIRS, "fp") == path


def test_freeze_layers_keeps_the_embeddings_and_lowest_layers_at_their_start(bench_home, nets):
    from dataclasses import replace

    from bench.methods.distill.trainer import frozen_prefixes

    teacher, student = nets
    start = {k: v.clone() for k, v in student.model.state_dict().items()}
    assert frozen_prefixes(student.model, 1) == ("embeddings.", "encoder.layer.0.")
    trained = weights(train(replace(TINY, freeze_layers=1), PAIRS, "fp", teacher, student, progress=False, plot=False))
    for name, value in trained.items():
        unchanged = torch.equal(value, start[name])
        assert unchanged == name.startswith(("embeddings.", "encoder.layer.0.")), name
    with pytest.raises(BenchError, match="nothing would be trained"):
        frozen_prefixes(student.model, 2)  # the tiny student has 2 layers
