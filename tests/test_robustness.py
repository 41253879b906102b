"""The noise sweep's statistics: slopes per seed and query, the two-stage bootstrap, the paired slope test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.results.robustness import grid_bootstrap, slope, slope_difference, slope_matrix


def long(values: dict) -> pd.DataFrame:
    """{(seed, query): [value at rates 0, 0.2, 0.4]} as the long columns seed, rate, query_id, value."""
    return pd.DataFrame([{"seed": seed, "rate": rate, "query_id": query, "value": value}
                         for (seed, query), row in values.items() for rate, value in zip((0.0, 0.2, 0.4), row)])


def test_slopes_by_least_squares_per_seed_and_query():
    values = long({(0, "q1"): [0.6, 0.55, 0.5], (0, "q2"): [0.4, 0.4, 0.4], (0, "q3"): [0.5, 0.3, 0.4],
                   (1, "q1"): [0.7, 0.6, 0.5], (1, "q2"): [0.4, 0.5, 0.6], (1, "q3"): [0.5, 0.5, 0.5]})
    matrix = slope_matrix(values)
    # centred rates (-0.2, 0, 0.2), sum of squares 0.08: q3 of seed 0 is (-0.2 * 0.5 + 0.2 * 0.4) / 0.08
    assert matrix.loc[0].tolist() == pytest.approx([-0.25, 0.0, -0.25])
    assert matrix.loc[1].tolist() == pytest.approx([-0.5, 0.5, 0.0])
    # the mean slope is the slope of the mean: MAP per rate fitted by least squares
    fit = slope(values)
    mean_by_rate = values.groupby("rate")["value"].mean()
    assert fit.slope == pytest.approx(np.polyfit(mean_by_rate.index, mean_by_rate.to_numpy(), 1)[0])
    assert fit.slope == pytest.approx(-0.5 / 6) and (fit.seeds, fit.queries) == (2, 3)
    assert fit.ci_low < fit.slope < fit.ci_high


def test_an_incomplete_sweep_is_refused():
    values = long({(0, "q1"): [0.6, 0.55, 0.5], (0, "q2"): [0.4, 0.4, 0.4]})
    with pytest.raises(ValueError, match="every .seed, query. needs a value at every rate"):
        slope_matrix(values.drop(index=4))
    with pytest.raises(ValueError, match="at least two noise rates"):
        slope_matrix(values[values["rate"] == 0.0])


def test_the_bootstrap_resamples_seeds_and_queries():
    # only the seeds differ: a resampled grid holds seed 0 twice, once each or seed 1 twice (means 0, 0.5, 1)
    assert grid_bootstrap(np.array([[0.0, 0.0], [1.0, 1.0]])) == (0.0, 1.0)
    # only the queries differ: the same by columns
    assert grid_bootstrap(np.array([[0.0, 1.0], [0.0, 1.0]])) == (0.0, 1.0)
    assert grid_bootstrap(np.full((3, 4), -0.2)) == pytest.approx((-0.2, -0.2))
    # one seed: the ordinary percentile bootstrap of the queries' mean, drawn the same way
    x = np.array([0.1, -0.3, 0.2, 0.0, -0.5])
    rng = np.random.default_rng(0)
    rng.multinomial(1, [1.0], size=2000)
    means = rng.multinomial(5, np.full(5, 0.2), size=2000) @ x / 5
    assert grid_bootstrap(x[None, :], n_resamples=2000) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))


def test_the_paired_slope_test():
    same = {(s, f"q{i}"): [0.5, 0.45, 0.4] for s in (0, 1) for i in range(6)}
    faster = {(s, f"q{i}"): [0.5, 0.4, 0.3] for s in (0, 1) for i in range(6)}
    test = slope_difference(long(faster), long(same))
    # every (seed, query) falls by 0.25 more per unit rate; all six queries agree in sign, so the exact
    # sign-flip test over 2^6 patterns gives 2 / 64
    assert test.difference == pytest.approx(-0.25)
    assert (test.ci_low, test.ci_high) == pytest.approx((-0.25, -0.25))
    assert test.p_value == pytest.approx(2 / 64) and (test.seeds, test.queries) == (2, 6)
    assert slope_difference(long(same), long(same)).p_value == 1.0
