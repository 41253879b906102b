"""Speed of bench's models on this machine, as ratios against a baseline measured in the same process.

    HF_HUB_OFFLINE=1 BENCH_MIRROR=../shared/mirror python benchmarks/speed.py [--quick]

Figures (one ``name: value`` line each, also written to ``benchmarks/results/speed.txt``, or
``speed-quick.txt`` with ``--quick``):

- ``encode_int8_speedup``: passages/s of the int8 encoder (torch dynamic quantisation,
  :mod:`bench.methods.retrieve.encoder`) over the fp32 one, the packaged multilingual-e5-small on a seeded
  sample of sw-en passages, the two encoders alternating over several rounds (best round each), with
  the cosine between their vectors;
- ``encode_int8_map_delta_mdense``, ``encode_int8_map_delta_maxsim`` (not with ``--quick``): MAP of
  ``mdense`` / ``mdense-maxsim`` on sw-en test with ``quantize=int8`` minus MAP in fp32, both run
  through ``bench.run`` (the fp32 encodings come from the cache where they are; the int8 ones are
  encoded here, the whole corpus once);
- ``train_cached_teacher_speedup``: OPTICAL training steps/s with the teacher's states cached over
  the teacher run every step (``benchmarks/train_step.py``'s measurement: the recipe, real bitext,
  variants stepped in turn); the full run adds ``freeze_layers`` 3 and 6;
- ``encode_cuda_speedup``, ``train_cuda_speedup`` when torch sees a GPU.

``--quick`` encodes fewer passages, times fewer steps and computes no MAP: a few minutes here.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # train_step.py beside this script

import train_step  # noqa: E402

from bench import api  # noqa: E402

from bench.infra import batching

from bench.data import models
from bench.data.pairs import get_pair  # noqa: E402
from bench.methods.retrieve.encoder import Encoder  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def encode_rates(texts: list[str], encoders: dict[str, Encoder], rounds: int) -> tuple[dict, dict]:
    """Best passages/s of each encoder over ``rounds`` alternating rounds, and its last vectors."""
    best, vectors = {}, {}
    for enc in encoders.values():
        enc.encode(texts[:8], "doc")  # warm-up (the int8 copy is made here)
    for _ in range(rounds):
        for name, enc in encoders.items():
            start = time.perf_counter()
            vectors[name] = enc.encode(texts, "doc").vectors
            if enc.device.type == "cuda":
                import torch

                torch.cuda.synchronize()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    return {name: len(texts) / t for name, t in best.items()}, vectors


def map_delta(say) -> None:
    """MAP of mdense and mdense-maxsim on sw-en, int8 minus fp32 (runs in a temporary directory)."""
    with tempfile.TemporaryDirectory(prefix="speed-runs-") as runs:
        systems = ["mdense", "mdense-maxsim"]
        fp32 = api.run("sw-en", systems=systems, runs=Path(runs) / "fp32").table()
        int8 = api.run("sw-en", systems=systems, runs=Path(runs) / "int8", quantize="int8").table()
    for system, short in (("mdense", "mdense"), ("mdense-maxsim", "maxsim")):
        a, b = _map(fp32, system), _map(int8, system)
        say(f"map_fp32_{short}", a)
        say(f"map_int8_{short}", b)
        say(f"encode_int8_map_delta_{short}", b - a)


def _map(table, system: str) -> float:
    return float(table.loc[system, ("AP", "mean")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer passages and steps, no MAP (a few minutes)")
    parser.add_argument("--passages", type=int, help="passages to encode (default 120 quick, 400 full)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    say = train_step.Figures()

    import torch

    started = time.perf_counter()
    say("mode", "quick" if args.quick else "full")
    say("threads", batching.threads())
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")()
    say("cpu_bf16_native", bool(capability in ("avx512_bf16", "amx")))
    n = args.passages or (120 if args.quick else 400)
    passages = [d.default_text() for d in get_pair("sw-en").collection().iter_docs()]
    texts = random.Random(args.seed).sample(passages, min(n, len(passages)))
    ref = models.resolve("multilingual-e5-small")
    encoders = {"fp32": Encoder(ref, device="cpu"), "int8": Encoder(ref, device="cpu", quantize="int8")}
    cuda = torch.cuda.is_available()
    if cuda:
        encoders["cuda"] = Encoder(ref, device="cuda")
    rates, vectors = encode_rates(texts, encoders, rounds=2 if args.quick else 3)
    say("encode_passages", len(texts))
    for name, rate in rates.items():
        say(f"encode_{name}_passages_per_s", rate)
    say("encode_int8_speedup", rates["int8"] / rates["fp32"])
    cosine = np.sum(vectors["fp32"] * vectors["int8"], axis=1)
    say("encode_int8_cosine_min", float(cosine.min()))
    say("encode_int8_cosine_mean", float(cosine.mean()))
    if cuda:
        say("encode_cuda_speedup", rates["cuda"] / rates["fp32"])
        say("encode_cuda_cosine_min", float(np.sum(vectors["fp32"] * vectors["cuda"], axis=1).min()))
    if not args.quick:
        map_delta(say)
    steps, warmup = (4, 1) if args.quick else (20, 2)
    freeze = (0,) if args.quick else train_step.FREEZE
    cpu_rate = train_step.measure("sw-en", steps, warmup, say, freeze=freeze)
    if cuda:
        gpu_rate = train_step.measure("sw-en", steps, warmup, lambda k, v: say(f"cuda_{k}", v), freeze=(0,),
                                      device="cuda")
        say("train_cuda_speedup", gpu_rate["cached_freeze0"] / cpu_rate["cached_freeze0"])
    else:
        say("cuda", "no CUDA device: encode_cuda_speedup and train_cuda_speedup not measured")
    say("wall_s", time.perf_counter() - started)
    say.write(RESULTS / ("speed-quick.txt" if args.quick else "speed.txt"))


if __name__ == "__main__":
    main()
