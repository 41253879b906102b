"""Batching mechanics shared by every model that runs here: thread count, length-sorted batches, padding.

Texts are encoded, translated and trained on in batches of similar length (:func:`length_batches`),
each right-padded to its longest member (:func:`pad_batch`), with torch set to the cores this process
may use (:func:`threads`). Nothing here knows what the tokens mean.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Sequence

from bench.infra import environment

if TYPE_CHECKING:  # torch is imported where it is needed: listing systems should not load it
    import torch


def threads() -> int:
    """CPU cores this process may use (``BENCH_THREADS`` overrides)."""
    return environment.number("BENCH_THREADS", len(os.sched_getaffinity(0)))


def pad_batch(ids: Sequence[Sequence[int]], rows: Sequence[int], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The token ids of ``rows`` right-padded to the longest, and their attention mask."""
    import torch

    width = max(len(ids[i]) for i in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for j, i in enumerate(rows):
        input_ids[j, :len(ids[i])] = torch.tensor(ids[i])
        mask[j, :len(ids[i])] = 1
    return input_ids, mask


def length_batches(lengths: Sequence[int], batch_tokens: int, max_batch: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first, within a padded-token budget."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches, current = [], []
    for i in order:
        width = lengths[current[0]] if current else lengths[i]  # longest of the batch comes first
        if current and (len(current) + 1 > max_batch or (len(current) + 1) * width > batch_tokens):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
