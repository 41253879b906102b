"""How fast a system's effectiveness falls with the fraction of misaligned training pairs (the noise sweep).

A system's sweep gives one per-query value (AP, say) for every (seed, rate, query). Its **slope** is the
least-squares slope of the value against the rate, fitted per seed and query; least squares is linear in
the values, so the mean of those slopes is the slope of the mean (MAP against the rate). A slope of
-0.25 reads: each 10 points of misaligned pairs cost 0.025 MAP.

Its interval is a two-stage percentile bootstrap of that mean over a crossed design (every seed scores
every query): seeds and queries are resampled independently, with replacement, and the statistic is the
mean slope over the resampled grid. Both sources of variation are in it: which queries were asked and
which training seeds ran. With one seed only the queries vary, and :attr:`Slope.seeds` says so.

Two systems trained on the same corrupted bitext (a seed fixes the corruption and the training order for
every system) are compared by their slope difference per (seed, query): its mean and bootstrap interval
as above, and a two-sided paired sign-flip randomization test over queries of the seed-mean difference
(:func:`bench.results.stats.randomization_test`), so a query counts once however many seeds ran.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.results.stats import CONFIDENCE, N_RESAMPLES, randomization_test

COLUMNS = ("seed", "rate", "query_id", "value")


@dataclass(frozen=True)
class Slope:
    """The mean slope of a measure against the noise rate, with its bootstrap interval."""

    slope: float
    ci_low: float
    ci_high: float
    seeds: int
    queries: int


@dataclass(frozen=True)
class SlopeDifference:
    """``a``'s slope minus ``b``'s, paired by seed and query: mean, bootstrap interval and p-value."""

    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    seeds: int
    queries: int


def slope_matrix(values: pd.DataFrame) -> pd.DataFrame:
    """The least-squares slope of ``value`` against ``rate`` for each seed (rows) and query (columns).

    ``values`` has the columns ``seed, rate, query_id, value``, every (seed, query) at every rate of the
    sweep (at least two rates). A seed or query missing a rate is an error: a slope over fewer rates is
    not the same estimate."""
    missing = set(COLUMNS) - set(values.columns)
    if missing:
        raise ValueError(f"slope_matrix needs the columns {', '.join(COLUMNS)}; missing {', '.join(sorted(missing))}")
    rates = np.sort(values["rate"].unique())
    if rates.size < 2:
        raise ValueError("a slope needs at least two noise rates")
    cube = values.pivot_table(index=["seed", "query_id"], columns="rate", values="value", aggfunc="first")
    if cube.isna().any().any() or len(cube.columns) != rates.size:
        incomplete = cube[cube.isna().any(axis=1)].index[:3].tolist()
        raise ValueError(f"every (seed, query) needs a value at every rate; incomplete: {incomplete}")
    centred = rates - rates.mean()
    slopes = cube[list(rates)].to_numpy() @ centred / float(centred @ centred)
    return pd.Series(slopes, index=cube.index).unstack("query_id")


def grid_bootstrap(matrix: np.ndarray, *, n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE,
                   seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the mean of a seeds × queries matrix, rows and columns resampled independently."""
    rows, cols = matrix.shape
    rng = np.random.default_rng(seed)
    row_counts = rng.multinomial(rows, np.full(rows, 1.0 / rows), size=n_resamples)
    col_counts = rng.multinomial(cols, np.full(cols, 1.0 / cols), size=n_resamples)
    means = ((row_counts @ matrix) * col_counts).sum(axis=1) / (rows * cols)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def slope(values: pd.DataFrame, *, seed: int = 0) -> Slope:
    """The mean slope of ``values`` (see :func:`slope_matrix`) and its two-stage bootstrap interval."""
    matrix = slope_matrix(values)
    low, high = grid_bootstrap(matrix.to_numpy(), seed=seed)
    return Slope(float(matrix.to_numpy().mean()), low, high, *matrix.shape)


def slope_difference(a: pd.DataFrame, b: pd.DataFrame, *, seed: int = 0) -> SlopeDifference:
    """``a``'s slope minus ``b``'s over the seeds and queries both have (same rates), with its interval and
    the sign-flip test over queries of the seed-mean difference."""
    slopes_a, slopes_b = slope_matrix(a), slope_matrix(b)
    seeds = slopes_a.index.intersection(slopes_b.index)
    queries = slopes_a.columns.intersection(slopes_b.columns)
    if seeds.empty or queries.empty:
        raise ValueError("the two sweeps share no seed or no query")
    left = slopes_a.loc[seeds, queries].to_numpy()
    right = slopes_b.loc[seeds, queries].to_numpy()
    low, high = grid_bootstrap(left - right, seed=seed)
    p_value = randomization_test(left.mean(axis=0), right.mean(axis=0), seed=seed)
    return SlopeDifference(float((left - right).mean()), low, high, p_value, len(seeds), len(queries))
