"""Cost of one OPTICAL training step on this CPU: cached vs uncached teacher and frozen prefix, freeze_layers 0, 3, 6.

    python benchmarks/train_step.py [--steps 20] [--warmup 2] [--pair sw-en]

The OPTICAL recipe (:data:`bench.methods.distill.recipes.OPTICAL`, batch 32) with the packaged
multilingual-e5-small as teacher and student, on the pair's real cleaned bitext (bench's loaders), in
one process. The variants, for each freeze_layers k: ``uncached_freeze<k>`` (the teacher and the frozen
layers run in every step; ``uncached_freeze0`` is the step of a training without any cache, the
baseline), ``cached_freeze<k>`` (the teacher's states cached, the frozen layers run) and, for k > 0,
``cached_prefix_freeze<k>`` (the teacher's states and the frozen layers' outputs cached: only the upper
12 - k layers run; at k = 0 there is no frozen prefix, so ``cached_freeze0`` is that variant). They
are set up side by side and stepped in turn, one step each per round, so that a change of the
machine's load hits them all alike (each with its own torch random stream, so its dropout is that of
an uninterrupted training); after ``--warmup`` rounds, ``--steps`` rounds are timed (bench's own
:class:`bench.infra.training.Loop`: forward, loss, backward, clipping, AdamW). Figures: steps/s per
variant, its ratio to the baseline, ``train_cached_teacher_speedup`` (cached vs uncached teacher at
freeze_layers 0), ``train_prefix_cache_speedup_freeze<k>`` (cached vs running frozen layers, the
teacher cached in both), the largest relative difference between the losses of the same steps (same
seed, same batches, same dropout) of the cached teacher and of the cached prefix against the uncached
run, and the one-off costs of the caches. Lines ``name: value``, also written to
``benchmarks/results/train_step.txt``.

With k > 0 the frozen layers run in eval mode (no dropout) cached or not (since issue 21), so the
``uncached_freeze<k>`` figures of earlier results files are of a step with dropout there.

The caches go to a temporary BENCH_HOME (the benchmark's few hundred sentences are of no use to a
real training); the model and the bitext are read from the usual one.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from bench.data import models
from bench.data.bitext import load_bitext
from bench.methods.distill import Net
from bench.methods.distill.recipes import OPTICAL, for_pair
from bench.methods.distill.trainer import TrainingRun
from bench.data.pairs import get_pair
from bench.infra.batching import threads
from bench.infra.training import Loop, warmup_then_decay

RESULTS = Path(__file__).resolve().parent / "results" / "train_step.txt"
FREEZE = (0, 3, 6)


class Figures:
    """Prints each figure as ``name: value`` and keeps the lines for the results file."""

    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, name, value) -> None:
        line = f"{name}: {value:.4g}" if isinstance(value, float) else f"{name}: {value}"
        print(line, flush=True)
        self.lines.append(line)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(self.lines) + "\n")


def variants(freeze) -> list[tuple[str, int, bool, bool]]:
    """(name, freeze_layers, teacher cache, prefix cache) of each variant, the baseline first."""
    out = []
    for k in freeze:
        out += [(f"uncached_freeze{k}", k, False, False), (f"cached_freeze{k}", k, True, False)]
        if k > 0:
            out.append((f"cached_prefix_freeze{k}", k, True, True))
    return out


def max_rel_diff(losses: list[float], reference: list[float]) -> float:
    return max(abs(a - b) / abs(b) for a, b in zip(losses, reference))


def measure(pair_name: str, steps: int, warmup: int, say, freeze=FREEZE, device: str = "cpu") -> dict[str, float]:
    """Step the :func:`variants` of ``freeze`` in turn on ``device``; say and return the figures (steps/s)."""
    pair = get_pair(pair_name)
    bitext = load_bitext(pair)
    total = warmup + steps
    config = replace(for_pair(OPTICAL, pair), steps=total)
    teacher = Net.from_ref(models.resolve(config.teacher))
    student = Net.from_ref(models.resolve(config.student))
    say("pair", f"{pair_name} ({len(bitext)} bitext pairs, batch {config.batch_size})")
    say("threads", threads())
    old_home = os.environ.get("BENCH_HOME")
    with tempfile.TemporaryDirectory(prefix="train-step-") as home:
        os.environ["BENCH_HOME"] = home
        try:
            runs, loops, times, losses, setup, rng = {}, {}, {}, {}, {}, {}
            for name, freeze_layers, teacher_cache, prefix_cache in variants(freeze):
                start = time.perf_counter()
                run = TrainingRun(replace(config, freeze_layers=freeze_layers), bitext.pairs, teacher, student,
                                  Path(home) / "work", name, teacher_cache=teacher_cache, prefix_cache=prefix_cache,
                                  device=device)
                setup[name] = time.perf_counter() - start
                if name == f"cached_freeze{freeze[0]}":  # the first cached set-up builds the teacher's cache
                    cache = run.teacher_side.cache
                    say("teacher_cache_sentences", len(cache))
                    # set-up times of the two first variants: the cached one includes the cache's build
                    say("train_setup_s_uncached", setup[f"uncached_freeze{freeze[0]}"])
                    say("train_setup_s_cached_with_cache_build", setup[name])
                    say("teacher_cache_mb", cache.states.nbytes / 2 ** 20)
                if prefix_cache:  # its set-up builds its prefix cache (the teacher's is built by then)
                    say(f"train_setup_s_{name}_with_cache_build", setup[name])
                    if run.frozen_prefix is not None:  # else a warning said why the frozen layers run
                        say(f"prefix_cache_mb_freeze{freeze_layers}", run.frozen_prefix.cache.states.nbytes / 2 ** 20)
                runs[name] = run
                loops[name] = Loop(run.optimizer, run.params, steps=0, max_grad_norm=config.max_grad_norm,
                                   lr=lambda step: config.lr * warmup_then_decay(step, config.steps, config.warmup),
                                   progress=False)
                times[name], losses[name] = [], []
                rng[name] = torch.get_rng_state()  # each variant draws its dropout from its own stream
            for step in range(total):  # one step of every variant per round
                for name, run in runs.items():
                    loop = loops[name]
                    loop.steps = step + 1
                    torch.set_rng_state(rng[name])
                    start = time.perf_counter()
                    loop.run(lambda s, run=run: run.loss(run.plan.rows(s)))
                    if device != "cpu":
                        torch.cuda.synchronize()
                    times[name].append(time.perf_counter() - start)
                    rng[name] = torch.get_rng_state()
                    losses[name].append(loop.curve[-1]["loss"])
                print(f"round {step + 1}/{total}", file=sys.stderr, flush=True)
        finally:
            if old_home is None:
                os.environ.pop("BENCH_HOME", None)
            else:
                os.environ["BENCH_HOME"] = old_home
    rate = {name: 1.0 / statistics.mean(t[warmup:]) for name, t in times.items()}
    base = rate[f"uncached_freeze{freeze[0]}"]
    for name in runs:
        say(f"train_steps_per_s_{name}", rate[name])
        say(f"train_speedup_{name}", rate[name] / base)
    say("train_cached_teacher_speedup", rate[f"cached_freeze{freeze[0]}"] / base)
    prefixed = [k for k in freeze if k > 0]
    for k in prefixed:  # the prefix cache's own gain: the teacher is cached in both
        say(f"train_prefix_cache_speedup_freeze{k}", rate[f"cached_prefix_freeze{k}"] / rate[f"cached_freeze{k}"])
    say("train_cached_teacher_max_rel_loss_diff",
        max(max_rel_diff(losses[f"cached_freeze{k}"], losses[f"uncached_freeze{k}"]) for k in freeze))
    for k in prefixed:  # both caches against none: same seed, same batches, same dropout
        say(f"train_cached_prefix_max_rel_loss_diff_freeze{k}",
            max_rel_diff(losses[f"cached_prefix_freeze{k}"], losses[f"uncached_freeze{k}"]))
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", default="sw-en")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant first")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    say = Figures()

    measure(args.pair, args.steps, args.warmup, say)
    say("note", f"{args.steps} timed steps per variant after {args.warmup} warm-up steps, stepped in turn; "
                f"the recipe's 300 steps visit up to {300 * 32} pairs")
    say.write(RESULTS)


if __name__ == "__main__":
    main()
