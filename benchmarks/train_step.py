"""Cost of one OPTICAL training step on this CPU: cached vs uncached teacher, freeze_layers 0, 3, 6.

    python benchmarks/train_step.py [--steps 20] [--warmup 2] [--pair sw-en]

The OPTICAL recipe (:data:`bench.methods.distill.recipes.OPTICAL`, batch 32) with the packaged
multilingual-e5-small as teacher and student, on the pair's real cleaned bitext (bench's loaders), in
one process. Six variants (teacher cache on/off × freeze_layers 0, 3, 6) are set up side by side and
stepped in turn, one step each per round, so that a change of the machine's load hits them all alike
(each with its own torch random stream, so its dropout is that of an uninterrupted training);
after ``--warmup`` rounds, ``--steps`` rounds are timed (bench's own :class:`bench.infra.training.Loop`:
forward, loss, backward, clipping, AdamW). Figures: steps/s per variant, its ratio to the uncached
freeze_layers=0 baseline, ``train_cached_teacher_speedup`` (cached vs uncached at freeze_layers=0),
the largest relative difference between the cached and uncached losses of the same steps (same seed,
same batches, same dropout), and the one-off cost of the teacher's cache. Lines ``name: value``, also
written to ``benchmarks/results/train_step.txt``.

The teacher's cache goes to a temporary BENCH_HOME (the benchmark's few hundred sentences are of no
use to a real training); the model and the bitext are read from the usual one.
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


def measure(pair_name: str, steps: int, warmup: int, say, freeze=FREEZE, device: str = "cpu") -> dict[str, float]:
    """Step the variants (teacher cache off/on x ``freeze``) in turn on ``device``; say and return the figures."""
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
            for freeze_layers in freeze:
                for cached in (False, True):
                    name = f"{'cached' if cached else 'uncached'}_freeze{freeze_layers}"
                    start = time.perf_counter()
                    run = TrainingRun(replace(config, freeze_layers=freeze_layers), bitext.pairs, teacher, student,
                                      Path(home) / "work", name, teacher_cache=cached, device=device)
                    setup[name] = time.perf_counter() - start
                    if cached and freeze_layers == freeze[0]:  # the first cached set-up builds the cache
                        cache = run.teacher_side.cache
                        say("teacher_cache_sentences", len(cache))
                        # set-up times of the two first variants: the cached one includes the cache's build
                        say("train_setup_s_uncached", setup[f"uncached_freeze{freeze[0]}"])
                        say("train_setup_s_cached_with_cache_build", setup[name])
                        say("teacher_cache_mb", cache.states.nbytes / 2 ** 20)
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
    diff = max(abs(a - b) / abs(b) for f in freeze
               for a, b in zip(losses[f"cached_freeze{f}"], losses[f"uncached_freeze{f}"]))
    say("train_cached_teacher_max_rel_loss_diff", diff)
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
