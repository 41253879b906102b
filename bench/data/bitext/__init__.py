"""A pair's training bitext: its parallel corpora (or the pair file's TSV), cleaned and leak-free.

:func:`load_bitext` reads every corpus the pair names (:mod:`bench.data.bitext.sources`), or the
``bitext`` TSV of a user pair file (``foreign<TAB>english``, one pair a line), and cleans the union
(:func:`bench.data.bitext.clean.clean`): normalise, deduplicate, length and ratio filters, the leakage
guard against the pair's own evaluation queries, and optional seeded noise. Reading and cleaning
takes a few seconds, so the result is not cached on disk (a process keeps the last few it read, and cleans a
pair's files once for every noise rate and seed: the noise is the last step); its :attr:`Bitext.fingerprint`
(a hash of the cleaned content) keys the artifacts trained on it.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench.data.bitext.clean import CleanConfig, add_noise, clean
from bench.data.bitext.sources import CORPORA, Corpus, read_corpus, read_eval_corpus, training_corpus
from bench.errors import BenchError
from bench.infra.digests import cached_sha256
from bench.infra.text import text_lines

if TYPE_CHECKING:
    from bench.data.pairs import Pair

log = logging.getLogger(__name__)

__all__ = [
    "Bitext", "CORPORA", "CleanConfig", "Corpus", "check_bitext", "load_bitext", "bitext_from_pairs", "read_tsv",
    "read_corpus", "read_eval_corpus", "source_key", "training_corpus",
]


@dataclass(frozen=True)
class Bitext:
    """Cleaned parallel sentences of one pair, with where they came from and what cleaning removed."""

    pairs: list[tuple[str, str]]  # (foreign, english)
    counts: dict[str, int]  # pairs left after each cleaning step (see bench.data.bitext.clean.clean)
    sources: dict[str, int] = field(default_factory=dict)  # corpus (or file) -> pairs read from it
    fingerprint: str = ""  # sha256 prefix of the cleaned content

    def __len__(self) -> int:
        return len(self.pairs)

    def manifest(self) -> dict:
        """What a run manifest shows about the bitext."""
        return {"fingerprint": self.fingerprint, "counts": dict(self.counts), "sources": dict(self.sources)}


def content_fingerprint(pairs: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for f, e in pairs:
        digest.update(f.encode("utf-8") + b"\t" + e.encode("utf-8") + b"\n")
    return digest.hexdigest()[:16]


def read_tsv(path: Path) -> list[tuple[str, str]]:
    """A ``foreign<TAB>english`` file; blank lines are skipped, any other line needs exactly one tab.
    A UTF-8 byte-order mark is dropped; bytes that are not UTF-8 are an error naming the line."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"bitext file {path} does not exist",
                         "the pair file's bitext path is relative to the pair file")
    pairs = []
    for lineno, line in text_lines(path):
        fields = line.split("\t")
        if len(fields) != 2:
            raise BenchError(
                f"{path}:{lineno}: expected 2 tab-separated fields (foreign<TAB>english), found {len(fields)}",
                "one sentence pair a line, separated by a single tab",
            )
        pairs.append((fields[0], fields[1]))
    if not pairs:
        raise BenchError(f"bitext file {path} has no sentence pairs", "one foreign<TAB>english pair a line")
    return pairs


def bitext_from_pairs(
    raw: list[tuple[str, str]],
    *,
    sources: dict[str, int] | None = None,
    queries: list[str] = (),
    translations: list[str] = (),
    noise: float = 0.0,
    seed: int = 0,
    config: CleanConfig = CleanConfig(),
) -> Bitext:
    """Clean raw pairs into a :class:`Bitext`; the leakage guard drops pairs whose foreign side is one
    of ``queries`` or whose English side is one of ``translations``."""
    pairs, counts = clean(raw, queries=queries, translations=translations, config=config, noise=noise, seed=seed)
    return Bitext(pairs, counts, dict(sources or {}), content_fingerprint(pairs))


_KEPT = 4  # bitexts kept in a process (sw-en's: about 10 MB)
_kept: OrderedDict[tuple, Bitext] = OrderedDict()


def load_bitext(pair: "Pair", *, noise: float = 0.0, seed: int = 0, config: CleanConfig = CleanConfig()) -> Bitext:
    """The cleaned training bitext of ``pair``, with its evaluation queries guarded out: read once per process
    for a version of its files, noise, seed and cleaning (the systems of a run, a plan's estimate, share it).
    With noise, the bitext cleaned without it, misaligned (:func:`misaligned`): what :func:`clean` gives with
    that noise, as its last step, from one reading and cleaning however many rates and seeds ask."""
    noise = float(noise)
    seed = int(seed) if noise else 0  # without noise the bitext does not depend on the seed
    tsv = pair.files.get("bitext") if pair.files else None
    key = (pair.name, pair.dataset_id, tuple(pair.bitext), _stamp(tsv), noise, seed, config)
    if key in _kept:
        _kept.move_to_end(key)
        return _kept[key]
    bitext = misaligned(load_bitext(pair, config=config), noise, seed) if noise else _read_bitext(pair, config)
    _kept[key] = bitext
    while len(_kept) > _KEPT:
        _kept.popitem(last=False)
    return bitext


def misaligned(bitext: Bitext, noise: float, seed: int) -> Bitext:
    """``bitext`` with ``round(noise * n)`` of its pairs misaligned (:func:`bench.data.bitext.clean.add_noise`,
    seeded), its counts' ``noised`` step saying how many."""
    pairs, changed = add_noise(bitext.pairs, noise, seed)
    log.info("bitext: %d of %d pairs misaligned (noise %.2f, seed %d)", len(changed), len(pairs), noise, seed)
    return Bitext(pairs, {**bitext.counts, "noised": len(changed)}, dict(bitext.sources), content_fingerprint(pairs))


def _stamp(path: Path | None) -> tuple | None:
    """A file's version, as far as its path, size and time of change tell (None: no file)."""
    try:
        st = Path(path).stat() if path is not None else None
    except OSError:
        return None
    return None if st is None else (str(path), st.st_size, st.st_mtime_ns)


def _read_bitext(pair: "Pair", config: CleanConfig) -> Bitext:
    raw: list[tuple[str, str]] = []
    sources: dict[str, int] = {}
    tsv = pair.files.get("bitext") if pair.files else None
    if tsv is not None:
        rows = read_tsv(Path(tsv))
        sources[Path(tsv).name] = len(rows)
        raw.extend(rows)
    for name in pair.bitext:
        rows = read_corpus(name)  # refuses evaluation-only corpora
        sources[name] = len(rows)
        raw.extend(rows)
    if not sources:
        raise BenchError(
            f"pair {pair.name} has no bitext",
            "add `bitext: FILE.tsv` (foreign<TAB>english lines) to the pair file",
        )
    queries = pair.collection().queries
    log.info("bitext of %s: %s", pair.name, ", ".join(f"{k} {v}" for k, v in sources.items()))
    english = [q.translation for q in queries if q.translation]
    if pair.query_lang == "en":  # English queries: guard the English side against them
        foreign, english = [], english + [q.text for q in queries]
    else:
        foreign = [q.text for q in queries]
    bitext = bitext_from_pairs(
        raw, sources=sources, queries=foreign, translations=english, config=config,
    )
    if not bitext.pairs:
        steps = ", ".join(f"{k} {v}" for k, v in bitext.counts.items())
        raise BenchError(f"no bitext pair of {pair.name} is left after cleaning ({steps})",
                         "the bitext needs sentence pairs that pass the length filters and are not evaluation queries")
    return bitext


def source_key(pair: "Pair") -> dict:
    """What determines ``pair``'s cleaned bitext, without reading it: the sha256 of its files (the pair
    file's TSV, the declared corpora's) and the cleaning thresholds; with the pair's queries (the leakage
    guard), the noise and its seed, :func:`load_bitext` gives one content. A run's identity records it."""
    tsv = pair.files.get("bitext") if pair.files else None
    return {"tsv": cached_sha256(Path(tsv)) if tsv is not None else None,
            "corpora": {name: CORPORA.get(name).source_key() for name in pair.bitext},
            "clean": asdict(CleanConfig())}


def check_bitext(pair: "Pair", systems: list[str]) -> None:
    """Before any work: ``systems`` learn from ``pair``'s bitext, so it must exist and, when it is the
    pair file's TSV, hold pairs that survive cleaning (the declared corpora are verified files)."""
    tsv = pair.files.get("bitext") if pair.files else None
    if tsv is None and not pair.bitext:
        raise BenchError(f"{', '.join(systems)} learn from a bitext, and pair {pair.name} has none",
                         "add `bitext: FILE.tsv` (foreign<TAB>english lines) to the pair file, or drop those systems")
    if tsv is not None:
        load_bitext(pair)
