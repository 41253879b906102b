"""How sharp is OPTICAL's transport plan on real bitext? (issue 6: why the prototype's OT term hurt)

    BENCH_MIRROR=../shared/mirror python benchmarks/ot_plan_sharpness.py ha-en-dev --pairs 48

Encodes the first ``--pairs`` bitext pairs with the zero-shot encoder (teacher and student are the same
model before training) and, for each ε, reports the OT loss and two measures of how much the plan
aligns rather than averages: the mean share of a teacher token's mass on its single best student
token, and the mean row entropy divided by its maximum log(m) (1 = uniform, 0 = one-to-one). Also
with the token states centred as the ``optical`` recipe trains them, to show how much of the flatness is anisotropy.
"""

from __future__ import annotations

import argparse

import torch

from bench.data import models
from bench.data.bitext import load_bitext
from bench.methods.distill.optical import center_states, cosine_cost, ot_loss, tokenize
from bench.data.pairs import get_pair


def plan_sharpness(plan: torch.Tensor, keep_a: torch.Tensor, keep_b: torch.Tensor) -> tuple[float, float]:
    rows = plan / plan.sum(-1, keepdim=True).clamp_min(1e-30)
    top = rows.max(-1).values[keep_a]
    entropy = -(rows * rows.clamp_min(1e-30).log()).sum(-1)
    m = keep_b.sum(-1, keepdim=True).expand_as(entropy).float()
    return float(top.mean()), float((entropy / m.log().clamp_min(1e-9))[keep_a].mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pair")
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--model", default="multilingual-e5-small")
    args = parser.parse_args()
    model, tokenizer = models.load(models.resolve(args.model))
    model.eval()
    pairs = load_bitext(get_pair(args.pair)).pairs[:args.pairs]
    english = tokenize(tokenizer, [e for _, e in pairs], "query: ", 128)
    foreign = tokenize(tokenizer, [f for f, _ in pairs], "query: ", 128)
    rows = list(range(len(pairs)))
    tb, sb = english.batch(rows), foreign.batch(rows)
    with torch.no_grad():
        t = model(input_ids=tb["input_ids"], attention_mask=tb["attention_mask"]).last_hidden_state
        s = model(input_ids=sb["input_ids"], attention_mask=sb["attention_mask"]).last_hidden_state
    print("states\tepsilon\tcost mean\tcost std\tOT loss\ttop share\trow entropy / max")
    for centred in (False, True):
        tt, ss = t, s
        if centred:  # as the optical recipe trains: both sides minus the mean teacher token state
            tt, ss = center_states(t, s, tb["keep"])
        valid = tb["keep"].unsqueeze(-1) & sb["keep"].unsqueeze(-2)
        cost = cosine_cost(tt, ss)[valid]
        for eps in (0.05, 0.02, 0.01, 0.005):
            loss, plan = ot_loss(tt, ss, tb["keep"], sb["keep"], epsilon=eps, iterations=100)
            top, entropy = plan_sharpness(plan, tb["keep"], sb["keep"])
            print(f"{'centred' if centred else 'raw'}\t{eps}\t{cost.mean():.3f}\t{cost.std():.3f}\t"
                  f"{loss.mean():.4f}\t{top:.3f}\t{entropy:.3f}", flush=True)


if __name__ == "__main__":
    main()
