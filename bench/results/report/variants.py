"""A system's runs grouped into cells: one cell per (system, bitext noise rate), its seeds the replicates.

Runs of other seeds and noise rates sit beside the default run (``runs/<pair>/optical+seed1/``, see
:func:`bench.results.runs.run_name`) and say which cell they are in their manifests. A cell with several
seeds is reported as

- its per-query values averaged over the seeds (what the report's intervals, † and comparisons use:
  one value per query, as for a single run);
- the mean over the seeds of each seed's mean, ± the **sample** standard deviation of those means
  (``ddof=1``; undefined for one seed);
- each seed's own run tested against a reference (:func:`per_seed_tests`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.results import stats
from bench.results.runs import StoredRun

log = logging.getLogger(__name__)

STD_NOTE = "± the sample standard deviation over seeds (ddof 1)"


@dataclass
class Replicates:
    """The runs of one system at one bitext noise rate, one per seed (in seed order)."""

    system: str
    noise: float
    runs: list[StoredRun]

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.runs]

    @property
    def n(self) -> int:
        return len(self.runs)

    def per_query(self) -> pd.DataFrame:
        """``query_id, measure, value``: a single run's own table; with several seeds, the mean per query
        and measure over the seeds (in the first run's order)."""
        if self.n == 1:
            return self.runs[0].per_query
        table = pd.concat([r.per_query for r in self.runs], ignore_index=True)
        return table.groupby(["query_id", "measure"], sort=False)["value"].mean().reset_index()

    def seed_means(self, measure: str) -> list[float]:
        """Each seed's mean over queries of ``measure`` (NaN where a run lacks it)."""
        out = []
        for run in self.runs:
            values = run.per_query[run.per_query["measure"] == measure]["value"]
            out.append(float(values.mean()) if not values.empty else float("nan"))
        return out

    def spread(self, measure: str) -> tuple[float, float]:
        """(mean over seeds, sample standard deviation over seeds); the std is NaN for one seed."""
        values = np.asarray(self.seed_means(measure), dtype=float)
        return float(values.mean()), (float(values.std(ddof=1)) if values.size > 1 else float("nan"))


def group_runs(runs: list[StoredRun]) -> dict[tuple[str, float], Replicates]:
    """The runs by (system, noise), each cell's runs by seed. Two runs of one cell and seed (a copied
    run directory) are one too many: the latest (``started_at``) is kept, with a warning."""
    chosen: dict[tuple[str, float, int], StoredRun] = {}
    for run in runs:
        key = (run.system, run.noise, run.seed)
        other = chosen.get(key)
        if other is not None:
            keep, drop = sorted([other, run], key=lambda r: str(r.manifest.get("started_at") or ""), reverse=True)
            log.warning("%s and %s are both %s (seed %d, noise %g): reporting the later, %s",
                        other.path, run.path, run.system, run.seed, run.noise, keep.path)
            run = keep
        chosen[key] = run
    grouped: dict[tuple[str, float], Replicates] = {}
    for (system, noise, _), run in sorted(chosen.items(), key=lambda kv: kv[0]):
        grouped.setdefault((system, noise), Replicates(system, noise, [])).runs.append(run)
    return grouped


def by_system(grouped: dict[tuple[str, float], Replicates]) -> dict[str, Replicates]:
    """System → its cell without bitext noise (what the main tables show)."""
    return {system: cell for (system, noise), cell in grouped.items() if noise == 0}


def noisy(grouped: dict[tuple[str, float], Replicates], order: list[str]) -> list[Replicates]:
    """The cells trained on noised bitext, by system (in ``order``, then by name) and rate."""
    rank = {s: i for i, s in enumerate(order)}
    found = [c for (_, noise), c in grouped.items() if noise != 0]
    return sorted(found, key=lambda c: (rank.get(c.system, len(rank)), c.system, c.noise))


def value_text(mean: float, std: float, n: int, digits: int = 3) -> str:
    """``0.700`` for one seed, ``0.700 ± 0.200`` for several (the std: :data:`STD_NOTE`)."""
    if mean is None or pd.isna(mean):
        return "—"
    return f"{mean:.{digits}f}" if n < 2 or pd.isna(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


PER_SEED_COLUMNS = ["system", "seed", "run", *stats.HEAD_TO_HEAD_COLUMNS[1:]]


def per_seed_tests(replicates: dict[str, Replicates], main_values: pd.DataFrame, pairs: list[tuple[str, str]],
                   measure: str, *, n_resamples: int = stats.N_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Each seed's run of ``system`` against ``reference``'s main values (``main_values``: the long table of
    the main cells, ``system, query_id, measure, value``; a reference of several seeds: their average),
    for every (system, reference) of ``pairs``: :func:`bench.results.stats.head_to_head` (Holm over all these
    rows). Columns :data:`PER_SEED_COLUMNS`."""
    frames, asked, labels = [main_values[["system", "query_id", "measure", "value"]]], [], {}
    for system, reference in pairs:
        for run in replicates[system].runs:
            label = f"{run.name}#seed{run.seed}"  # '#' is in no system's name
            if label not in labels:
                labels[label] = (system, run.seed, run.name)
                frames.append(run.per_query.assign(system=label)[["system", "query_id", "measure", "value"]])
            asked.append((label, reference))
    if not asked:
        return pd.DataFrame(columns=PER_SEED_COLUMNS)
    table = stats.head_to_head(pd.concat(frames, ignore_index=True), asked, measure, n_resamples=n_resamples, seed=seed)
    who = table["system"].map(labels)
    table.insert(1, "seed", [w[1] for w in who])
    table.insert(2, "run", [w[2] for w in who])
    table["system"] = [w[0] for w in who]
    return table[PER_SEED_COLUMNS].reset_index(drop=True)
