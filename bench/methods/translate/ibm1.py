"""IBM Model 1 word translation probabilities, trained by EM on a tokenised bitext.

We learn ``t(target | source)`` where *source* is the query language (the side a query term is
translated from) and *target* the documents' language: for sw-en that is p(english | swahili), the
direction probabilistic structured queries need. Each target word of a sentence pair is generated
by one source word of the pair or by NULL (a NULL token is added to every source sentence), so
target function words with no counterpart are absorbed by ``t(· | NULL)`` rather than by content
words.

EM is vectorised over every (sentence, source position, target position) link at once: links are
mapped to their distinct (source word, target word) cell, the E-step normalises each target
position's link weights, and the M-step sums link posteriors per cell (``numpy.bincount``) and
normalises per source word. A few iterations over ~35k sentence pairs take seconds.

The table is stored as a CSR matrix (source × target) with its two vocabularies, under
``BENCH_HOME/translation-tables/<fingerprint>`` (key: bitext fingerprint + training parameters).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import regex
import scipy.sparse as sp

from bench.infra.rates import timed
from bench.infra.store import cached_build, fingerprint
from bench.infra.text import tokenize

log = logging.getLogger(__name__)

NULL = "<null>"
TABLE_VERSION = 1  # bump when training or the file format changes
_POSSESSIVE = regex.compile(r"[’']s\b")


def english_tokens(text: str) -> list[str]:
    """English words as the table holds them: :func:`tokenize` after dropping possessive 's
    (Lucene's English analyzer drops it too; otherwise a stray "s" token appears)."""
    return tokenize(_POSSESSIVE.sub("", text))


def tokenizer_for(lang: str) -> Callable[[str], list[str]]:
    return english_tokens if lang == "en" else tokenize


@dataclass
class TranslationTable:
    """``matrix[i, j] = t(target_vocab[j] | source_vocab[i])``; rows of tiny probabilities pruned."""

    source_vocab: list[str]
    target_vocab: list[str]
    matrix: sp.csr_matrix

    @cached_property
    def source_index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.source_vocab)}

    @cached_property
    def target_index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.target_vocab)}

    def __contains__(self, word: str) -> bool:
        return word in self.source_index and word != NULL

    def prob(self, source: str, target: str) -> float:
        i, j = self.source_index.get(source), self.target_index.get(target)
        return 0.0 if i is None or j is None else float(self.matrix[i, j])

    def translations(self, source: str) -> list[tuple[str, float]]:
        """The translations of ``source``, most probable first (empty when it is unknown)."""
        i = self.source_index.get(source)
        if i is None:
            return []
        start, end = self.matrix.indptr[i], self.matrix.indptr[i + 1]
        cols, probs = self.matrix.indices[start:end], self.matrix.data[start:end]
        order = np.lexsort((cols, -probs))  # by probability, ties by vocabulary order (stable)
        return [(self.target_vocab[cols[k]], float(probs[k])) for k in order]

    def save(self, directory: Path) -> None:
        sp.save_npz(directory / "table.npz", self.matrix.tocsr(), compressed=True)
        vocab = {"source": self.source_vocab, "target": self.target_vocab}
        (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> "TranslationTable":
        vocab = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
        return cls(vocab["source"], vocab["target"], sp.load_npz(directory / "table.npz").tocsr())


def _vocabulary(sentences: Sequence[Sequence[str]], first: tuple[str, ...] = ()) -> dict[str, int]:
    vocab = {w: i for i, w in enumerate(first)}
    for sentence in sentences:
        for w in sentence:
            if w not in vocab:
                vocab[w] = len(vocab)
    return vocab


def train_ibm1(
    source: Sequence[Sequence[str]],
    target: Sequence[Sequence[str]],
    *,
    iterations: int = 5,
    min_prob: float = 1e-3,
) -> TranslationTable:
    """Train ``t(target word | source word)`` on tokenised sentence pairs (EM from uniform).

    Pairs with an empty side are skipped. Probabilities below ``min_prob`` are pruned from the
    returned table (the rows are not renormalised: what is left is the model's own mass).
    """
    from bench.infra import progress

    kept = [(s, t) for s, t in zip(source, target, strict=True) if s and t]
    src_vocab = _vocabulary([s for s, _ in kept], first=(NULL,))
    tgt_vocab = _vocabulary([t for _, t in kept])
    n_tgt = len(tgt_vocab)

    # one link per (sentence, source position incl. NULL, target position)
    link_cells, link_targets = [], []
    occurrence = 0  # global index of the current target position
    for s, t in progress.bar(kept, desc="IBM Model 1: alignment links", unit="pair", mininterval=2.0, leave=False,
                     disable=len(kept) < 5000):
        s_ids = np.array([0] + [src_vocab[w] for w in s], dtype=np.int64)
        t_ids = np.array([tgt_vocab[w] for w in t], dtype=np.int64)
        link_cells.append((s_ids[None, :] * n_tgt + t_ids[:, None]).ravel())  # target-major
        link_targets.append(np.repeat(np.arange(occurrence, occurrence + len(t_ids)), len(s_ids)))
        occurrence += len(t_ids)
    cell_keys, link_cell = np.unique(np.concatenate(link_cells), return_inverse=True)
    link_cell = link_cell.astype(np.int64)
    link_target = np.concatenate(link_targets)
    del link_cells, link_targets
    cell_source = cell_keys // n_tgt
    cell_target = cell_keys % n_tgt
    log.info(
        "IBM1: %d sentence pairs, %d source and %d target words, %d links, %d cells",
        len(kept), len(src_vocab), n_tgt, len(link_cell), len(cell_keys),
    )

    started = time.perf_counter()
    # uniform start: t(e|f) = 1 / |target vocabulary| for every cell
    t = np.full(len(cell_keys), 1.0 / n_tgt)
    bar = progress.bar(range(1, iterations + 1), desc="IBM Model 1: EM", unit="iteration", mininterval=0.5)
    for iteration in bar:
        weights = t[link_cell]
        totals = np.bincount(link_target, weights=weights, minlength=occurrence)  # sum over source positions
        posterior = weights / totals[link_target]
        counts = np.bincount(link_cell, weights=posterior, minlength=len(cell_keys))
        norm = np.bincount(cell_source, weights=counts, minlength=len(src_vocab))
        t = counts / norm[cell_source]
        loglik = float(np.mean(np.log(totals)))
        bar.set_postfix(loglik=f"{loglik:.4f}")
        log.info("IBM1 iteration %d/%d: mean log-likelihood per target word %.4f (%.1fs)",
                 iteration, iterations, loglik, time.perf_counter() - started)
    keep = t >= min_prob
    matrix = sp.csr_matrix(
        (t[keep].astype(np.float32), (cell_source[keep], cell_target[keep])), shape=(len(src_vocab), n_tgt)
    )
    return TranslationTable(list(src_vocab), list(tgt_vocab), matrix)


def train_on_bitext(
    pairs: Sequence[tuple[str, str]],
    *,
    source_lang: str,
    iterations: int = 5,
    min_prob: float = 1e-3,
) -> TranslationTable:
    """Train on ``(foreign, english)`` pairs; ``source_lang="en"`` translates English into foreign."""
    foreign = [tokenize(f) for f, _ in pairs]
    english = [english_tokens(e) for _, e in pairs]
    if source_lang == "en":
        return train_ibm1(english, foreign, iterations=iterations, min_prob=min_prob)
    return train_ibm1(foreign, english, iterations=iterations, min_prob=min_prob)


def translation_table(
    bitext,
    *,
    source_lang: str,
    iterations: int = 5,
    min_prob: float = 1e-3,
) -> tuple[TranslationTable, str]:
    """The IBM1 table of a :class:`~bench.data.bitext.Bitext` (cached by fingerprint) and its fingerprint."""
    key = {
        "artifact": "ibm1-table",
        "version": TABLE_VERSION,
        "bitext": bitext.fingerprint,
        "source": "en" if source_lang == "en" else "foreign",
        "iterations": iterations,
        "min_prob": min_prob,
    }

    def build(tmp: Path) -> None:
        started = time.perf_counter()
        table = train_on_bitext(bitext.pairs, source_lang=source_lang, iterations=iterations, min_prob=min_prob)
        table.save(tmp)
        log.info("IBM1 table trained in %.1fs (%d entries)", time.perf_counter() - started, table.matrix.nnz)

    path = cached_build("translation-tables", key, timed("ibm1-table", len(bitext.pairs), build))
    return TranslationTable.load(path), fingerprint(key)
