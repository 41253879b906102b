"""The frozen teacher's side of a training step: its token states and pooled vectors, computed once.

The teacher never trains, so its outputs for the English sentences a training visits are a function
of the teacher's weights, the prefix, the maximum length and the sentences alone. :func:`cached_states`
computes them once, in length-sorted inference batches, and stores them under
``BENCH_HOME/teacher-states/<fingerprint>`` (key: teacher fingerprint, prefix, maximum length, the
fingerprint of the *set* of sentences, a version), as the MT model does for its source states
(:mod:`bench.methods.translate.mt_data`). The student then trains against the cache: a step runs no teacher
forward pass.

Which sentences: those of the rows the training's batch plan visits (every unique English side once).
The default budget (300 steps of 32) visits 9,600 of sw-en's 35,568 pairs, so caching the whole
bitext would cost 3.7 times the teacher passes of the training it serves; the visited set costs at
most what an uncached training spends, less when sentences repeat (epochs, duplicates), and the two
recipes of a run (``optical``, ``sdistill``: same teacher, prefix and plan) share one cache.

Storage: float32 ``.npy`` files read as memory maps (``states.npy``: every token of every sentence,
special and prefix tokens included, one row a token, ``offsets.npy`` delimiting sentences;
``pooled.npy``: the mean over each sentence's tokens, the sentence term's teacher side). float32, not
float16, because the cache must give the loss the uncached teacher gives: float16 rounds each state
by ~5e-4 relative, which moves the loss and the trained weights past float tolerance. Only the
touched pages are read, so RAM holds a batch, not the cache (~45 MB per 1,000 sentences of 30 tokens).

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

from bench.infra import batching, devices
from bench.methods.distill.optical import Tokenized, tokenize
from bench.methods.distill.sentence import mean_pool
from bench.errors import BenchError
from bench.infra.store import cached_build, fingerprint

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when the way the teacher's states are computed or stored changes
KIND = "teacher-states"


@dataclass
class TeacherStates:
    """Teacher outputs of n sentences: tokens ``offsets[i]:offsets[i+1]`` of ``states``, ``pooled[i]``."""

    states: np.ndarray  # (T, d) float32, memory-mapped
    offsets: np.ndarray  # (n + 1,) int64
    pooled: np.ndarray  # (n, d) float32

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def batch(self, index: Sequence[int], width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Sentences ``index`` as a zero-padded (B, width, d) tensor, and their pooled vectors (B, d)."""
        out = np.zeros((len(index), width, self.states.shape[1]), dtype=np.float32)
        for j, i in enumerate(index):
            a, b = self.offsets[i], self.offsets[i + 1]
            out[j, :b - a] = self.states[a:b]
        return torch.from_numpy(out), torch.from_numpy(np.array(self.pooled[list(index)], dtype=np.float32))


def build_states(model, tokenizer, texts: Sequence[str], prefix: str, max_length: int, out: Path,
                 device=None) -> None:
    """Run the teacher over ``prefix + text`` (tokenized as the trainer does) and write the three arrays to ``out``."""
    from numpy.lib.format import open_memmap
    from tqdm import tqdm

    device = torch.device(device or "cpu")
    ids = tokenize(tokenizer, texts, prefix, max_length).ids
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(x) for x in ids])
    dim = model.config.hidden_size
    states = open_memmap(out / "states.npy", mode="w+", dtype=np.float32, shape=(int(offsets[-1]), dim))
    pooled = np.zeros((len(texts), dim), dtype=np.float32)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    budget, most = devices.batch_tokens(device), devices.max_batch(device)  # sized for the device (--batch-tokens)
    model.eval()
    torch.set_num_threads(batching.threads())
    log.info("computing the teacher's states of %d English sentences once (cached)", len(texts))
    with torch.inference_mode(), tqdm(total=len(texts), desc="teacher states", unit="sent", mininterval=5.0,
                                      disable=len(texts) < 256) as bar:
        for rows in batching.length_batches([len(x) for x in ids], budget, most):
            input_ids, mask = batching.pad_batch(ids, rows, pad)
            hidden = forward(model, input_ids.to(device), mask.to(device))
            pooled[rows] = mean_pool(hidden, mask.to(device)).cpu().numpy()
            hidden = hidden.cpu().numpy()
            for j, i in enumerate(rows):
                states[offsets[i]:offsets[i + 1]] = hidden[j, :len(ids[i])]
            bar.update(len(rows))
    states.flush()
    del states
    np.save(out / "offsets.npy", offsets)
    np.save(out / "pooled.npy", pooled)


def load_states(path: Path) -> TeacherStates:
    path = Path(path)
    return TeacherStates(np.load(path / "states.npy", mmap_mode="r"), np.load(path / "offsets.npy"),
                         np.load(path / "pooled.npy", mmap_mode="r"))


def states_key(teacher_fp: str, texts: Sequence[str], prefix: str, max_length: int) -> dict:
    """What determines the cache of ``texts`` (sorted and unique: their order and repeats do not matter)."""
    return {"artifact": "teacher-states", "version": CACHE_VERSION, "teacher": teacher_fp, "prefix": prefix,
            "max_length": max_length, "texts": fingerprint(sorted(set(texts)), 32), "n": len(set(texts))}


def cached_states(model, tokenizer, teacher_fp: str, texts: Sequence[str], prefix: str, max_length: int,
                  device=None) -> tuple[TeacherStates, list[str], Path]:
    """The teacher's states of the unique ``texts``, cached; with the sorted unique texts (row order) and the path."""
    unique = sorted(set(texts))
    key = states_key(teacher_fp, unique, prefix, max_length)
    path = cached_build(KIND, key, lambda tmp: build_states(model, tokenizer, unique, prefix, max_length, tmp, device))
    return load_states(path), unique, path


def forward(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The model's last hidden state in float32 (bf16 autocast where :func:`bench.infra.devices.bf16_autocast`)."""
    device = input_ids.device
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=devices.bf16_autocast(device)):
        hidden = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return hidden.float()


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
            where = {t: k for k, t in enumerate(unique)}
            self.index = np.full(len(english), -1, dtype=np.int64)
            self.index[rows] = [where[english[i]] for i in rows]
            lengths = self.cache.lengths()[self.index[rows]]
            if not np.array_equal(lengths, [len(side.ids[i]) for i in rows]):
                raise BenchError(f"the teacher-state cache {self.path} does not match the bitext's tokens",
                                 f"remove {self.path} and train again")
            self.model = None  # never needed again: the steps read the cache

    def __call__(self, rows: Sequence[int], batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states (B, L, d) and pooled vectors (B, d) of ``rows``, float32 on the device, no gradient.

        ``batch`` is the rows' teacher batch (:meth:`Tokenized.batch`) on the device.
        """
        if self.cache is None:
            with torch.no_grad():
                states = forward(self.model, batch["input_ids"], batch["attention_mask"])
                return states, mean_pool(states, batch["attention_mask"])
        index = self.index[list(rows)]
        if (index < 0).any():
            raise BenchError("a training step asked the teacher cache for a row it does not hold",
                             "this is a bug: train with teacher_cache=False and report it")
        states, pooled = self.cache.batch(index, batch["input_ids"].shape[1])
        return states.to(self.device), pooled.to(self.device)
