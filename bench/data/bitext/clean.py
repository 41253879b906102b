"""Cleaning a bitext: normalise, deduplicate, filter, guard against leakage, inject noise.

Every step is a plain function over a list of ``(foreign, english)`` pairs. :func:`clean` chains them
in this order and returns the number of pairs left after each step, so a report can show where pairs
went (the counts are logged too).

Lengths are counted in tokens of :func:`bench.infra.text.tokenize` (letters, marks, digits), the
same tokens IBM Model 1 is trained on, so a pair of punctuation only is "empty".
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import regex

from bench.errors import BenchError
from bench.infra.text import tokenize

log = logging.getLogger(__name__)

Pair = tuple[str, str]  # (foreign, english)
_SPACE = regex.compile(r"[\s\p{Zs}\p{Cc}\p{Cf}]+")  # any whitespace, control or format character


@dataclass(frozen=True)
class CleanConfig:
    """The filters' thresholds (part of every bitext fingerprint)."""

    min_tokens: int = 1
    max_tokens: int = 100  # per side; longer pairs are mostly paragraph misalignments and slow IBM1
    max_ratio: float = 3.0  # max(tokens) / min(tokens); LAFAND's misaligned lines are far beyond it


def normalise(text: str) -> str:
    """NFC, every run of whitespace/control/format characters (tabs, NBSP, ZWSP...) → one space, stripped."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def match_key(text: str) -> str:
    """The form under which two texts count as the same: case- and punctuation-insensitive tokens."""
    return " ".join(tokenize(text))


def normalise_pairs(pairs: Iterable[Pair]) -> list[Pair]:
    return [(normalise(f), normalise(e)) for f, e in pairs]


def deduplicate(pairs: Sequence[Pair]) -> list[Pair]:
    """Keep the first of pairs whose two sides have the same :func:`match_key`."""
    seen: set[tuple[str, str]] = set()
    out = []
    for f, e in pairs:
        key = (match_key(f), match_key(e))
        if key not in seen:
            seen.add(key)
            out.append((f, e))
    return out


def _lengths(pair: Pair) -> tuple[int, int]:
    return len(tokenize(pair[0])), len(tokenize(pair[1]))


def length_filter(pairs: Sequence[Pair], config: CleanConfig) -> list[Pair]:
    """Drop pairs with a side shorter than ``min_tokens`` (e.g. empty) or longer than ``max_tokens``."""
    return [p for p in pairs if all(config.min_tokens <= n <= config.max_tokens for n in _lengths(p))]


def ratio_filter(pairs: Sequence[Pair], config: CleanConfig) -> list[Pair]:
    """Drop pairs whose token counts differ by more than ``max_ratio`` (likely misaligned)."""
    out = []
    for p in pairs:
        nf, ne = _lengths(p)
        if max(nf, ne) <= config.max_ratio * max(1, min(nf, ne)):
            out.append(p)
    return out


def leakage_guard(pairs: Sequence[Pair], queries: Iterable[str], translations: Iterable[str]) -> list[Pair]:
    """Drop pairs whose foreign side is an evaluation query, or whose English side is the human
    translation of one, compared by :func:`match_key` (case, punctuation and spacing ignored)."""
    foreign_keys = {k for k in map(match_key, queries) if k}
    english_keys = {k for k in map(match_key, translations) if k}
    return [(f, e) for f, e in pairs if match_key(f) not in foreign_keys and match_key(e) not in english_keys]


def add_noise(pairs: Sequence[Pair], rate: float, seed: int) -> tuple[list[Pair], np.ndarray]:
    """Replace ``round(rate * n)`` pairs, chosen at random, by misaligned ones (seeded).

    The chosen pairs' English sides are permuted by a random cyclic derangement (every chosen foreign
    side gets the English side of another chosen pair), so exactly the chosen pairs are misaligned and
    the English vocabulary is unchanged. Returns the new list and the sorted indices that were changed.
    """
    if not 0.0 <= rate <= 1.0:
        raise BenchError(f"bitext noise rate {rate} is not between 0 and 1", "e.g. --bitext-noise 0.2")
    n = len(pairs)
    k = int(round(rate * n))
    out = list(pairs)
    if k == 0:
        return out, np.array([], dtype=np.int64)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(n, size=k, replace=False)
    if k == 1:  # no derangement of one: borrow the English side of another pair
        other = int(rng.choice(np.setdiff1d(np.arange(n), chosen))) if n > 1 else None
        if other is None:
            raise BenchError("cannot misalign a bitext of one pair", "use more pairs or --bitext-noise 0")
        out[int(chosen[0])] = (pairs[int(chosen[0])][0], pairs[other][1])
    else:
        order = rng.permutation(chosen)
        for i, j in zip(order, np.roll(order, -1)):
            out[int(i)] = (pairs[int(i)][0], pairs[int(j)][1])
    return out, np.sort(chosen)


def clean(
    pairs: Iterable[Pair],
    *,
    queries: Iterable[str] = (),
    translations: Iterable[str] = (),
    config: CleanConfig = CleanConfig(),
    noise: float = 0.0,
    seed: int = 0,
) -> tuple[list[Pair], dict[str, int]]:
    """Run every step; return the pairs and ``{step: pairs left}`` (``noised``: pairs misaligned)."""
    counts: dict[str, int] = {}
    out = normalise_pairs(pairs)
    counts["read"] = len(out)
    out = deduplicate(out)
    counts["deduplicated"] = len(out)
    out = length_filter(out, config)
    counts["length_filtered"] = len(out)
    out = ratio_filter(out, config)
    counts["ratio_filtered"] = len(out)
    out = leakage_guard(out, queries, translations)
    counts["leakage_guarded"] = len(out)
    out, changed = add_noise(out, noise, seed)
    counts["noised"] = len(changed)
    log.info(
        "bitext: %d read, %d after dedup, %d after length filter, %d after ratio filter, "
        "%d after leakage guard, %d misaligned (noise %.2f)",
        counts["read"], counts["deduplicated"], counts["length_filtered"], counts["ratio_filtered"],
        counts["leakage_guarded"], counts["noised"], noise,
    )
    return out, counts
