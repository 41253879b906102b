"""Text analysis shared by the lexical side of bench: one tokenizer for every non-English language.

Unicode NFC, case folding, split on anything that is not a letter, mark or digit; no stemming, no
stop words. BM25 indexes non-English text with it (:mod:`bench.retrieve.bm25`), IBM Model 1 trains on
it (:mod:`bench.translate.ibm1`) and bitext cleaning counts lengths in its tokens
(:mod:`bench.bitext.clean`), so all three see the same words.
"""

from __future__ import annotations

import unicodedata

import regex

_TOKEN = regex.compile(r"[\p{L}\p{M}\p{N}]+")


def tokenize(text: str) -> list[str]:
    """The analysis of non-English text: NFC, case-folded, split on non-(letter|mark|digit)."""
    return _TOKEN.findall(unicodedata.normalize("NFC", text).casefold())
