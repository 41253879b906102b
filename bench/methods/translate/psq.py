"""Probabilistic structured queries (PSQ): a query as weighted translations of its words.

Each query token ``f`` becomes its most probable translations ``e`` under the table, weighted by
``t(e | f)``: at most ``top_k`` of them, each at least ``min_prob``, stopping once their cumulative
probability reaches ``cumulative``. English stop words (Lucene's English stop set, which the index
drops anyway) are removed from the candidates before choosing, so they do not take a place in the
top k. A token the table does not know (names, numbers, typos) stays as it is with weight 1; a known
token none of whose translations survive (a function word: its translations are stop words) adds
nothing. ``keep_original`` adds the token itself with that weight as well, for the names, numbers and
cognates that the table knows but translates poorly.

The weights are *not* renormalised by default: a function word keeps the small mass its content
translations have (``nani`` → who 0.9, but ``ya`` → "from" 0.03), which is what the table says about
how much the token matters. Renormalising each token to 1 gives every function word the weight of a
content word and cost 0.04–0.09 MAP on both tuning pairs.

The weights of all tokens are summed into one ``{term: weight}`` bag, searched as one weighted
Lucene query by :func:`bench.methods.retrieve.bm25.search_weighted` (which also stems English terms and merges
the weights of terms that stem alike). The defaults were chosen on the tuning pairs ha-en-dev and
yo-en-train only (benchmarks/psq_eval.py); sw-en test was never used to choose them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bench.methods.translate.ibm1 import TranslationTable, tokenizer_for

# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET (what Anserini's English index drops)
ENGLISH_STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there "
    "these they this to was will with".split()
)


@dataclass(frozen=True)
class PsqConfig:
    top_k: int = 5
    min_prob: float = 0.01
    cumulative: float = 0.9
    renormalise: bool = False
    keep_original: float = 0.5
    drop_stopwords: bool = True

    def spec(self) -> dict:
        return asdict(self)


def translate_token(token: str, table: TranslationTable, config: PsqConfig,
                    target_lang: str = "en") -> dict[str, float]:
    """The weighted translations of one source token: itself with weight 1 when the table does not
    know it; nothing (but ``keep_original``) when it only translates into stop words or improbable
    words, as function words do."""
    if token not in table:
        return {token: 1.0}
    candidates = table.translations(token)
    if config.drop_stopwords and target_lang == "en":
        candidates = [(e, p) for e, p in candidates if e not in ENGLISH_STOP_WORDS]
    kept: dict[str, float] = {}
    mass = 0.0
    for term, prob in candidates[: config.top_k]:
        if prob < config.min_prob:
            break
        kept[term] = prob
        mass += prob
        if mass >= config.cumulative:
            break
    if config.renormalise and mass > 0:
        kept = {term: prob / mass for term, prob in kept.items()}
    if config.keep_original > 0:
        kept[token] = kept.get(token, 0.0) + config.keep_original
    return kept


def psq_query(
    text: str,
    table: TranslationTable,
    config: PsqConfig = PsqConfig(),
    *,
    source_lang: str = "xx",
    target_lang: str = "en",
) -> dict[str, float]:
    """``{target term: weight}`` for a query text (weights of repeated terms add up)."""
    weights: dict[str, float] = {}
    for token in tokenizer_for(source_lang)(text):
        for term, weight in translate_token(token, table, config, target_lang).items():
            weights[term] = weights.get(term, 0.0) + weight
    return weights
