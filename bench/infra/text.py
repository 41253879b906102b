"""Reading and analysing text: the non-blank lines of a UTF-8 file, and one tokenizer for every
non-English language.

Unicode NFC, case folding, split on anything that is not a letter, mark or digit; no stemming, no
stop words. BM25 indexes non-English text with it (:mod:`bench.methods.retrieve.bm25`), IBM Model 1 trains on
it (:mod:`bench.methods.translate.ibm1`) and bitext cleaning counts lengths in its tokens
(:mod:`bench.data.bitext.clean`), so all three see the same words.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Iterator

import regex

from bench.errors import BenchError

_TOKEN = regex.compile(r"[\p{L}\p{M}\p{N}]+")


def tokenize(text: str) -> list[str]:
    """The analysis of non-English text: NFC, case-folded, split on non-(letter|mark|digit)."""
    return _TOKEN.findall(unicodedata.normalize("NFC", text).casefold())


def text_lines(path: Path, digest=None) -> Iterator[tuple[int, str]]:
    """(line number, line) of the non-blank lines of a UTF-8 file; a byte-order mark is dropped, and
    bytes that are not UTF-8 are an error naming the line. ``digest`` (a hashlib object) sees every byte read."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if digest is not None:
                digest.update(raw)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BenchError(f"{path}:{n}: not UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1})",
                                 "save the file as UTF-8") from None
            if n == 1:
                line = line.removeprefix("\ufeff")
            line = line.rstrip("\r\n")
            if line.strip():
                yield n, line
