import math

import pandas as pd
import pytest

from bench.results.scoring import means, per_query
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


def test_means_counts_unanswered_queries():
    scores = means(per_query(RUN, QRELS, ["AP"]))
    assert scores["AP"] == pytest.approx((1 + 2 / 3) / 2 / 2)


def test_means_keep_the_measures_in_the_order_first_seen():
    table = pd.DataFrame([("q1", "nDCG@10", 0.5), ("q1", "AP", 0.2), ("q2", "nDCG@10", 1.0), ("q2", "AP", 0.4)],
                         columns=["query_id", "measure", "value"])
    assert list(means(table).items()) == [("nDCG@10", 0.75), ("AP", pytest.approx(0.3))]


def test_unknown_measure_is_a_clear_error():
    with pytest.raises(BenchError, match="unknown measure"):
        per_query(RUN, QRELS, ["MAPP@x"])
