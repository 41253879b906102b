"""What the caches of a training's frozen parts share: their forward pass, their writer, their rows.

The frozen parts of a training step (the teacher; the student's frozen lower layers) give a sentence's
tokens the same states in every step, so their caches (:mod:`bench.methods.distill.teacher_cache`,
:mod:`bench.methods.distill.prefix_cache`) compute them once, in length-sorted inference batches
(:func:`write_states`), into bench's one container of token states
(:class:`bench.methods.token_states.TokenStates`: ``states.npy``, every token of every sentence, special
and prefix tokens included, one row a token; ``offsets.npy``), read back as a memory map. float32, not
float16, because a cache must give the loss the uncached model gives: float16 rounds each state by
~5e-4 relative, which moves the loss and the trained weights past float tolerance. Only the touched
pages are read, so RAM holds a batch, not the cache (~45 MB per 1,000 sentences of 30 tokens at width 384).

A cache holds the sorted unique sentences (their order and repeats in the bitext do not matter:
:func:`sentences_key`); :func:`row_index` maps the bitext's rows onto them. The cached states come
from other batches than the step's (other widths and neighbours), so they equal the uncached ones to
float tolerance, not bit for bit; padding positions of a batch (:func:`padded`) are zeros.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from bench.errors import BenchError
from bench.infra import batching, devices
from bench.infra.store import fingerprint
from bench.methods.distill.optical import Tokenized
from bench.methods.token_states import OFFSETS_FILE, STATES_FILE, TokenStates

log = logging.getLogger(__name__)


def padded(cache: TokenStates, index: Sequence[int], width: int) -> torch.Tensor:
    """Sentences ``index`` of ``cache`` as a zero-padded (B, width, d) float32 tensor."""
    out = np.zeros((len(index), width, cache.states.shape[1]), dtype=np.float32)
    for j, i in enumerate(index):
        a, b = cache.offsets[i], cache.offsets[i + 1]
        out[j, :b - a] = cache.states[a:b]
    return torch.from_numpy(out)


def autocast(device: torch.device):
    """The context a model's forward pass runs in: bf16 autocast where :func:`bench.infra.devices.bf16_autocast`."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=devices.bf16_autocast(device))


def forward(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The model's last hidden state in float32 (bf16 autocast where :func:`bench.infra.devices.bf16_autocast`)."""
    with autocast(input_ids.device):
        hidden = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return hidden.float()


def write_states(out: Path, ids: Sequence[Sequence[int]], pad_id: int, dim: int,
                 run: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *, device, desc: str,
                 each: Callable[[list[int], torch.Tensor, torch.Tensor], None] | None = None) -> None:
    """Write the float32 :class:`TokenStates` of the sentences ``ids`` (token ids) to ``out``.

    ``run(input_ids, attention_mask)`` gives a padded batch's (B, L, dim) float32 states on ``device``,
    in batches sized for the device (``--batch-tokens``); ``each(rows, states, attention_mask)``, when
    given, sees every batch too (the teacher pools it).
    """
    from numpy.lib.format import open_memmap
    from bench.infra import progress

    device = torch.device(device)
    offsets = TokenStates.offsets_of([len(x) for x in ids])
    states = open_memmap(out / STATES_FILE, mode="w+", dtype=np.float32, shape=(int(offsets[-1]), dim))
    budget, most = devices.batch_tokens(device), devices.max_batch(device)
    torch.set_num_threads(batching.threads())
    with torch.inference_mode(), progress.bar(total=len(ids), desc=desc, unit="sent", mininterval=5.0,
                                      disable=len(ids) < 256) as bar:
        for rows in batching.length_batches([len(x) for x in ids], budget, most):
            input_ids, mask = batching.pad_batch(ids, rows, pad_id)
            mask = mask.to(device)
            hidden = run(input_ids.to(device), mask)
            if each is not None:
                each(rows, hidden, mask)
            hidden = hidden.cpu().numpy()
            for j, i in enumerate(rows):
                states[offsets[i]:offsets[i + 1]] = hidden[j, :len(ids[i])]
            bar.update(len(rows))
    states.flush()
    del states
    np.save(out / OFFSETS_FILE, offsets)


def sentences_key(texts: Sequence[str]) -> dict:
    """The part of a cache's key that names its sentences: the *set* (their order and repeats do not matter)."""
    unique = sorted(set(texts))
    return {"texts": fingerprint(unique, 32), "n": len(unique)}


def row_index(cache: TokenStates, unique: Sequence[str], texts: Sequence[str], side: Tokenized, rows: Iterable[int],
              path: Path) -> np.ndarray:
    """Where row i's sentence ``texts[i]`` is in ``cache`` (whose sentences are ``unique``); -1 outside ``rows``.

    The cached sentences must have the lengths of the trainer's own tokens (``side``), else the cache
    was made by other code: an error that names it.
    """
    rows = sorted(set(rows))
    where = {t: k for k, t in enumerate(unique)}
    index = np.full(len(texts), -1, dtype=np.int64)
    index[rows] = [where[texts[i]] for i in rows]
    if not np.array_equal(cache.lengths()[index[rows]], [len(side.ids[i]) for i in rows]):
        raise BenchError(f"the cache {path} does not match the bitext's tokens", f"remove {path} and train again")
    return index


def positions(index: np.ndarray, rows: Sequence[int], what: str) -> np.ndarray:
    """The cache positions of ``rows`` (:func:`row_index`); an error if the cache does not hold one of them."""
    found = index[list(rows)]
    if (found < 0).any():
        raise BenchError(f"a training step asked the {what} for a row it does not hold",
                         f"this is a bug: train without the {what} and report it")
    return found
