"""Cost of the MT model's source states (`bench train mt`'s first stage): the encoder truncated to the decoder's
layer, as bench builds them (:func:`bench.methods.translate.mt_data.encode_states`), against the whole encoder
asked for that layer's hidden states, what bench did before (issue 23).

    BENCH_MIRROR=../shared/mirror HF_HUB_OFFLINE=1 python benchmarks/mt_states.py [--pair sw-en] [--sentences 400]
                                                                                  [--rounds 2]

The first ``--sentences`` foreign sentences of the pair's cleaned bitext, tokenised and cut into the same
length-sorted batches, in alternating rounds in one process at ``BENCH_THREADS`` threads; prints the seconds of
each round, the ratio of the sums (truncated over whole: lower is better) and whether the float16 states are
bitwise equal (they must be: the cached states keep their key).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench.data import models
from bench.data.bitext import load_bitext
from bench.data.pairs import get_pair
from bench.infra import batching, devices
from bench.methods.token_states import TokenStates
from bench.methods.translate import mt_data
from bench.methods.translate.mt_config import MtConfig


def whole_encoder_states(ref, layer: int, max_length: int, texts) -> TokenStates:
    """The states as bench built them before: every layer run, layer ``layer``'s hidden states kept."""
    model, tokenizer = models.load(ref)
    ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    out: list[np.ndarray | None] = [None] * len(texts)
    with torch.inference_mode():
        for rows in batching.length_batches([len(x) for x in ids], devices.batch_tokens(), 2 * devices.max_batch()):
            input_ids, mask = batching.pad_batch(ids, rows, tokenizer.pad_token_id or 0)
            hidden = model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True).hidden_states[layer]
            hidden = hidden.to(torch.float16).numpy()
            for j, i in enumerate(rows):
                out[i] = hidden[j, :len(ids[i])]
    return TokenStates.join(out, model.config.hidden_size, np.float16)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pair", default="sw-en")
    parser.add_argument("--sentences", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    config = MtConfig()
    texts = [foreign for foreign, _ in load_bitext(get_pair(args.pair)).pairs[:args.sentences]]
    ref = models.resolve(config.encoder)
    torch.set_num_threads(batching.threads())
    variants = {
        "whole encoder": lambda: whole_encoder_states(ref, config.encoder_layer, config.max_source_len, texts),
        "truncated (bench)": lambda: mt_data.encode_states(ref, config.encoder_layer, config.max_source_len, texts),
    }
    for build in variants.values():  # warm-up: the model loaded, the first batches' allocations made
        build()
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    states: dict[str, TokenStates] = {}
    for _ in range(args.rounds):
        for name, build in variants.items():
            start = time.perf_counter()
            states[name] = build()
            seconds[name].append(time.perf_counter() - start)
    whole, truncated = (states[name].states for name in variants)
    print(f"{len(texts)} sentences of {args.pair}'s bitext, {len(whole)} tokens, layer {config.encoder_layer}, "
          f"{batching.threads()} thread(s), {args.rounds} rounds")
    for name, times in seconds.items():
        print(f"  {name:18} {' '.join(f'{t:.1f}' for t in times)} s")
    ratio = sum(seconds["truncated (bench)"]) / sum(seconds["whole encoder"])
    equal = np.array_equal(whole, truncated)
    print(f"  truncated / whole: {ratio:.2f}x the time; float16 states bitwise equal: {equal}")


if __name__ == "__main__":
    main()
