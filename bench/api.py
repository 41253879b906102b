"""The Python API, for notebooks and scripts: run systems, score runs made elsewhere, read the results.

- :func:`run` runs systems on a pair like ``bench run`` (the same checks, the same stored runs under
  ``runs``, a report when ``reports`` is given) and returns their :class:`Results`;
- :func:`evaluate` scores a run made elsewhere (a TREC file or a ``{query_id: {doc_id: score}}`` dict)
  on a pair's qrels without storing anything;
- :class:`Results`: ``.table()`` (systems × measures, mean and 95% bootstrap interval), ``.perquery()``
  (long form), ``.compare(baseline)`` (the head-to-head table: deltas, wins/ties/losses, paired tests,
  Holm); results of the same pair add up (``bench.run(...) + bench.evaluate(...)``).

A pair is a built-in pair's name, the path of a pair file, or a :class:`bench.data.pairs.Pair`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from bench.data.pair_ref import resolve_pair
from bench.data.pairs import Pair
from bench.errors import BenchError
from bench.experiment.plan import measure_names, plan_run
from bench.methods.retrieve.ranking import Run
from bench.results import stats
from bench.results.runs import RUN_FILE, load_run, read_trec
from bench.results.scoring import SYSTEMS_PER_QUERY_COLUMNS, checked_run, per_query

log = logging.getLogger(__name__)



@dataclass
class Results:
    """Scores of one or more systems on one pair, per query (``per_query``: system, query_id, measure, value)."""

    pair: str
    per_query: pd.DataFrame
    paths: dict[str, Path] = field(default_factory=dict)  # system -> its stored run directory (bench.run)
    reports: list[Path] = field(default_factory=list)  # the report files written (bench.run with reports=)
    _runs: dict[str, Run] = field(default_factory=dict, repr=False)

    @property
    def systems(self) -> list[str]:
        return list(dict.fromkeys(self.per_query["system"]))

    @property
    def measures(self) -> list[str]:
        return list(dict.fromkeys(self.per_query["measure"]))

    def table(self, *, confidence: float = stats.CONFIDENCE, n_resamples: int = stats.N_RESAMPLES,
              seed: int = 0) -> pd.DataFrame:
        """Systems (rows) × measures: ``mean``, ``ci_low`` and ``ci_high`` (percentile bootstrap over
        queries) under each measure (columns: a MultiIndex ``(measure, statistic)``)."""
        rows = stats.compare(self.per_query, None, self.measures, n_resamples=n_resamples, seed=seed,
                             confidence=confidence)
        wide = rows.pivot(index="system", columns="measure", values=["mean", "ci_low", "ci_high"])
        wide = wide.swaplevel(0, 1, axis=1)
        columns = pd.MultiIndex.from_product([self.measures, ["mean", "ci_low", "ci_high"]], names=["measure", None])
        wide = wide.reindex(index=self.systems, columns=columns).astype(float)
        wide.index.name = "system"
        return wide

    def perquery(self) -> pd.DataFrame:
        """The long table: one row per system, judged query and measure (an unanswered query scores 0)."""
        return self.per_query[SYSTEMS_PER_QUERY_COLUMNS].reset_index(drop=True).copy()

    def compare(self, baseline: str, measures: Sequence[str] | None = None, *, n_resamples: int = stats.N_RESAMPLES,
                seed: int = 0, alpha: float = stats.ALPHA) -> pd.DataFrame:
        """Every other system against ``baseline`` on each measure (:func:`bench.results.stats.head_to_head`):
        means, ``delta``, wins/ties/losses, randomization and t-test p-values, Holm over the systems."""
        if baseline not in self.systems:
            raise BenchError(f"baseline {baseline!r} is not among the results' systems",
                             "one of: " + ", ".join(self.systems))
        others = [s for s in self.systems if s != baseline]
        if not others:
            raise BenchError(f"nothing to compare with {baseline!r}: it is the only system",
                             "add runs: results + other")
        tables = [stats.head_to_head(self.per_query, [(s, baseline) for s in others], m, n_resamples=n_resamples,
                                     seed=seed, alpha=alpha) for m in (measures or self.measures)]
        return pd.concat(tables, ignore_index=True)

    def run(self, system: str) -> Run:
        """The run of ``system``: ``{query_id: {doc_id: score}}`` (read from its stored ``run.trec``)."""
        if system not in self._runs:
            if system not in self.paths:
                raise BenchError(f"no run of {system!r} in these results", "one of: " + ", ".join(self.systems))
            self._runs[system] = read_trec(self.paths[system] / RUN_FILE)
        return self._runs[system]

    def top(self, system: str, query_id: str, k: int = 10) -> list[str]:
        """The ``k`` best documents of a query (ties by doc id, as in TREC files)."""
        run = self.run(system)
        if query_id not in run and query_id not in set(self.per_query["query_id"]):
            raise BenchError(f"no query {query_id!r} in the results of {system}",
                             "give a query id of the pair (results.perquery() lists the judged ones)")
        docs = run.get(query_id, {})
        return [d for d, _ in sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]

    def __add__(self, other: "Results") -> "Results":
        if not isinstance(other, Results):
            return NotImplemented
        if other.pair != self.pair:
            raise BenchError(f"cannot add results of {other.pair} to results of {self.pair}",
                             "compare runs of one pair")
        clash = sorted(set(self.systems) & set(other.systems))
        if clash:
            raise BenchError(f"both results have a system {clash[0]!r}",
                             "give the run another name (evaluate(..., name=))")
        return Results(self.pair, pd.concat([self.per_query, other.per_query], ignore_index=True),
                       {**self.paths, **other.paths}, [*self.reports, *other.reports], {**self._runs, **other._runs})

    def __repr__(self) -> str:
        means = self.per_query.groupby(["system", "measure"], sort=False)["value"].mean()
        body = ", ".join(f"{s} {m} {v:.4f}" for (s, m), v in means.items())
        return f"Results({self.pair}: {body})"


def run(pair: str | Path | Pair, systems: str | Sequence[str] | None = None, runs: str | Path = "runs",
        reports: str | Path | None = None, seed: int = 0, depth: int = 1000, *,
        measures: str | Sequence[str] | None = None, baseline: str | None = None, **options: Any) -> Results:
    """Run ``systems`` (names; default: every system that applies) on ``pair`` like ``bench run``.

    ``options`` are run options (:class:`bench.systems.options.RunOptions`: ``encoder=``, ``rerank=``, ...); an
    unknown one, or one that no chosen system reads, is an error before anything runs. ``measures``
    (ir_measures names) replace the pair's. Runs are stored under ``runs/<pair>/<system>/``; with
    ``reports``, the pair's report is written there too (against ``baseline``)."""
    if baseline is not None and reports is None:
        raise BenchError("baseline= is the report's baseline, and no report is written", "give reports= too, "
                         "or use results.compare(baseline)")
    plan = plan_run(pair, systems, options=options, depth=depth, seed=seed, measures=measures, runs=runs,
                    reports=reports, baseline=baseline)
    done = plan.execute()
    tables, paths = [], {}
    for result in done:
        stored = load_run(result.path)
        if stored is None:  # pragma: no cover - the runner has just written it
            raise BenchError(f"the run {result.path} just written cannot be read", "check the disk")
        tables.append(stored.per_query.assign(system=result.system))
        paths[result.system] = result.path
    written = plan.write_report()
    return Results(plan.pair.name, pd.concat(tables, ignore_index=True)[SYSTEMS_PER_QUERY_COLUMNS], paths, written)


def evaluate(pair: str | Path | Pair, run: str | Path | Mapping[str, Mapping[str, float]], *,
             name: str | None = None, measures: str | Sequence[str] | None = None) -> Results:
    """Score a run made elsewhere on ``pair``: the path of a TREC run file, or a dict
    ``{query_id: {doc_id: score}}``. Nothing is stored. ``name`` is its system name in the results
    (default: the file's name without suffix, or ``run``); ``measures`` replace the pair's."""
    pair = resolve_pair(pair)
    collection = pair.collection()
    known = {q.query_id for q in collection.queries}
    if isinstance(run, (str, Path)):
        path = Path(run)
        name = name or (path.parent.name if path.name == RUN_FILE else path.stem)
        run = checked_run(read_trec(path), known, pair.name, f"run file {path}")
    else:
        name = name or "run"
        run = checked_run(run, known, pair.name, f"run {name!r}", coerce_ids=True)
    table = per_query(run, collection.qrels, measure_names(measures) or pair.measures)
    return Results(pair.name, table.assign(system=name)[SYSTEMS_PER_QUERY_COLUMNS], _runs={name: run})
