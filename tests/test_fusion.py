"""CombSUM of min-max normalised runs, values computed by hand."""

import pytest

from bench.methods.retrieve.fusion import combsum, minmax


def test_minmax_per_query():
    assert minmax({"q": {"a": 10.0, "b": 6.0, "c": 2.0}, "r": {"x": 0.3, "y": 0.3}, "s": {}}) == {
        "q": {"a": 1.0, "b": 0.5, "c": 0.0}, "r": {"x": 1.0, "y": 1.0}, "s": {}}


def test_weighted_sum_missing_documents_and_depth():
    bm25 = {"q": {"a": 10.0, "b": 6.0, "c": 2.0}}  # normalised: a 1, b .5, c 0
    dense = {"q": {"b": 0.9, "d": 0.7, "a": 0.5}}  # normalised: b 1, d .5, a 0
    fused = combsum([dense, bm25], [0.6, 0.4], depth=3)
    # a: .4·1 = .4; b: .6·1 + .4·.5 = .8; d: .6·.5 = .3; c: 0 (cut at depth 3)
    assert list(fused["q"]) == ["b", "a", "d"]
    assert fused["q"] == pytest.approx({"b": 0.8, "a": 0.4, "d": 0.3})


def test_ties_are_broken_by_document_id():
    fused = combsum([{"q": {"z": 1.0, "m": 1.0}}], [1.0])
    assert list(fused["q"]) == ["m", "z"]
    with pytest.raises(ValueError):
        combsum([{"q": {}}], [0.5, 0.5])
