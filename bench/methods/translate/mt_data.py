"""Data for `bench train mt`: the frozen encoder's source states of the bitext.

The trained model (:mod:`bench.methods.translate.mt_model`) keeps the packaged multilingual encoder frozen, so
its token states for every foreign sentence of the bitext are computed once, stored as float16
(``states.npy``, one row per token, ``offsets.npy`` delimiting sentences) and cached under
``BENCH_HOME/mt-states/<fingerprint>`` (key: encoder fingerprint, layer, maximum length, bitext
fingerprint). Training then only runs the decoder. They are encoded by the encoder truncated to that layer
(:func:`truncated_encoder`, what the trained model translates with) on :func:`bench.infra.devices.resolve`'s
device, in fp32 on every device: they are stored as float16, whose mantissa bf16 would not fill.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from bench.data import models
from bench.infra import batching, devices
from bench.infra.rates import timed
from bench.infra.store import cached_build, fingerprint
from bench.methods.token_states import TokenStates

log = logging.getLogger(__name__)

STATES_VERSION = 1


def source_states(encoder_ref: models.ModelRef, layer: int, max_length: int, texts: Sequence[str],
                  texts_fp: str, batch_tokens: int | None = None) -> TokenStates:
    """The encoder's layer-``layer`` token states of ``texts`` (specials included, float16, memory-mapped),
    cached."""
    key = {"artifact": "mt-source-states", "version": STATES_VERSION, "encoder": encoder_ref.fingerprint,
           "layer": layer, "max_length": max_length, "texts": texts_fp, "n": len(texts)}

    def build(tmp: Path) -> None:
        encode_states(encoder_ref, layer, max_length, texts, batch_tokens).save(tmp)

    return TokenStates.read(cached_build("mt-states", key, timed("mt-states", len(texts), build)), mmap=True)


def encode_states(encoder_ref: models.ModelRef, layer: int, max_length: int, texts: Sequence[str],
                  batch_tokens: int | None = None) -> TokenStates:
    """Layer-``layer`` token states of ``texts`` from :func:`truncated_encoder`, the encoder the MT model translates
    with: the layers above ``layer`` are never run (a third of a 12-layer encoder's cost at layer 8)."""
    import torch
    from bench.infra import progress

    _, tokenizer = models.load(encoder_ref)
    device = devices.resolve()
    encoder = truncated_encoder(encoder_ref, layer).eval().to(device)
    batch_tokens = batch_tokens or devices.batch_tokens(device)
    torch.set_num_threads(batching.threads())
    ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    out: list[np.ndarray | None] = [None] * len(texts)
    pad = tokenizer.pad_token_id or 0
    log.info("encoding %d source sentences with %s (layer %d, frozen)", len(texts), encoder_ref.name, layer)
    with torch.inference_mode(), progress.bar(total=len(texts), desc="source states", unit="sent", mininterval=5.0,
                                      disable=len(texts) < 256) as bar:
        for rows in batching.length_batches([len(x) for x in ids], batch_tokens, 2 * devices.max_batch(device)):
            input_ids, mask = (t.to(device) for t in batching.pad_batch(ids, rows, pad))
            hidden = encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
            hidden = hidden.to(torch.float16).cpu().numpy()
            for j, i in enumerate(rows):
                out[i] = hidden[j, :len(ids[i])]
            bar.update(len(rows))
    return TokenStates.join(out, encoder.config.hidden_size, np.float16)


def truncated_encoder(encoder_ref: models.ModelRef, layer: int):
    """A frozen copy of the encoder keeping its first ``layer`` layers (what the decoder attends to). Copied, not
    built afresh: a new model's random initialisation would draw from torch's generator, which the MT training
    has seeded just before it builds the source states with this."""
    from bench.errors import BenchError

    model, _ = models.load(encoder_ref)
    if not hasattr(getattr(model, "encoder", None), "layer"):
        raise BenchError(f"the MT model's encoder {encoder_ref.name} has no BERT-like layer stack (encoder.layer)",
                         "give MtConfig.encoder a BERT-like model (multilingual-e5-small, XLM-R, mBERT)")
    enc = copy.deepcopy(model)
    enc.encoder.layer = enc.encoder.layer[:layer]
    enc.config.num_hidden_layers = len(enc.encoder.layer)
    for p in enc.parameters():
        p.requires_grad_(False)
    return enc


def bitext_split(n: int, dev_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded held-out slice of the bitext (indices): (train, dev)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    dev_size = min(dev_size, max(1, n // 10)) if n < 10 * dev_size else dev_size
    return np.sort(order[dev_size:]), np.sort(order[:dev_size])


def texts_fingerprint(texts: Sequence[str]) -> str:
    return fingerprint(list(texts), 32)


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False))
