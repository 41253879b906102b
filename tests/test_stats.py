"""bench.results.stats: p-values counted by hand, a known bootstrap interval, Holm on known p-values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from bench.results import stats


def exact_sign_flip_p(a, b) -> float:
    """The two-sided sign-flip p-value, by enumerating every assignment."""
    d = np.subtract(a, b)
    observed = abs(d.mean())
    flips = [abs((np.array(signs) * d).mean()) for signs in itertools.product((1, -1), repeat=d.size)]
    return sum(f >= observed - 1e-12 for f in flips) / len(flips)


def long_table(values: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    """{system: {measure: per-query values}} → the long per-query table compare() takes."""
    rows = [
        (system, f"q{i}", measure, v)
        for system, by_measure in values.items()
        for measure, vs in by_measure.items()
        for i, v in enumerate(vs)
    ]
    return pd.DataFrame(rows, columns=["system", "query_id", "measure", "value"])


# --- randomization test ---------------------------------------------------------------------------


def test_randomization_four_queries_all_better_is_two_of_sixteen():
    # d = (.1, .2, .3, .4): only "all +" and "all −" reach |mean| = .25, so p = 2/16.
    assert stats.randomization_test([0.5, 0.6, 0.7, 0.8], [0.4, 0.4, 0.4, 0.4]) == pytest.approx(0.125)


def test_randomization_four_queries_hand_count():
    # d = (.4, −.1, .4, 0), |sum| = .7: reached by (±.4 ±.4 same sign, either sign of .1, either of 0),
    # i.e. 2 × 2 × 2 = 8 of the 16 assignments.
    a, b = [0.5, 0.3, 0.9, 0.2], [0.1, 0.4, 0.5, 0.2]
    assert exact_sign_flip_p(a, b) == 0.5
    assert stats.randomization_test(a, b) == pytest.approx(0.5)


def test_randomization_exact_matches_enumeration_on_random_data():
    rng = np.random.default_rng(7)
    a, b = rng.random(9), rng.random(9)
    assert stats.randomization_test(a, b, n_resamples=10_000) == pytest.approx(exact_sign_flip_p(a, b))


def test_randomized_p_is_c_plus_one_over_n_plus_one():
    # 20 queries all better by the same amount: no random assignment of 999 (but the identity and its
    # mirror, each with probability 2**-20) reaches the observed |mean|, so c = 0 and p = 1/1000.
    p = stats.randomization_test([0.6] * 20, [0.5] * 20, n_resamples=999, seed=0)
    assert p == pytest.approx(1 / 1000)


def test_randomized_estimate_is_close_to_exact_and_seeded():
    rng = np.random.default_rng(11)
    a, b = rng.random(12), rng.random(12) * 0.9  # 4096 assignments
    exact = exact_sign_flip_p(a, b)
    estimate = stats.randomization_test(a, b, n_resamples=4000, seed=3)  # < 4096: random assignments
    assert estimate * 4001 == pytest.approx(round(estimate * 4001))  # (c + 1) / (n + 1)
    assert estimate == pytest.approx(exact, abs=0.02)
    assert stats.randomization_test(a, b, n_resamples=4000, seed=3) == estimate


def test_randomization_identical_systems_is_one():
    assert stats.randomization_test([0.1, 0.2, 0.3], [0.1, 0.2, 0.3]) == 1.0


# --- t-test, wins/ties/losses, bootstrap, Holm ----------------------------------------------------


def test_paired_ttest_known_value():
    # d = (1, 2, 3): t = 2 / (1/√3) = 2√3, df 2; for df 2, P(T > t) = 1/2 − t / (2√(2 + t²)).
    t = 2 * math.sqrt(3)
    expected = 2 * (0.5 - t / (2 * math.sqrt(2 + t * t)))  # 0.0742
    assert stats.paired_ttest([1, 2, 3], [0, 0, 0]) == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(0.07418, abs=1e-5)


def test_paired_ttest_degenerate_differences():
    assert stats.paired_ttest([0.3, 0.4], [0.3, 0.4]) == 1.0
    assert stats.paired_ttest([0.4, 0.5], [0.3, 0.4]) == 0.0


def test_wins_ties_losses():
    assert stats.wins_ties_losses([0.5, 0.2, 0.3, 0.0], [0.4, 0.2, 0.6, 0.0]) == (1, 2, 1)


def test_bootstrap_two_points_is_zero_to_one():
    # Resampled means of (0, 1) are 0, .5, 1 with probability 1/4, 1/2, 1/4: the 2.5th percentile is 0
    # and the 97.5th is 1.
    assert stats.bootstrap_ci([0.0, 1.0], n_resamples=4000, seed=0) == (0.0, 1.0)


def test_bootstrap_known_interval_on_fixed_data():
    low, high = stats.bootstrap_ci([0.1, 0.2, 0.3, 0.4, 0.9], n_resamples=2000, seed=0)
    assert (low, high) == (pytest.approx(0.18), pytest.approx(0.66))
    # ... and on 40 values, close to the normal-theory interval mean ± 1.96 s/√n
    x = np.linspace(0, 1, 40) ** 2
    low, high = stats.bootstrap_ci(x, n_resamples=10_000, seed=0)
    assert (low, high) == (pytest.approx(0.24714, abs=1e-5), pytest.approx(0.43503, abs=1e-5))
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert low == pytest.approx(x.mean() - half, abs=0.01) and high == pytest.approx(x.mean() + half, abs=0.01)


def test_bootstrap_degenerate():
    assert stats.bootstrap_ci([0.4, 0.4, 0.4]) == (0.4, 0.4)
    assert all(math.isnan(v) for v in stats.bootstrap_ci([0.4]))


def test_holm_known_values():
    # sorted .005 .01 .03 .04 → ×4 ×3 ×2 ×1 = .02 .03 .06 .04 → running max .02 .03 .06 .06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    adjusted = stats.holm([0.02, float("nan"), 0.01])
    assert math.isnan(adjusted[1]) and adjusted[[0, 2]] == pytest.approx([0.02, 0.02])


# --- compare --------------------------------------------------------------------------------------


def test_compare_rows_and_values():
    table = long_table({
        "bm25": {"AP": [0.1, 0.2, 0.3, 0.4], "nDCG@10": [0.2, 0.2, 0.2, 0.2]},
        "optical": {"AP": [0.5, 0.6, 0.7, 0.8], "nDCG@10": [0.2, 0.3, 0.1, 0.2]},
        "mdense": {"AP": [0.2, 0.1, 0.3, 0.7], "nDCG@10": [0.2, 0.2, 0.2, 0.2]},
    })
    out = stats.compare(table, "bm25", n_resamples=1000, seed=0)
    assert list(out.columns) == stats.COLUMNS
    assert [(r.system, r.measure) for r in out.itertuples()] == [
        ("bm25", "AP"), ("bm25", "nDCG@10"), ("optical", "AP"), ("optical", "nDCG@10"), ("mdense", "AP"),
        ("mdense", "nDCG@10"),
    ]
    row = out.set_index(["system", "measure"])
    assert row.loc[("optical", "AP"), "mean"] == pytest.approx(0.65)
    assert row.loc[("optical", "AP"), "delta"] == pytest.approx(0.4)
    assert tuple(row.loc[("optical", "AP"), ["wins", "ties", "losses"]]) == (4, 0, 0)
    assert tuple(row.loc[("optical", "nDCG@10"), ["wins", "ties", "losses"]]) == (1, 2, 1)
    assert row.loc[("optical", "AP"), "p_randomization"] == pytest.approx(0.125)  # exact: 2/16
    # mdense AP: d = (.1, −.1, 0, .3), |sum| = .3: with +.3, three of the four signs of (.1, −.1) keep
    # |sum| >= .3 (.5, .3, .3, not .1); the same with −.3; × 2 for the 0: 12 of 16
    assert row.loc[("mdense", "AP"), "p_randomization"] == pytest.approx(12 / 16)
    assert row.loc[("mdense", "nDCG@10"), "p_randomization"] == 1.0
    # Holm over the two systems compared, per measure: AP .125, .75 → .25, .75
    assert row.loc[("optical", "AP"), "p_holm"] == pytest.approx(0.25)
    assert row.loc[("mdense", "AP"), "p_holm"] == pytest.approx(0.75)
    assert not row["significant"].any()
    base = row.loc[("bm25", "AP")]
    assert base["delta"] == 0 and math.isnan(base["p_randomization"]) and math.isnan(base["p_holm"])


def test_compare_significance_and_order_independence():
    rng = np.random.default_rng(0)
    base = rng.random(60)
    values = {"bm25": {"AP": list(base)}, "good": {"AP": list(np.clip(base + 0.2, 0, 1))},
              "same": {"AP": list(np.clip(base + rng.normal(0, 0.01, 60), 0, 1))}}
    out = stats.compare(long_table(values), "bm25", n_resamples=2000).set_index("system")
    assert out.loc["good", "significant"] and out.loc["good", "p_randomization"] == pytest.approx(1 / 2001)
    assert not out.loc["same", "significant"]
    assert out.loc["good", "p_holm"] == pytest.approx(2 / 2001)  # smallest of 2 → × 2
    reordered = stats.compare(long_table({k: values[k] for k in ("same", "good", "bm25")}), "bm25", n_resamples=2000)
    assert reordered.set_index("system").loc["good", "p_randomization"] == out.loc["good", "p_randomization"]
    assert reordered.set_index("system").loc["same", "ci_low"] == out.loc["same", "ci_low"]


def test_compare_without_baseline_and_errors():
    table = long_table({"a": {"AP": [0.1, 0.3]}, "b": {"AP": [0.2, 0.4]}})
    out = stats.compare(table, None, n_resamples=100)
    assert out["delta"].isna().all() and out["p_holm"].isna().all()
    assert out["mean"].tolist() == pytest.approx([0.2, 0.3])
    with pytest.raises(ValueError, match="baseline"):
        stats.compare(table, "c")


def test_compare_pairs_only_shared_queries(caplog):
    table = long_table({"a": {"AP": [0.1, 0.2, 0.3]}, "b": {"AP": [0.2, 0.3]}})
    out = stats.compare(table, "a", n_resamples=100).set_index("system")
    assert out.loc["b", "delta"] == pytest.approx(0.1)
    assert "different queries" in caplog.text


def test_head_to_head_pairs_holm_over_the_family():
    import pandas as pd

    from bench.results.stats import head_to_head

    rows = []
    for system, values in {"a": [0.5, 0.6, 0.7, 0.8], "b": [0.4] * 4, "c": [0.4] * 4}.items():
        rows += [{"system": system, "query_id": f"q{i}", "measure": "AP", "value": v} for i, v in enumerate(values)]
    table = head_to_head(pd.DataFrame(rows), [("a", "b"), ("c", "b")], "AP", seed=0)
    first, second = table.iloc[0], table.iloc[1]
    assert (first["system"], first["reference"], first["n"]) == ("a", "b", 4)
    assert first["mean"] == pytest.approx(0.65) and first["reference_mean"] == pytest.approx(0.4)
    assert first["delta"] == pytest.approx(0.25)
    assert (first["wins"], first["ties"], first["losses"]) == (4, 0, 0)
    assert first["p_randomization"] == pytest.approx(2 / 16)  # exact: only the all-+ and all-− sign flips
    assert second["p_randomization"] == pytest.approx(1.0) and (second["wins"], second["ties"]) == (0, 4)
    # Holm over the two comparisons: 2 × 0.125, then max(0.25, 1 × 1.0)
    assert list(table["p_holm"]) == pytest.approx([0.25, 1.0])
    assert not table["significant"].any()


# --- natural query order, the p-value floor, the minimum detectable effect (issue 25/26) ---------------


def test_query_ids_sort_naturally():
    ids = ["q10", "109", "qa", "11", "q2", "103", "7", "007", "q02"]
    # digit runs by number, before text; equal numbers by their text; text runs as strings
    assert stats.natural(ids) == ["007", "7", "11", "103", "109", "q02", "q2", "q10", "qa"]
    assert stats.query_key("q10") > stats.query_key("q9") and stats.query_key("11") < stats.query_key("103")


def test_paired_values_list_queries_naturally():
    rows = [(s, q, "AP", v) for s, v in (("a", 0.5), ("b", 0.4)) for q in ("q10", "109", "q2", "11")]
    table = pd.DataFrame(rows, columns=["system", "query_id", "measure", "value"])
    assert list(stats.paired_values(table, "a", "b", "AP").index) == ["11", "109", "q2", "q10"]


def test_randomization_floor_is_one_over_resamples_plus_one():
    assert stats.randomization_floor(10_000) == 1 / 10_001
    p = stats.randomization_test([0.6] * 20, [0.5] * 20, n_resamples=999, seed=0)  # c = 0: p = 1/1000
    assert stats.at_floor(p, 999) and not stats.at_floor(p, 10_000)
    exact = stats.randomization_test([0.5, 0.6, 0.7, 0.8], [0.4] * 4, n_resamples=999)  # 2/16, enumerated
    assert not stats.at_floor(exact, 999) and not stats.at_floor(float("nan"), 999)


def test_minimum_detectable_effect_by_hand():
    # d = (.1, .2, .3, .4): sd (ddof 1) = sqrt(.05/3) = 0.1290994; z(.975) + z(.8) = 1.959964 + 0.841621 = 2.801585;
    # MDE = 2.801585 * 0.1290994 / sqrt(4) = 0.180842
    assert stats.minimum_detectable_effect([0.1, 0.2, 0.3, 0.4]) == pytest.approx(0.180842, abs=1e-6)
    # alpha 0.01, power 0.9: (2.575829 + 1.281552) * 0.1290994 / 2 = 0.248992
    assert stats.minimum_detectable_effect([0.1, 0.2, 0.3, 0.4], alpha=0.01, power=0.9) == pytest.approx(
        0.248992, abs=1e-6)
    assert math.isnan(stats.minimum_detectable_effect([0.3]))
    table = long_table({"bm25": {"AP": [0.1, 0.1, 0.1, 0.1]}, "x": {"AP": [0.2, 0.3, 0.4, 0.5]}})
    out = stats.compare(table, "bm25", n_resamples=100).set_index("system")
    assert out.loc["x", "mde"] == pytest.approx(0.180842, abs=1e-6) and math.isnan(out.loc["bm25", "mde"])
