"""Paired comparisons of systems over the same queries (PyTerrier's ``pt.Experiment``, made explicit).

Input is the long per-query table of several systems (columns ``system, query_id, measure, value``;
one row per judged query, unanswered queries already scored 0 by :mod:`bench.results.scoring`). For each
system and measure, :func:`compare` gives

- ``mean`` with a 95% percentile bootstrap interval over queries (``ci_low``, ``ci_high``);
- against the baseline: ``delta`` (mean paired difference), ``wins`` / ``ties`` / ``losses`` (per query,
  a tie when the two values differ by at most :data:`TIE_EPS`);
- ``p_randomization``: two-sided paired randomization test (sign flips of the per-query differences,
  statistic ``|mean difference|``). With ``2**n <= n_resamples`` every assignment is enumerated and
  ``p = c / 2**n``; otherwise ``n_resamples`` seeded random assignments give ``p = (c + 1) / (n + 1)``,
  where ``c`` counts assignments whose ``|mean difference|`` is at least the observed one;
- ``p_ttest``: two-sided paired t-test (:func:`scipy.stats.ttest_rel`);
- ``p_holm``: the randomization p-value adjusted by Holm's step-down method across the systems
  compared with the baseline, per measure; ``significant`` is ``p_holm < alpha``;
- ``mde``: the minimum detectable effect of the paired comparison (:func:`minimum_detectable_effect`): the
  smallest mean difference the test would detect with these many queries at ``alpha`` and :data:`POWER`.

A randomized p-value has a floor: with no resampled assignment as extreme as the observed one it is
``1 / (n_resamples + 1)`` (:func:`randomization_floor`), an upper bound of the true p-value rather than an
estimate of it. Enumerated p-values (``2**n <= n_resamples``) are exact and never that small.

Query ids are paired, listed and tie-broken in their natural order (:func:`query_key`).

Every comparison uses a fresh generator seeded with ``seed``, so a p-value or an interval does not
depend on which other systems are in the table or in what order.
"""

from __future__ import annotations

import logging
import re
import warnings
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

log = logging.getLogger(__name__)

N_RESAMPLES = 10_000
CONFIDENCE = 0.95
ALPHA = 0.05
TIE_EPS = 1e-9
POWER = 0.8  # of the minimum detectable effect

COLUMNS = [
    "system", "measure", "n", "mean", "ci_low", "ci_high", "delta", "wins", "ties", "losses",
    "p_randomization", "p_ttest", "p_holm", "significant", "mde",
]

_DIGITS = re.compile(r"([0-9]+)")


def query_key(query_id) -> tuple:
    """The natural order of query ids: an id is split into runs of ASCII digits and runs of other characters,
    compared run by run; a digit run by its number, before any text run at the same position; a text run as a
    string (and equal numbers by their text, ``007`` before ``7``). So ``11 < 103 < 109 < q2 < q10 < qa``."""
    parts = (c for c in _DIGITS.split(str(query_id)) if c)
    return tuple((0, int(c), c) if _DIGITS.fullmatch(c) else (1, 0, c) for c in parts)


def natural(query_ids: Iterable) -> list:
    """``query_ids`` in their natural order (:func:`query_key`)."""
    return sorted(query_ids, key=query_key)


def bootstrap_ci(
    values: Sequence[float], *, confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES, seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (NaNs when fewer than two values)."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return (float("nan"), float("nan"))
    if np.all(x == x[0]):
        return (float(x[0]), float(x[0]))
    result = sps.bootstrap(
        (x,), np.mean, n_resamples=n_resamples, confidence_level=confidence, method="percentile",
        vectorized=True, rng=np.random.default_rng(seed),
    )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


def randomization_test(
    a: Sequence[float], b: Sequence[float], *, n_resamples: int = N_RESAMPLES, seed: int = 0,
) -> float:
    """Two-sided paired randomization (sign-flip) test of ``mean(a - b)``; see the module docstring."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size == 0:
        return float("nan")
    if np.all(np.abs(d) <= TIE_EPS):
        return 1.0
    result = sps.permutation_test(
        (d,), lambda x, axis: np.abs(np.mean(x, axis=axis)), permutation_type="samples",
        alternative="greater", n_resamples=n_resamples, vectorized=True, rng=np.random.default_rng(seed),
    )
    return float(result.pvalue)


def randomization_floor(n_resamples: int = N_RESAMPLES) -> float:
    """The smallest p-value :func:`randomization_test` gives from ``n_resamples`` random assignments:
    ``1 / (n_resamples + 1)``, when none of them is as extreme as the observed difference."""
    return 1.0 / (int(n_resamples) + 1)


def at_floor(p: float, n_resamples: int = N_RESAMPLES) -> bool:
    """Whether the randomization p-value ``p`` is at its floor (:func:`randomization_floor`); an enumerated
    (exact) p-value, at least ``2 / 2**n`` with ``2**n <= n_resamples``, never is."""
    return p is not None and not np.isnan(p) and p <= randomization_floor(n_resamples) * (1 + 1e-9)


def minimum_detectable_effect(differences: Sequence[float], *, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest mean paired difference a two-sided test at ``alpha`` detects with probability ``power``
    over these many queries, by the normal approximation: ``(z(1 - alpha/2) + z(power)) * sd / sqrt(n)``,
    ``sd`` the sample standard deviation (ddof 1) of the per-query differences (NaN for fewer than two)."""
    d = np.asarray(differences, dtype=float)
    if d.size < 2:
        return float("nan")
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    return float(z * d.std(ddof=1) / np.sqrt(d.size))


def paired_ttest(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided paired t-test; 1 when every difference is 0, 0 when they are all the same non-zero."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size < 2:
        return float("nan")
    if np.all(np.abs(d - d[0]) <= TIE_EPS):
        return 1.0 if abs(d[0]) <= TIE_EPS else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(sps.ttest_rel(a, b).pvalue)


def holm(pvalues: Iterable[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (same order as given; NaNs stay NaN and are not counted)."""
    p = np.asarray(list(pvalues), dtype=float)
    adjusted = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def wins_ties_losses(a: Sequence[float], b: Sequence[float]) -> tuple[int, int, int]:
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return int(np.sum(d > TIE_EPS)), int(np.sum(np.abs(d) <= TIE_EPS)), int(np.sum(d < -TIE_EPS))


def paired_values(per_query: pd.DataFrame, system: str, other: str, measure: str) -> pd.DataFrame:
    """Values of two systems on the queries both have, for one measure (columns ``system``, ``other``), the
    queries in their natural order (:func:`query_key`)."""
    rows = per_query[per_query["measure"] == measure]
    a = rows[rows["system"] == system].set_index("query_id")["value"]
    b = rows[rows["system"] == other].set_index("query_id")["value"]
    if set(a.index) != set(b.index):
        log.warning(
            "%s and %s were scored on different queries for %s (%d vs %d); comparing the %d they share",
            system, other, measure, len(a), len(b), len(a.index.intersection(b.index)),
        )
    joined = pd.concat({"system": a, "other": b}, axis=1, join="inner")
    return joined.loc[natural(joined.index)]


HEAD_TO_HEAD_COLUMNS = ["system", "reference", "measure", "n", "mean", "reference_mean", "delta", "wins", "ties",
                        "losses", "p_randomization", "p_ttest", "p_holm", "significant"]


def head_to_head(
    per_query: pd.DataFrame, pairs: Sequence[tuple[str, str]], measure: str, *,
    n_resamples: int = N_RESAMPLES, seed: int = 0, alpha: float = ALPHA,
) -> pd.DataFrame:
    """Chosen (system, reference) comparisons on one measure, on the queries both have.

    Holm adjusts the randomization p-values over this family of comparisons (not per baseline, as
    :func:`compare` does): these are the questions a study asks of its systems, such as whether a
    distilled student beats the zero-shot encoder under the same scoring.
    """
    rows = []
    for system, reference in pairs:
        paired = paired_values(per_query, system, reference, measure)
        a, b = paired["system"].to_numpy(), paired["other"].to_numpy()
        wins, ties, losses = wins_ties_losses(a, b)
        rows.append({"system": system, "reference": reference, "measure": measure, "n": int(a.size),
                     "mean": float(a.mean()) if a.size else np.nan,
                     "reference_mean": float(b.mean()) if b.size else np.nan,
                     "delta": float(np.mean(a - b)) if a.size else np.nan, "wins": wins, "ties": ties, "losses": losses,
                     "p_randomization": randomization_test(a, b, n_resamples=n_resamples, seed=seed),
                     "p_ttest": paired_ttest(a, b)})
    for row, adjusted in zip(rows, holm(r["p_randomization"] for r in rows)):
        row["p_holm"] = float(adjusted)
        row["significant"] = bool(adjusted < alpha)
    return pd.DataFrame(rows, columns=HEAD_TO_HEAD_COLUMNS)


def compare(
    per_query: pd.DataFrame, baseline: str | None, measures: Sequence[str] | None = None, *,
    n_resamples: int = N_RESAMPLES, seed: int = 0, alpha: float = ALPHA, confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """One row per system × measure (columns :data:`COLUMNS`), systems in their order of appearance.

    ``baseline`` None (or absent from the table) gives means and intervals only. The baseline's own
    row has ``delta`` 0 and no p-values.
    """
    systems = list(dict.fromkeys(per_query["system"]))
    if measures is None:
        measures = list(dict.fromkeys(per_query["measure"]))
    if baseline is not None and baseline not in systems:
        raise ValueError(f"baseline {baseline!r} is not among the systems {systems}")
    rows = []
    for measure in measures:
        block = []
        # a measure the baseline's run was not scored with (runs stored with other measures) is not compared
        measured = baseline is not None and bool(((per_query["system"] == baseline)
                                                  & (per_query["measure"] == measure)).any())
        for system in systems:
            values = per_query[(per_query["system"] == system) & (per_query["measure"] == measure)]["value"]
            if values.empty:
                continue
            low, high = bootstrap_ci(values.to_numpy(), confidence=confidence, n_resamples=n_resamples, seed=seed)
            row = dict.fromkeys(COLUMNS, np.nan)
            row.update(system=system, measure=measure, n=int(values.size), mean=float(values.mean()),
                       ci_low=low, ci_high=high, significant=False)
            if measured:
                pairs = paired_values(per_query, system, baseline, measure)
                a, b = pairs["system"].to_numpy(), pairs["other"].to_numpy()
                row["delta"] = float(np.mean(a - b)) if a.size else np.nan
                row["wins"], row["ties"], row["losses"] = wins_ties_losses(a, b)
                if system != baseline:
                    row["mde"] = minimum_detectable_effect(a - b, alpha=alpha)
                    row["p_randomization"] = randomization_test(a, b, n_resamples=n_resamples, seed=seed)
                    row["p_ttest"] = paired_ttest(a, b)
            block.append(row)
        compared = [r for r in block if r["system"] != baseline and measured]
        for row, adjusted in zip(compared, holm(r["p_randomization"] for r in compared)):
            row["p_holm"] = float(adjusted)
            row["significant"] = bool(adjusted < alpha)
        rows.extend(block)
    table = pd.DataFrame(rows, columns=COLUMNS)
    order = {s: i for i, s in enumerate(systems)}
    table = table.sort_values(["system", "measure"], key=lambda c: c.map(order) if c.name == "system" else
                              c.map({m: i for i, m in enumerate(measures)}), kind="stable")
    return table.reset_index(drop=True).astype({"wins": "Int64", "ties": "Int64", "losses": "Int64"})
