import math

import pytest

from bench.evaluate import aggregate, per_query
from bench.errors import BenchError

QRELS = {"q1": {"d1": 1, "d3": 1}, "q2": {"d5": 1}, "q3": {}}
RUN = {"q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0}, "q9": {"d1": 1.0}}  # q2 unanswered, q9 unjudged


def test_per_query_values_computed_by_hand():
    table = per_query(RUN, QRELS, ["AP", "RR@10", "nDCG@10", "R@100"])
    got = {(r.query_id, r.measure): r.value for r in table.itertuples()}
    assert got[("q1", "AP")] == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert got[("q1", "RR@10")] == 1.0
    ideal = 1 + 1 / math.log2(3)
    assert got[("q1", "nDCG@10")] == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    assert got[("q1", "R@100")] == 1.0
    # a judged query missing from the run scores 0; unjudged queries are not scored at all
    assert all(got[("q2", m)] == 0.0 for m in ("AP", "RR@10", "nDCG@10", "R@100"))
    assert {q for q, _ in got} == {"q1", "q2"}


def test_aggregate_counts_unanswered_queries():
    means = aggregate(per_query(RUN, QRELS, ["AP"]))
    assert means["AP"] == pytest.approx((1 + 2 / 3) / 2 / 2)


def test_unknown_measure_is_a_clear_error():
    with pytest.raises(BenchError, match="unknown measure"):
        per_query(RUN, QRELS, ["MAPP@x"])
