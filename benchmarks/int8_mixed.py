"""A gentler int8 for CPU encoding: int8 with the linear layers that lose most left in fp32 (issue 23, item 2).

    BENCH_THREADS=1 HF_HUB_OFFLINE=1 BENCH_MIRROR=../shared/mirror python benchmarks/int8_mixed.py \
        [--keep 0,8,16,24,36] [--rounds 2]

Follows ``benchmarks/results/int8_mixed/RULES.md`` (committed before any of these numbers), on the tuning pair
``ha-en-dev`` only:

1. Sensitivity: each ``nn.Linear`` of the encoder quantised alone (bench's dynamic int8, per-channel), its
   loss = 1 − mean cosine of the pooled vectors to fp32's on 256 calibration sentences (the first 128
   cleaned pairs of ``ha-en-dev``'s bitext: the Hausa side as queries, the English side as passages).
2. Candidates: the ``k`` most sensitive layers left in fp32 (``--keep``), the others quantised; each one's
   speed ratio to fp32 and its cosine to fp32 on 128 seeded ``ha-en-dev`` passages, in one process (the
   same length-sorted batches; alternating rounds, the best time of each kept).
3. The gates of the rule (ratio ≥ 1.5, mean cosine ≥ 0.995) are printed per candidate; the MAP of a
   candidate that passes them is measured by ``--map K`` (``mdense`` and ``mdense-maxsim`` on ``ha-en-dev``
   and ``yo-en-train``, fp32 against the candidate).
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import sys
import time

import numpy as np
import torch

from bench.data import models
from bench.data.bitext import load_bitext
from bench.data.pairs import get_pair
from bench.infra import batching
from bench.methods.retrieve import dense
from bench.infra.store import fingerprint
from bench.methods.retrieve import encoder as encoder_module
from bench.methods.retrieve.encoder import quantize_int8
from bench.results.scoring import means, per_query

CALIBRATION_PAIRS = 128
PASSAGES = 128
GATE_RATIO, GATE_COSINE = 1.5, 0.995


class ModelEncoder(dense.Encoder):
    """bench's Encoder (same tokenisation, batches, pooling) over a given model: one candidate's quantised copy.
    ``name`` (a candidate's) enters the cache key of its vectors, so they never mix with fp32's or int8's."""

    def __init__(self, ref: models.ModelRef, model, name: str | None = None):
        super().__init__(ref, device="cpu")
        self.model, self.name = model, name

    @property
    def loaded(self):
        return self.model, models.load(self.ref)[1]

    def key(self, side: str) -> dict:
        key = super().key(side)
        return key if self.name is None else {**key, "quantize": self.name}


def linear_names(model) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]


def calibration(pair_name: str) -> tuple[list[str], list[str]]:
    """The first CALIBRATION_PAIRS cleaned pairs of the pair's bitext: (foreign sides, English sides)."""
    pairs = load_bitext(get_pair(pair_name)).pairs[:CALIBRATION_PAIRS]
    return [f for f, _ in pairs], [e for _, e in pairs]


def vectors(enc: dense.Encoder, queries: list[str], passages: list[str]) -> np.ndarray:
    return np.concatenate([enc.encode(queries, "query").vectors, enc.encode(passages, "doc").vectors])


def sensitivity(ref: models.ModelRef, model, queries: list[str], passages: list[str]) -> list[tuple[str, float]]:
    """Each linear layer's loss when it alone is quantised, largest first."""
    base = vectors(ModelEncoder(ref, model), queries, passages)
    names = linear_names(model)
    losses = []
    for i, name in enumerate(names):
        alone = quantize_int8(model, fp32_layers=[n for n in names if n != name])
        cos = np.sum(base * vectors(ModelEncoder(ref, alone), queries, passages), axis=1)
        losses.append((name, float(1.0 - cos.mean())))
        logging.info("%d/%d %s: %.6f", i + 1, len(names), name, losses[-1][1])
    return sorted(losses, key=lambda x: -x[1])


def candidates(ref, model, ranked: list[str], keeps: list[int], texts: list[str], rounds: int) -> list[dict]:
    """Speed ratio and cosine to fp32 of each candidate (k most sensitive layers left fp32)."""
    encoders = {"fp32": ModelEncoder(ref, model)}
    for k in keeps:
        encoders[f"keep {k}"] = ModelEncoder(ref, quantize_int8(model, fp32_layers=ranked[:k]))
    for enc in encoders.values():
        enc.encode(texts[:8], "doc")  # warm-up
    best: dict[str, float] = {}
    out: dict[str, np.ndarray] = {}
    for _ in range(rounds):
        for name, enc in encoders.items():
            t0 = time.perf_counter()
            out[name] = enc.encode(texts, "doc").vectors
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
    rows = []
    for k in keeps:
        name = f"keep {k}"
        cos = np.sum(out["fp32"] * out[name], axis=1)
        ratio = best["fp32"] / best[name]
        rows.append({"keep": k, "passages_s": len(texts) / best[name], "ratio": ratio, "cos_mean": float(cos.mean()),
                     "cos_min": float(cos.min()), "gates": ratio >= GATE_RATIO and cos.mean() >= GATE_COSINE})
    rows.append({"keep": "fp32", "passages_s": len(texts) / best["fp32"]})
    return rows


def map_of(pair_name: str, spec: str, scoring: str, quantize: str | None) -> float:
    """MAP of a dense system on ``pair_name`` (queries and documents by ``spec``, quantised as ``quantize``)."""
    collection = get_pair(pair_name).collection()
    queries = [(q.query_id, q.text) for q in collection.queries]
    run, _ = dense.retrieve(collection, spec, spec, queries, scoring=scoring, quantize=quantize)
    return means(per_query(run, collection.qrels, ["AP"]))["AP"]


def read_ranking(path: str) -> list[str]:
    """The layer names of an earlier output's ranking, largest loss first."""
    rows = [line.split() for line in open(path) if re.fullmatch(r"[0-9.]+\s+\S+", line.strip())]
    if not rows:
        raise SystemExit(f"{path} holds no ranking ('loss name' lines): give an output of this script without --map")
    return [name for _, name in rows]


def measure(ref, model, keeps: list[int], rounds: int, seed: int) -> list[str]:
    """Steps 1 and 2 of the rule, printed: the ranking and the candidates' speed and cosine. Returns the ranking."""
    queries, passages = calibration("ha-en-dev")
    ranked = sensitivity(ref, model, queries, passages)
    print(f"# model {ref.name}, threads {batching.threads()}; calibration: {len(queries)} ha-en-dev bitext pairs")
    print("# linear layers by loss when quantised alone (1 - mean cosine to fp32), largest first")
    for name, loss in ranked:
        print(f"{loss:.6f}  {name}")
    docs = [d.default_text() for d in get_pair("ha-en-dev").collection().iter_docs()]
    texts = random.Random(seed).sample(docs, PASSAGES)
    order = [name for name, _ in ranked]
    print(f"# candidates on {len(texts)} seeded ha-en-dev passages, best of {rounds} alternating rounds; "
          f"gates: ratio >= {GATE_RATIO}, mean cosine >= {GATE_COSINE}")
    for row in candidates(ref, model, order, keeps, texts, rounds):
        if row["keep"] == "fp32":
            print(f"fp32              {row['passages_s']:6.2f} passages/s")
        else:
            gates = "pass" if row["gates"] else "fail"
            print(f"keep {row['keep']:>2} in fp32   {row['passages_s']:6.2f} passages/s  ratio {row['ratio']:.3f}  "
                  f"cosine mean {row['cos_mean']:.5f} min {row['cos_min']:.5f}  gates {gates}")
    return order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="multilingual-e5-small")
    parser.add_argument("--keep", default="0,8,16,24,36", help="candidates: how many sensitive layers stay fp32")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--map", type=int, help="also the four MAPs of this candidate (k) against fp32's")
    parser.add_argument("--ranking", help="the layer ranking from this earlier output of the script (its 'loss name' "
                        "lines) instead of measuring it; skips the candidates' speed too")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    ref = models.resolve(args.model)
    model, _ = models.load(ref)
    torch.set_num_threads(batching.threads())
    if args.ranking:
        order = read_ranking(args.ranking)
    else:
        order = measure(ref, model, [int(k) for k in args.keep.split(",")], args.rounds, args.seed)
    if args.map is not None:  # the candidate stands in for the encoder dense.retrieve asks for as "candidate"
        name = f"int8-fp32-{args.map}-of-{len(order)}-{fingerprint(order[:args.map])}"
        candidate = ModelEncoder(ref, quantize_int8(model, fp32_layers=order[:args.map]), name)
        encoder_module._ENCODERS[(args.model, None, "candidate")] = candidate
        for pair_name in ("ha-en-dev", "yo-en-train"):
            for scoring in ("mean", "maxsim"):
                fp32 = map_of(pair_name, args.model, scoring, None)
                cand = map_of(pair_name, args.model, scoring, "candidate")
                print(f"MAP {pair_name} {scoring}: fp32 {fp32:.4f}  keep {args.map} {cand:.4f}  "
                      f"delta {cand - fp32:+.4f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
