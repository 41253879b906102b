"""Cost of one `bench train mt` step: the copy loss as trained against the naive full mixture, fp32 and bf16.

    python benchmarks/mt_step.py [--vocab 14939] [--tokens 3000] [--repeats 5]

A randomly initialised model of the default shape (d 256, 3 layers, the sw-en vocabulary size) and
a random batch of about ``--tokens`` target tokens. Each variant does forward + backward + AdamW step;
the figure is the median over ``--repeats`` steps after one warm-up, reported as a ratio to the
trained variant (copy loss on p(label) only, bf16 autocast) measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench.infra.batching import threads
from bench.methods.translate.mt_model import Architecture, CopyTranslator, Vocabulary, token_loss


def _step(model, optim, batch, *, full_mixture: bool, bf16: bool) -> float:
    states, ids, mask, dec_in, labels = batch
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        enc = model.prepare(model.memory(states, ids), mask)
        if full_mixture:  # the whole extended distribution, then the label's log-probability
            log_probs = model(enc, ids, 0, dec_in).float()
            nll = -log_probs.gather(-1, labels[..., None])[..., 0]
            smooth = -log_probs.mean(-1)
        else:
            nll, smooth = model.loss_terms(enc, ids, dec_in, labels)
    loss = token_loss(nll.float(), smooth.float(), labels, 0.1)
    optim.zero_grad(set_to_none=True)
    loss.backward()
    optim.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vocab", type=int, default=14939)
    parser.add_argument("--tokens", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(threads())
    vocab = Vocabulary([1, 0, 2, 3, *range(4, args.vocab)], args.vocab + 10)
    arch = Architecture(encoder={"spec": "random", "fingerprint": "-"}, encoder_layer=8, source_dim=384,
                        d_model=256, layers=3, heads=4, ffn=1024, dropout=0.1, max_target_len=128)
    model = CopyTranslator(arch, vocab, torch.randn(args.vocab + 10, 384))
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4)
    rows, target_len, source_len = args.tokens // 30, 30, 40
    batch = (torch.randn(rows, source_len, 384), torch.randint(4, args.vocab, (rows, source_len)),
             torch.ones(rows, source_len, dtype=torch.long), torch.randint(4, args.vocab, (rows, target_len)),
             torch.randint(4, args.vocab, (rows, target_len)))
    variants = {"copy loss, bf16 (trained)": (False, True), "copy loss, fp32": (False, False),
                "full mixture, bf16": (True, True), "full mixture, fp32": (True, False)}
    times = {}
    for name, (full, bf16) in variants.items():
        _step(model, optim, batch, full_mixture=full, bf16=bf16)  # warm-up
        times[name] = statistics.median(_step(model, optim, batch, full_mixture=full, bf16=bf16)
                                        for _ in range(args.repeats))
    base = times["copy loss, bf16 (trained)"]
    print(f"{threads()} threads, {rows * target_len} target tokens, vocabulary {args.vocab}")
    for name, seconds in times.items():
        print(f"{name:28s} {seconds / base:5.2f}x")


if __name__ == "__main__":
    main()
