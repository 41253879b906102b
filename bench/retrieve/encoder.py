"""An encoder: a resolved model with its own conventions, applied in length-sorted batches.

An :class:`Encoder` applies its model's conventions (E5: ``query: `` / ``passage: `` prefixes; mean
pooling over non-padding tokens; L2 normalisation) in length-sorted batches under
``torch.inference_mode`` with torch threads set to the cores. Its model is loaded only when something
has to be encoded, so a fully cached run never loads it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from bench import batching, models

log = logging.getLogger(__name__)

ENCODE_VERSION = 1  # bump when the way texts are encoded changes
BATCH_TOKENS = 8192  # padded tokens per forward pass (length-sorted batches)
MAX_BATCH = 64
_PLURAL = {"query": "queries", "doc": "documents"}


@dataclass
class Encoded:
    """Pooled vectors of n texts and, optionally, their kept token states (row i = tokens offsets[i]:offsets[i+1])."""

    vectors: np.ndarray  # (n, d) float32
    states: np.ndarray | None = None  # (T, d) float16, L2-normalised per token
    offsets: np.ndarray | None = None  # (n + 1,) int64


class Encoder:
    """A resolved model with its conventions; the model itself is loaded on first use."""

    def __init__(self, ref: models.ModelRef, max_length: int | None = None,
                 batch_tokens: int = BATCH_TOKENS, max_batch: int = MAX_BATCH):
        self.ref = ref
        self.conventions = ref.conventions
        self.max_length = int(max_length or ref.conventions.max_length)
        self.batch_tokens = batch_tokens
        self.max_batch = max_batch
        self._loaded = None

    @property
    def loaded(self):
        if self._loaded is None:
            self._loaded = models.load(self.ref)
        return self._loaded

    def prefix(self, side: str) -> str:
        return self.conventions.query_prefix if side == "query" else self.conventions.doc_prefix

    def key(self, side: str) -> dict:
        """Everything about this encoder that determines the vectors of one side."""
        c = self.conventions
        return {"model": self.ref.fingerprint, "max_length": self.max_length, "prefix": self.prefix(side),
                "pooling": c.pooling, "normalize": c.normalize, "version": ENCODE_VERSION}

    def encode(self, texts: Sequence[str], side: str, token_states: bool = False, desc: str | None = None) -> Encoded:
        """Encode ``texts`` as queries or documents (``side``); keep token states if asked.

        Token states drop special tokens and padding; on the query side also the prefix tokens.
        """
        import torch
        from tqdm import tqdm

        model, tokenizer = self.loaded
        torch.set_num_threads(batching.threads())
        prefix = self.prefix(side)
        drop_prefix = token_states and side == "query" and bool(prefix.strip())
        batch = tokenizer([prefix + t for t in texts], truncation=True, max_length=self.max_length,
                          return_attention_mask=False, return_token_type_ids=False,
                          return_special_tokens_mask=token_states, return_offsets_mapping=drop_prefix)
        ids = batch["input_ids"]
        keep = _kept_tokens(batch, len(prefix.rstrip()) if drop_prefix else 0) if token_states else None
        vectors = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
        states: list[np.ndarray | None] = [None] * len(texts)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        bar = tqdm(total=len(texts), desc=desc or f"encoding {_PLURAL[side]} ({self.ref.name})", unit=side,
                   disable=len(texts) < 256, mininterval=2.0)
        with torch.inference_mode(), bar:
            for rows in batching.length_batches([len(x) for x in ids], self.batch_tokens, self.max_batch):
                input_ids, mask = batching.pad_batch(ids, rows, pad_id)
                hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
                vectors[rows] = self._pool(hidden, mask).numpy()
                if token_states:
                    normed = torch.nn.functional.normalize(hidden, dim=-1).to(torch.float16).numpy()
                    for j, i in enumerate(rows):
                        states[i] = normed[j, :len(ids[i])][keep[i]]
                bar.update(len(rows))
        if not token_states:
            return Encoded(vectors)
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(s) for s in states])
        dim = vectors.shape[1]
        flat = np.concatenate(states) if states else np.zeros((0, dim), np.float16)
        return Encoded(vectors, flat.reshape(-1, dim), offsets)

    def _pool(self, hidden, mask):
        import torch

        if self.conventions.pooling == "cls":
            pooled = hidden[:, 0]
        else:  # mean over real tokens only: padding never counts
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
        return torch.nn.functional.normalize(pooled, dim=-1) if self.conventions.normalize else pooled


def _kept_tokens(batch, prefix_chars: int) -> list[np.ndarray]:
    """Per text, a boolean mask of the tokens whose states are kept (not special, not prefix)."""
    out = []
    for i, special in enumerate(batch["special_tokens_mask"]):
        keep = np.asarray(special, dtype=np.int8) == 0
        if prefix_chars:
            starts = np.array([s for s, _ in batch["offset_mapping"][i]])
            keep &= starts >= prefix_chars
        out.append(keep)
    return out


_ENCODERS: dict[tuple, Encoder] = {}


def encoder(spec: str, max_length: int | None = None) -> Encoder:
    """The encoder of a model spec (one per spec and length per process, so a model loads once)."""
    key = (spec, max_length)
    if key not in _ENCODERS:
        _ENCODERS[key] = Encoder(models.resolve(spec), max_length)
    return _ENCODERS[key]
