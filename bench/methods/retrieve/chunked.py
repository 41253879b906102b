"""Corpora larger than memory: byte budgets, chunk sizes, a running top-k merge, memory maps read once.

Exhaustive dense search (:mod:`bench.methods.retrieve.dense`) and MaxSim (:mod:`bench.methods.retrieve.maxsim`) read
their document side in chunks and keep only a running best per query, so what they hold is
O(queries x k + one chunk) whatever the corpus size. The document side may be a read-only memory
map; the pages of a chunk already scored are handed back (``madvise``), so they never pile up in
the process's resident set either.
"""

from __future__ import annotations

import logging
import mmap
import os

import numpy as np

log = logging.getLogger(__name__)

_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
DEFAULT_FRACTION = 4  # the default memory budget: a quarter of physical memory
FALLBACK_BUDGET = 4 << 30  # where the system does not say how much memory it has


def format_bytes(n: float) -> str:
    """``n`` bytes for a log line: ``1.5 GiB``, ``512.0 MiB``."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        scale = _UNITS[unit[0]]
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def default_budget() -> int:
    """The memory budget when none is given: a quarter of physical memory (4 GiB if unknown)."""
    total = physical_memory()
    return total // DEFAULT_FRACTION if total else FALLBACK_BUDGET


def rows_per_chunk(row_bytes: int, chunk_bytes: int, n_rows: int) -> int:
    """How many rows of ``row_bytes`` each fit in ``chunk_bytes`` (at least one, at most all)."""
    return max(1, min(n_rows, chunk_bytes // max(1, row_bytes)))


def top_rows(values, k: int, index=None):
    """The ``k`` largest values of each row of a 2-d tensor and their indices (``index[row, col]``, or
    the column itself), sorted by (-value, index); ties at the k-th value go to the lower index.

    Chunked search merges its running best with each chunk's best through this, so the result does
    not depend on how the corpus was chunked (torch.topk alone leaves the choice among ties open).
    """
    import torch

    k = min(k, values.shape[1])
    top, pos = torch.topk(values, k, dim=1, sorted=False)
    ids = pos if index is None else torch.gather(index, 1, pos)
    if 0 < k < values.shape[1]:
        kth = top.min(dim=1, keepdim=True).values
        for r in ((values >= kth).sum(1) > k).nonzero().flatten().tolist():  # more tied than places
            cols = (values[r] >= kth[r]).nonzero().flatten()
            col_ids = cols if index is None else index[r, cols]
            order = sorted(range(len(cols)), key=lambda i: (-float(values[r, cols[i]]), int(col_ids[i])))[:k]
            top[r], ids[r] = values[r, cols[order]], col_ids[order]
    ids, order = torch.sort(ids, dim=1, stable=True)
    top = torch.gather(top, 1, order)
    top, order = torch.sort(top, dim=1, descending=True, stable=True)
    return top, torch.gather(ids, 1, order)


def release_pages(array: np.ndarray, stop_row: int) -> None:
    """Hand back the resident pages of rows ``[0, stop_row)`` of a whole-file read-only memory map
    (``np.load(..., mmap_mode="r")``); a later read faults them in again from the page cache. Any
    other array is left alone."""
    mapped = getattr(array, "_mmap", None)
    if (not isinstance(array, np.memmap) or array.base is not mapped or mapped is None
            or not array.flags.c_contiguous or not hasattr(mmap, "MADV_DONTNEED") or array.ndim == 0):
        return
    row_bytes = array.itemsize * int(np.prod(array.shape[1:], dtype=np.int64))
    end = array.offset % mmap.ALLOCATIONGRANULARITY + stop_row * row_bytes
    end -= end % mmap.PAGESIZE
    if end > 0:
        try:
            mapped.madvise(mmap.MADV_DONTNEED, 0, end)
        except (OSError, ValueError) as exc:  # an advice, never an error
            log.debug("madvise failed: %s", exc)
