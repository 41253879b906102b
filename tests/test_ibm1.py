"""IBM Model 1: EM recovers known word translations on a small hand-made bitext; table caching."""

from __future__ import annotations

import numpy as np
import pytest

from bench.data.bitext import bitext_from_pairs
from bench.methods.translate.ibm1 import (NULL, TranslationTable, english_tokens, train_ibm1, train_on_bitext,
                                         translation_table)

BITEXT = [  # articles have no Swahili counterpart and are spread over the nouns and adjectives
    ("nyumba kubwa", "the big house"),
    ("nyumba ndogo", "a small house"),
    ("mbwa kubwa", "a big dog"),
    ("mbwa ndogo", "the small dog"),
    ("nyumba", "a house"),
    ("paka ndogo", "a small cat"),
    ("paka kubwa", "the big cat"),
    ("mbwa", "the dog"),
]


@pytest.fixture(scope="module")
def table() -> TranslationTable:
    return train_on_bitext(BITEXT, source_lang="sw", iterations=10, min_prob=1e-4)


def test_recovers_known_translations(table):
    best = {f: table.translations(f)[0][0] for f in ("nyumba", "kubwa", "ndogo", "mbwa", "paka")}
    assert best == {"nyumba": "house", "kubwa": "big", "ndogo": "small", "mbwa": "dog", "paka": "cat"}
    assert table.prob("nyumba", "house") > 0.9
    assert table.prob("nyumba", "house") > max(table.prob("nyumba", e) for e in ("big", "small", "dog"))
    assert table.prob("kubwa", "big") > 0.8 and table.prob("ndogo", "small") > 0.8


def test_null_absorbs_unaligned_function_words(table):
    # "the" and "a" have no Swahili counterpart: NULL is their best source
    null = dict(table.translations(NULL))
    assert max(null, key=null.get) in {"the", "a"}
    assert table.prob("nyumba", "the") < 0.05
    assert NULL not in table and "nyumba" in table and "zebra" not in table
    assert table.translations("zebra") == []


def test_rows_are_distributions(table):
    sums = np.asarray(table.matrix.sum(axis=1)).ravel()
    assert np.allclose(sums, 1.0, atol=1e-3)  # min_prob=1e-4 prunes almost nothing here
    probs = [p for _, p in table.translations("mbwa")]
    assert probs == sorted(probs, reverse=True)


def test_direction_english_to_foreign():
    reverse = train_on_bitext(BITEXT, source_lang="en", iterations=10)
    assert reverse.translations("house")[0][0] == "nyumba"
    assert reverse.translations("dog")[0][0] == "mbwa"


def test_em_increases_likelihood_and_pruning(caplog):
    source = [["a", "b"], ["a", "c"], ["b"]]
    target = [["x", "y"], ["x", "z"], ["y"]]
    one = train_ibm1(source, target, iterations=1, min_prob=0.0)
    many = train_ibm1(source, target, iterations=20, min_prob=0.0)
    assert many.prob("a", "x") > one.prob("a", "x")
    assert many.prob("b", "y") > 0.95
    pruned = train_ibm1(source, target, iterations=20, min_prob=0.1)
    assert pruned.matrix.nnz < many.matrix.nnz and pruned.prob("a", "z") == 0.0


def test_english_tokens_drop_possessive():
    assert english_tokens("Anita's house, the President’s car") == ["anita", "house", "the", "president", "car"]


def test_table_is_cached_by_bitext_fingerprint(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_HOME", str(tmp_path))
    bitext = bitext_from_pairs(BITEXT)
    first, fp = translation_table(bitext, source_lang="sw", iterations=5)
    files = list((tmp_path / "translation-tables").glob("*/table.npz"))
    assert len(files) == 1 and files[0].parent.name == fp
    again, fp_again = translation_table(bitext, source_lang="sw", iterations=5)
    assert fp_again == fp and again.source_vocab == first.source_vocab
    assert again.prob("nyumba", "house") == pytest.approx(first.prob("nyumba", "house"))
    _, other = translation_table(bitext, source_lang="sw", iterations=6)
    noisy = bitext_from_pairs(BITEXT, noise=0.5, seed=0)
    _, noisy_fp = translation_table(noisy, source_lang="sw", iterations=5)
    assert len({fp, other, noisy_fp}) == 3


@pytest.mark.integration
def test_sw_en_table_from_the_mirror(real_data):
    from bench.data.bitext import load_bitext
    from bench.data.pairs import get_pair

    table, _ = translation_table(load_bitext(get_pair("sw-en")), source_lang="sw", iterations=5)
    best = {f: table.translations(f)[0][0] for f in ("rais", "mto", "vita", "nani", "kwanza", "nyumba")}
    assert best == {"rais": "president", "mto": "river", "vita": "war", "nani": "who", "kwanza": "first",
                    "nyumba": "house"}
    assert table.prob("rais", "president") > 0.8
