"""Probabilistic structured queries: weights from a hand-made translation table."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from bench.methods.translate.ibm1 import NULL, TranslationTable
from bench.methods.translate.psq import PsqConfig, psq_query, translate_token


@pytest.fixture()
def table() -> TranslationTable:
    source = [NULL, "nyumba", "kubwa", "wa", "rais"]
    target = ["house", "home", "the", "big", "of", "large", "from", "president"]
    rows = {
        "nyumba": {"house": 0.5, "home": 0.3, "the": 0.15, "big": 0.05},
        "kubwa": {"big": 0.6, "large": 0.3, "the": 0.1},
        "wa": {"of": 0.7, "the": 0.28, "from": 0.02},
        "rais": {"president": 1.0},
    }
    matrix = np.zeros((len(source), len(target)), dtype=np.float32)
    for f, row in rows.items():
        for e, p in row.items():
            matrix[source.index(f), target.index(e)] = p
    return TranslationTable(source, target, sp.csr_matrix(matrix))


def cfg(**changes) -> PsqConfig:
    """Translations only (no original token), not renormalised, unless changed."""
    return PsqConfig(**{"top_k": 5, "min_prob": 0.01, "cumulative": 1.0, "renormalise": False,
                        "keep_original": 0.0, "drop_stopwords": True, **changes})


def test_token_weights_follow_probabilities(table):
    assert translate_token("nyumba", table, cfg()) == pytest.approx({"house": 0.5, "home": 0.3, "big": 0.05})
    # top_k and the cumulative cut (stop words removed before choosing)
    assert translate_token("nyumba", table, cfg(top_k=1)) == pytest.approx({"house": 0.5})
    assert translate_token("nyumba", table, cfg(cumulative=0.7)) == pytest.approx({"house": 0.5, "home": 0.3})
    # renormalised: the kept translations of a token sum to 1
    assert translate_token("kubwa", table, cfg(renormalise=True)) == pytest.approx({"big": 2 / 3, "large": 1 / 3})
    # min_prob
    assert translate_token("nyumba", table, cfg(min_prob=0.1)) == pytest.approx({"house": 0.5, "home": 0.3})


def test_function_words_vanish_and_unknown_words_stay(table):
    config = cfg(min_prob=0.05)
    assert translate_token("wa", table, config) == {}  # only stop words and an improbable "from"
    assert translate_token("nairobi", table, config) == {"nairobi": 1.0}  # a name the table does not know
    assert translate_token("<null>", table, config) == {"<null>": 1.0}  # NULL is never a query word's source
    kept = translate_token("wa", table, cfg(drop_stopwords=False))
    assert kept == pytest.approx({"of": 0.7, "the": 0.28, "from": 0.02})


def test_keep_original_adds_the_token(table):
    weights = translate_token("rais", table, cfg(keep_original=0.5))
    assert weights == pytest.approx({"president": 1.0, "rais": 0.5})
    assert translate_token("wa", table, cfg(keep_original=0.5, min_prob=0.05)) == {"wa": 0.5}


def test_psq_query_sums_weights_of_all_tokens(table):
    config = cfg(top_k=2, renormalise=True)
    weights = psq_query("Nyumba kubwa ya Rais, nyumba!", table, config)
    assert weights == pytest.approx({
        "house": 2 * 0.5 / 0.8, "home": 2 * 0.3 / 0.8,  # "nyumba" twice
        "big": 2 / 3, "large": 1 / 3,
        "ya": 1.0,  # unknown: kept as is
        "president": 1.0,
    })


def test_defaults_are_the_tuned_ones_and_the_system_uses_them(table):
    from bench.systems import get_system
    from bench.systems.stages import PSQ_QUERY

    assert PsqConfig().spec() == PSQ_QUERY == get_system("bm25-psq").spec["psq"]
    # the tuned defaults: raw probabilities (no renormalisation), the original token kept at 0.5
    assert psq_query("nyumba wa", table) == pytest.approx(
        {"house": 0.5, "home": 0.3, "big": 0.05, "nyumba": 0.5, "from": 0.02, "wa": 0.5}
    )
