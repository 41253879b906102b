"""The shared training mechanics (bench.infra.training) on a tiny torch.nn.Linear: schedules, plan, loop, state,
curves."""

from __future__ import annotations

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench.infra.training import (  # noqa: E402
    BatchPlan, Every, Loop, Panel, curve_png, load_state, read_curve, save_state, warmup_then_decay,
    warmup_times_decay, write_curve,
)

pytestmark = pytest.mark.usefixtures("one_thread")

X = torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
Y = X @ torch.tensor([[1.0], [-2.0], [0.5]])


def test_warmup_then_decay_by_hand():
    # 10 steps, warm-up 0.2 -> 2 steps: 1/2, 2/2, then (10 - s) / 8 down to 0 at step 10
    assert [warmup_then_decay(s, 10, 0.2) for s in (0, 1, 2, 5, 9, 10, 12)] == [0.5, 1.0, 1.0, 5 / 8, 1 / 8, 0.0, 0.0]
    assert [warmup_then_decay(s, 4, 0.0) for s in range(4)] == [1.0, 0.75, 0.5, 0.25]  # no warm-up


def test_warmup_times_decay_by_hand():
    # warm-up over 4 steps times 1 - s/10 (the decay starts at step 0, not after the warm-up)
    got = [warmup_times_decay(s, 4, s / 10) for s in (0, 1, 3, 5, 10)]
    assert got == pytest.approx([0.25, 0.5 * 0.9, 0.7, 0.5, 0.0])
    assert warmup_times_decay(0, 4, 0.0) == 0.25 and warmup_times_decay(20, 4, 2.0) == 0.0


def test_batch_plan_is_a_pure_function_of_seed_and_step():
    lengths = [5, 1, 9, 3, 3, 7, 2, 8, 4, 6]
    plan = BatchPlan(lengths, batch_size=3, seed=4, bucket=2)
    assert plan.per_epoch == 4  # chunks of 6 and 4 pairs: 2 + 2 batches
    steps = [plan.rows(s) for s in range(8)]
    assert [BatchPlan(lengths, 3, 4, 2).rows(s) for s in range(8)] == steps
    assert BatchPlan(lengths, 3, 4, 2).rows(6) == steps[6]  # any step directly, as a resumed training asks
    assert sorted(sum(steps[:4], [])) == list(range(10)) == sorted(sum(steps[4:], []))
    assert [BatchPlan(lengths, 3, 5, 2).rows(s) for s in range(8)] != steps


def _linear(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 1)
    return model, torch.optim.AdamW(model.parameters(), lr=0.1)


def _loss(model):
    def loss(step: int):
        rows = BatchPlan([1] * 12, 4, seed=0).rows(step)
        noise = torch.rand(len(rows), 1) * 0.1 + random.random() * 0.01 + float(np.random.random()) * 0.01
        out = torch.nn.functional.dropout(model(X[rows]), p=0.2, training=True)
        return ((out - Y[rows] - noise) ** 2).mean(), {"rows": float(len(rows))}
    return loss


def _loop(model, optimizer, **kwargs):
    return Loop(optimizer, list(model.parameters()), steps=6, max_grad_norm=1.0, progress=False,
                lr=lambda s: 0.1 * warmup_then_decay(s, 6, 0.34), **kwargs)


def test_loop_records_every_step_and_sets_the_scheduled_lr():
    model, optimizer = _linear()
    loop, seen = _loop(model, optimizer), []
    loop.run(_loss(model), callback=lambda step, record: seen.append((step, optimizer.param_groups[0]["lr"])))
    assert loop.step == 6 and loop.stopped_by == "max_steps"
    assert [r["step"] for r in loop.curve] == list(range(1, 7))
    assert list(loop.curve[0]) == ["step", "loss", "rows", "lr"]
    assert [r["lr"] for r in loop.curve] == [0.1 * warmup_then_decay(s, 6, 0.34) for s in range(6)]
    assert seen == [(r["step"], r["lr"]) for r in loop.curve]


def test_hooks_every_n_steps_at_end_only_if_asked_and_time_budget():
    model, optimizer = _linear()
    periodic, final = [], []
    _loop(model, optimizer).run(_loss(model), hooks=[Every(2, lambda s, r: periodic.append(s)),
                                                     Every(4, lambda s, r: final.append(s), at_end=True),
                                                     Every(0, lambda s, r: periodic.append(-1))])
    assert periodic == [2, 4] and final == [4, 6]  # a partial state is not saved at the end; an evaluation is
    model, optimizer = _linear()
    loop, evaluated = _loop(model, optimizer, max_minutes=0.0), []
    loop.run(_loss(model), hooks=[Every(100, lambda s, r: evaluated.append(s), at_end=True)])
    assert loop.step == 1 and loop.stopped_by == "max_minutes" and evaluated == [1]


class Interrupted(Exception):
    pass


def test_state_save_and_resume_gives_identical_weights(tmp_path):
    state = tmp_path / "work" / "state.pt"
    random.seed(0), np.random.seed(0)
    model, optimizer = _linear()
    straight = _loop(model, optimizer)
    straight.run(_loss(model))
    expected = {k: v.clone() for k, v in model.state_dict().items()}

    def stop_at_5(step, record):
        if step == 5:
            raise Interrupted

    random.seed(0), np.random.seed(0)
    model, optimizer = _linear()
    first = _loop(model, optimizer)
    save = Every(2, lambda s, r: first.save(state, "key-1", weights=model.state_dict(), note="any payload"))
    with pytest.raises(Interrupted):
        first.run(_loss(model), hooks=[save], callback=stop_at_5)
    torch.rand(7), random.random(), np.random.random()  # the RNGs move on before the rerun

    model, optimizer = _linear(seed=1)  # another start: everything comes from the state
    again = _loop(model, optimizer)
    assert again.resume(state, "other-key") is None and again.step == 0
    restored = again.resume(state, "key-1")
    assert restored["note"] == "any payload" and again.step == 4 and len(again.curve) == 4
    assert again.seconds_before == pytest.approx(restored["seconds_trained"]) and restored["seconds_trained"] >= 0
    model.load_state_dict(restored["weights"])
    steps = []
    again.run(_loss(model), callback=lambda s, r: steps.append(s))
    assert steps == [5, 6]
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())
    assert again.curve == straight.curve
    assert again.seconds_total == pytest.approx(again.seconds_before + again.seconds)  # both processes' training


def test_the_training_time_adds_the_earlier_processes_and_is_unknown_when_a_state_lacks_it(tmp_path):
    model, optimizer = _linear()
    loop = _loop(model, optimizer)
    loop.minutes = 2.0  # two minutes into this process's training when it saves
    loop.save(tmp_path / "state.pt", "k")
    later = _loop(*_linear())
    later.resume(tmp_path / "state.pt", "k")
    later.seconds = 30.0  # what the later process's run() took
    assert later.seconds_before == 120.0 and later.seconds_total == 150.0
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    del state["seconds_trained"]  # a state saved before the total was kept
    torch.save(state, tmp_path / "old.pt")
    old = _loop(*_linear())
    old.resume(tmp_path / "old.pt", "k")
    assert old.seconds_before is None and old.seconds_total is None
    assert _loop(*_linear()).seconds_total == 0.0  # never resumed, never run


def test_load_state_ignores_missing_and_unreadable_files(tmp_path):
    assert load_state(tmp_path / "none.pt", "k") is None
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    assert load_state(tmp_path / "bad.pt", "k") is None
    save_state(tmp_path / "ok.pt", {"key": "k", "step": 3})
    state = load_state(tmp_path / "ok.pt", "k")
    assert state["step"] == 3 and {"torch_rng", "python_rng", "numpy_rng"} <= set(state)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # written atomically


def test_curve_csv_round_trip_and_png(tmp_path):
    curve = [{"step": i + 1, "loss": 1 / (i + 1), "lr": 0.5 * i, "extra": "x"} for i in range(30)]
    write_curve(curve, tmp_path / "a.csv", ("step", "loss", "lr"))  # columns given: others ignored
    assert read_curve(tmp_path / "a.csv") == [{k: r[k] for k in ("step", "loss", "lr")} for r in curve]
    points = [{"step": 10, "epoch": 1, "dev": 0.25}, {"step": 20, "epoch": 2, "dev": 0.125}]
    write_curve(points, tmp_path / "b.csv")  # the first record's keys
    assert (tmp_path / "b.csv").read_text().splitlines()[0] == "step,epoch,dev"
    assert read_curve(tmp_path / "b.csv", ints=("step", "epoch")) == points
    one = curve_png(curve, [Panel("loss", (("loss", "loss"),), smooth=True)], "title")
    assert one[:4] == b"\x89PNG" and one == curve_png(curve, [Panel("loss", (("loss", "loss"),), smooth=True)], "title")
    two = curve_png(points, [Panel("a", (("dev", "dev"), ("epoch", None))), Panel("b", (("dev", None),), marker="o")],
                    figsize=(10, 4))
    assert two[:4] == b"\x89PNG"
