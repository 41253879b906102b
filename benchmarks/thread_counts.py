"""Is a CPU training step the same at another thread count? One MT training step (the `--mt-size small` decoder:
2 layers, adaptive softmax 1000/4000, fp32, dropout off so nothing random is drawn) from the same weights on the
same batch, three times at each of ``--threads``; prints, for each count, whether its repeats agree bitwise, and
how many weight tensors differ from the first count's.

    python benchmarks/thread_counts.py [--threads 1,2] [--steps 3]

Why it matters: torch splits a step's sums across threads differently at each count, so the weights differ in the
last bits after one step, and over a whole training that becomes another model (the MT model of sw-en at one
thread and at two: `benchmarks/results/thread_counts.txt`). Everything bench seeds is reproduced at the same thread
count; the manifests record it (``execution.threads``, a student's ``training.threads``, the MT model's
``trained.threads``).
"""

from __future__ import annotations

import argparse
import copy

import torch

from bench.methods.translate.mt_model import Architecture, CopyTranslator, Vocabulary
from mt_step import _step

VOCAB = 14939


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    counts = [int(t) for t in args.threads.split(",")]
    torch.manual_seed(0)
    vocab = Vocabulary([1, 0, 2, 3, *range(4, VOCAB)], VOCAB + 10)
    arch = Architecture(encoder={"spec": "random", "fingerprint": "-"}, encoder_layer=8, source_dim=384, d_model=256,
                        layers=2, heads=4, ffn=1024, dropout=0.0, max_target_len=128, output_clusters=(1000, 4000))
    start = CopyTranslator(arch, vocab, torch.randn(VOCAB + 10, 384))
    rows, target_len, source_len = 100, 30, 40
    zipf = 1.0 / torch.arange(1, VOCAB - 3, dtype=torch.float64)

    def pieces(n: int) -> torch.Tensor:
        return 4 + torch.multinomial(zipf, rows * n, replacement=True).view(rows, n)

    batch = (torch.randn(rows, source_len, 384), pieces(source_len), torch.ones(rows, source_len, dtype=torch.long),
             pieces(target_len), pieces(target_len))
    weights: dict[int, list[dict]] = {}
    for count in counts:
        torch.set_num_threads(count)
        for _ in range(3):
            model = copy.deepcopy(start)
            optim = torch.optim.AdamW(model.parameters(), lr=1e-3)
            for _ in range(args.steps):
                _step(model, optim, batch, full_mixture=False, bf16=False)
            weights.setdefault(count, []).append({k: v.detach().clone() for k, v in model.state_dict().items()})
    first = weights[counts[0]][0]
    print(f"{args.steps} MT training steps (small decoder, fp32, dropout off) from the same weights on the same batch")
    for count in counts:
        repeats = all(torch.equal(w[k], weights[count][0][k]) for w in weights[count] for k in first)
        differing = sum(not torch.equal(weights[count][0][k], first[k]) for k in first)
        largest = max(float((weights[count][0][k] - first[k]).abs().max()) for k in first)
        print(f"  {count} thread(s): its 3 repeats bitwise equal: {repeats}; weight tensors differing from "
              f"{counts[0]} thread(s): {differing} of {len(first)} (largest difference {largest:.1e})")


if __name__ == "__main__":
    main()
