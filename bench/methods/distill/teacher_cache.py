"""The frozen teacher's side of a training step: its token states and pooled vectors, computed once.

The teacher never trains, so its outputs for the English sentences a training visits are a function
of the teacher's weights, the prefix, the maximum length and the sentences alone. :func:`cached_states`
computes them once, in length-sorted inference batches, and stores them under
``BENCH_HOME/teacher-states/<fingerprint>`` (key: teacher fingerprint, prefix, maximum length, the
fingerprint of the *set* of sentences, a version), as the MT model does for its source states
(:mod:`bench.methods.translate.mt_data`). The student then trains against the cache: a step runs no teacher
forward pass. The student's frozen lower layers are cached the same way
(:mod:`bench.methods.distill.prefix_cache`).

Which sentences: those of the rows the training's batch plan visits (every unique English side once).
The default budget (300 steps of 32) visits 9,600 of sw-en's 35,568 pairs, so caching the whole
bitext would cost 3.7 times the teacher passes of the training it serves; the visited set costs at
most what an uncached training spends, less when sentences repeat (epochs, duplicates), and the two
recipes of a run (``optical``, ``sdistill``: same teacher, prefix and plan) share one cache.

Storage: float32 :class:`bench.methods.token_states.TokenStates` read as memory maps (``states.npy``,
``offsets.npy``; why float32, what RAM holds: :mod:`bench.methods.distill.state_cache`), and
``pooled.npy``: the mean over each sentence's tokens, the sentence term's teacher side.

The cached states come from other batches than the step's (other widths and neighbours), so they
equal the uncached ones to float tolerance, not bit for bit; padding and masked tokens never reach
the loss (centring weights the teacher tokens by the mask; Sinkhorn and the cost ignore masked
entries), so zeros there change nothing.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from bench.infra.store import cached_build
from bench.methods.distill.optical import Tokenized, tokenize
from bench.methods.distill.sentence import mean_pool
from bench.methods.distill.state_cache import forward, padded, positions, row_index, sentences_key, write_states
from bench.methods.token_states import TokenStates

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when the way the teacher's states are computed or stored changes
KIND = "teacher-states"


@dataclass
class TeacherStates(TokenStates):
    """Teacher outputs of n sentences: tokens ``offsets[i]:offsets[i+1]`` of ``states``, ``pooled[i]``."""

    pooled: np.ndarray  # (n, d) float32

    def batch(self, index: Sequence[int], width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Sentences ``index`` as a zero-padded (B, width, d) tensor, and their pooled vectors (B, d)."""
        return padded(self, index, width), torch.from_numpy(np.array(self.pooled[list(index)], dtype=np.float32))


def build_states(model, tokenizer, texts: Sequence[str], prefix: str, max_length: int, out: Path,
                 device=None) -> None:
    """Run the teacher over ``prefix + text`` (tokenized as the trainer does) and write the three arrays to ``out``."""
    side = tokenize(tokenizer, texts, prefix, max_length)
    pooled = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)

    def pool(rows: list[int], hidden: torch.Tensor, mask: torch.Tensor) -> None:
        pooled[rows] = mean_pool(hidden, mask).cpu().numpy()

    model.eval()
    log.info("computing the teacher's states of %d English sentences once (cached)", len(texts))
    write_states(out, side.ids, side.pad_id, model.config.hidden_size, lambda ids, mask: forward(model, ids, mask),
                 device=device or "cpu", desc="teacher states", each=pool)
    np.save(out / "pooled.npy", pooled)


def load_states(path: Path) -> TeacherStates:
    tokens = TokenStates.read(path, mmap=True)
    return TeacherStates(tokens.states, tokens.offsets, np.load(Path(path) / "pooled.npy", mmap_mode="r"))


def states_key(teacher_fp: str, texts: Sequence[str], prefix: str, max_length: int) -> dict:
    """What determines the cache of ``texts`` (sorted and unique: their order and repeats do not matter)."""
    return {"artifact": "teacher-states", "version": CACHE_VERSION, "teacher": teacher_fp, "prefix": prefix,
            "max_length": max_length, **sentences_key(texts)}


def cached_states(model, tokenizer, teacher_fp: str, texts: Sequence[str], prefix: str, max_length: int,
                  device=None) -> tuple[TeacherStates, list[str], Path]:
    """The teacher's states of the unique ``texts``, cached; with the sorted unique texts (row order) and the path."""
    unique = sorted(set(texts))
    key = states_key(teacher_fp, unique, prefix, max_length)
    path = cached_build(KIND, key, lambda tmp: build_states(model, tokenizer, unique, prefix, max_length, tmp, device))
    return load_states(path), unique, path


class Teacher:
    """The teacher's outputs for batches of bitext rows, from the cache or from a forward pass.

    ``english[i]`` is row i's English side and ``side`` its tokens (the trainer's own, for the masks);
    ``rows`` are the rows the training will ask for (cached only when ``cached``). The teacher's model
    is used as it is on the CPU and copied to any other device, so the caller's model never moves.
    """

    def __init__(self, model, tokenizer, teacher_fp: str, english: Sequence[str], side: Tokenized,
                 rows: Iterable[int], *, prefix: str, max_length: int, device, cached: bool = True):
        self.device = torch.device(device)
        self.model = model if self.device.type == "cpu" else copy.deepcopy(model).to(self.device)
        self.model.eval()
        self.cache, self.index, self.path = None, None, None
        if cached:
            rows = sorted(set(rows))
            self.cache, unique, self.path = cached_states(self.model, tokenizer, teacher_fp,
                                                          [english[i] for i in rows], prefix, max_length, self.device)
            self.index = row_index(self.cache, unique, english, side, rows, self.path)
            self.model = None  # never needed again: the steps read the cache

    def __call__(self, rows: Sequence[int], batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states (B, L, d) and pooled vectors (B, d) of ``rows``, float32 on the device, no gradient.

        ``batch`` is the rows' teacher batch (:meth:`Tokenized.batch`) on the device.
        """
        if self.cache is None:
            with torch.no_grad():
                states = forward(self.model, batch["input_ids"], batch["attention_mask"])
                return states, mean_pool(states, batch["attention_mask"])
        index = positions(self.index, rows, "teacher cache")
        states, pooled = self.cache.batch(index, batch["input_ids"].shape[1])
        return states.to(self.device), pooled.to(self.device)
