"""Token states of many texts stored as one array, the one container of them in bench.

Text ``i``'s tokens are rows ``offsets[i]:offsets[i + 1]`` of ``states`` (T × d), and ``offsets`` ((n + 1,)
int64) is the running sum of the texts' token counts, starting at 0. The dense retriever's token states
(:class:`bench.methods.retrieve.encoder.Encoded`, :class:`bench.methods.retrieve.encodings.DocStates`,
read by MaxSim), the MT model's frozen source states (:mod:`bench.methods.translate.mt_data`) and the
distillation teacher's cached states are all one: a :class:`TokenStates` (or a subclass adding what else
they carry), stored as ``states.npy`` and ``offsets.npy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

STATES_FILE = "states.npy"
OFFSETS_FILE = "offsets.npy"


@dataclass
class TokenStates:
    """The token states of n texts: rows ``offsets[i]:offsets[i + 1]`` of ``states`` are text ``i``'s."""

    states: np.ndarray  # (T, d)
    offsets: np.ndarray  # (n + 1,) int64

    @staticmethod
    def offsets_of(lengths: Sequence[int] | np.ndarray) -> np.ndarray:
        """The offsets of texts of ``lengths`` tokens: 0, then their running sum (int64)."""
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(lengths)
        return offsets

    @staticmethod
    def join(rows: Sequence[np.ndarray], dim: int, dtype=np.float16) -> TokenStates:
        """The states of texts given as one (tokens × ``dim``) array each, in one array (of ``dtype`` when
        there is no text)."""
        flat = np.concatenate(rows) if len(rows) else np.zeros((0, dim), dtype)
        return TokenStates(flat.reshape(-1, dim), TokenStates.offsets_of([len(r) for r in rows]))

    @staticmethod
    def read(directory: Path, mmap: bool = False) -> TokenStates:
        """The states :meth:`save` wrote to ``directory`` (memory-mapped if ``mmap``)."""
        directory = Path(directory)
        return TokenStates(np.load(directory / STATES_FILE, mmap_mode="r" if mmap else None),
                           np.load(directory / OFFSETS_FILE))

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        np.save(directory / STATES_FILE, self.states)
        np.save(directory / OFFSETS_FILE, self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        """The token count of each text."""
        return np.diff(self.offsets)

    def get(self, i: int) -> np.ndarray:
        """The states of text ``i``."""
        return self.states[self.offsets[i]:self.offsets[i + 1]]
