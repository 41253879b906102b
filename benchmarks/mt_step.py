"""Cost of one `bench train mt` step: the copy loss as trained against the naive full mixture, fp32 and bf16,
the copy loss with the training shortlist (`MtConfig.shortlist`), with an adaptive softmax
(`MtConfig.output_clusters`) and with a smaller decoder (`MtConfig.layers` / `MtConfig.ffn`), alone or with
an adaptive softmax.

    python benchmarks/mt_step.py [--vocab 14939] [--tokens 3000] [--repeats 5] [--shortlists 1000,2000,4000]
                                 [--clusters "2000;1000,4000"] [--decoders "2x1024;3x512"]

A randomly initialised model of the default shape (d 256, 3 layers, the sw-en vocabulary size) and
a random batch of about ``--tokens`` target tokens, drawn Zipf-like over the vocabulary (piece k with
probability ∝ 1/k, as words in text), so a shortlist of the N most frequent pieces plus the batch's labels
has the size it would have in training, and an adaptive softmax's clusters (ranked by piece id, the Zipf
rank) see the label mix they would. Each variant does forward + backward + AdamW step; the figure is
the median over ``--repeats`` steps after one warm-up, reported as a ratio to the trained variant on a
GPU (copy loss, bf16 autocast) and to the one a CPU trains (copy loss, fp32), measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch

from bench.infra.batching import threads
from bench.methods.translate.mt_model import Architecture, CopyTranslator, Vocabulary, token_loss
from bench.methods.translate.mt_train import batch_shortlist


def _step(model, optim, batch, *, full_mixture: bool, bf16: bool, shortlist: int = 0) -> float:
    """Seconds of one forward + backward + AdamW step of ``model`` (its own output layer) on ``batch``."""
    states, ids, mask, dec_in, labels = batch
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        enc = model.prepare(model.memory(states, ids), mask)
        if shortlist:
            pieces = batch_shortlist(torch.arange(shortlist), labels, len(model.vocab))
            nll, smooth = model.loss_terms(enc, ids, dec_in, labels, pieces)
        elif full_mixture:  # the whole extended distribution, then the label's log-probability
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
    parser.add_argument("--shortlists", default="1000,2000,4000", help="shortlist sizes (N most frequent pieces)")
    parser.add_argument("--clusters", default="2000;1000,4000",
                        help="adaptive softmax cutoffs, one variant per ';' (MtConfig.output_clusters)")
    parser.add_argument("--decoders", default="",
                        help="smaller decoders, LAYERSxFFN each, one variant per ';' (default decoder: 3x1024); "
                        "each is timed with the full softmax and with every --clusters layout")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(threads())
    vocab = Vocabulary([1, 0, 2, 3, *range(4, args.vocab)], args.vocab + 10)
    arch = Architecture(encoder={"spec": "random", "fingerprint": "-"}, encoder_layer=8, source_dim=384,
                        d_model=256, layers=3, heads=4, ffn=1024, dropout=0.1, max_target_len=128)
    source_embeddings = torch.randn(args.vocab + 10, 384)

    def build(clusters: tuple[int, ...] = (), layers: int = arch.layers, ffn: int = arch.ffn):
        model = CopyTranslator(replace(arch, output_clusters=clusters, layers=layers, ffn=ffn), vocab,
                               source_embeddings)
        return model, torch.optim.AdamW(model.parameters(), lr=1e-4)

    rows, target_len, source_len = args.tokens // 30, 30, 40
    zipf = 1.0 / torch.arange(1, args.vocab - 3, dtype=torch.float64)  # pieces 4.. by rank

    def pieces(n: int) -> torch.Tensor:
        return 4 + torch.multinomial(zipf, rows * n, replacement=True).view(rows, n)

    labels = pieces(target_len)
    batch = (torch.randn(rows, source_len, 384), pieces(source_len), torch.ones(rows, source_len, dtype=torch.long),
             pieces(target_len), labels)
    default = (arch.layers, arch.ffn)
    variants = {"copy loss, bf16 (trained)": (False, True, 0, (), default),
                "copy loss, fp32": (False, False, 0, (), default),
                "full mixture, bf16": (True, True, 0, (), default), "full mixture, fp32": (True, False, 0, (), default)}
    for n in (int(x) for x in args.shortlists.split(",") if x):
        variants[f"copy loss, fp32, shortlist {n}"] = (False, False, n, (), default)
    layouts = [tuple(int(c) for c in x.split(",")) for x in args.clusters.split(";") if x]
    for cuts in layouts:
        variants[f"copy loss, fp32, adaptive {'/'.join(map(str, cuts))}"] = (False, False, 0, cuts, default)
    for shape in (tuple(int(v) for v in x.lower().split("x")) for x in args.decoders.split(";") if x):
        for cuts in ((), *layouts):
            softmax = f", adaptive {'/'.join(map(str, cuts))}" if cuts else ""
            variants[f"copy loss, fp32, decoder {shape[0]}x{shape[1]}{softmax}"] = (False, False, 0, cuts, shape)
    times = {}
    for name, (full, bf16, shortlist, clusters, (layers, ffn)) in variants.items():
        model, optim = build(clusters, layers, ffn)
        _step(model, optim, batch, full_mixture=full, bf16=bf16, shortlist=shortlist)  # warm-up
        times[name] = statistics.median(_step(model, optim, batch, full_mixture=full, bf16=bf16, shortlist=shortlist)
                                        for _ in range(args.repeats))
    base, cpu = times["copy loss, bf16 (trained)"], times["copy loss, fp32"]
    print(f"{threads()} threads, {rows * target_len} target tokens (Zipf-like), vocabulary {args.vocab}; "
          f"{len(labels.unique())} distinct labels in the batch")
    width = max(map(len, times))
    print(f"{'':{width}s} {'vs bf16':>8s} {'vs fp32':>8s}")
    for name, seconds in times.items():
        print(f"{name:{width}s} {seconds / base:7.2f}x {seconds / cpu:7.2f}x")


if __name__ == "__main__":
    main()
