"""The Python API, for notebooks and scripts: run systems, score runs made elsewhere, fuse runs, read the results.

- :func:`run` runs systems on a pair like ``bench run`` (the same checks, the same stored runs under
  ``runs``, a report when ``reports`` is given) and returns their :class:`Results`;
- :func:`evaluate` scores a run made elsewhere (a run file, TREC or MS MARCO, plain or gzip-compressed, or a
  ``{query_id: {doc_id: score}}`` dict) on a pair's qrels without storing anything;
- :func:`fuse` fuses stored runs of a pair (RRF or CombSUM) into a new stored run like ``bench fuse``;
- :func:`load` reads the stored runs of a pair (nothing is run again);
- :class:`Results`: ``.table()`` (systems × measures, mean and 95% bootstrap interval), ``.per_query``
  (long form), ``.compare(baseline)`` (the head-to-head table: deltas, wins/ties/losses, paired tests,
  Holm), ``.top(system, query_id)`` (a query's best documents with their relevance and text); results of
  the same pair add up (``bench.run(...) + bench.evaluate(...)``).

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
from bench.experiment.plan import listed, measure_names, plan_run, positive_int
from bench.infra.store import check_dir
from bench.methods.retrieve.ranking import Run
from bench.results import stats
from bench.results.order import ranked
from bench.results.runs import RUN_FILE, StoredRun, load_run, load_runs, read_trec
from bench.results.scoring import SYSTEMS_PER_QUERY_COLUMNS, checked_run, per_query

log = logging.getLogger(__name__)

TOP_COLUMNS = ["rank", "doc_id", "score", "relevance", "title", "text"]


@dataclass
class Results:
    """Scores of one or more systems on one pair, per query (:attr:`per_query`: system, query_id, measure,
    value)."""

    pair: str
    _scores: pd.DataFrame = field(repr=False)  # the long table behind per_query
    paths: dict[str, Path] = field(default_factory=dict)  # system -> its stored run directory
    reports: list[Path] = field(default_factory=list)  # the report files written (reports=)
    _runs: dict[str, Run] = field(default_factory=dict, repr=False)
    _pair: Pair | None = field(default=None, repr=False)  # the pair itself: its queries, qrels and documents

    @property
    def systems(self) -> list[str]:
        return list(dict.fromkeys(self._scores["system"]))

    @property
    def measures(self) -> list[str]:
        return list(dict.fromkeys(self._scores["measure"]))

    @property
    def per_query(self) -> pd.DataFrame:
        """The long table: one row per system, judged query and measure (an unanswered query scores 0); a copy."""
        return self._scores[SYSTEMS_PER_QUERY_COLUMNS].reset_index(drop=True).copy()

    def table(self, *, confidence: float = stats.CONFIDENCE, n_resamples: int = stats.N_RESAMPLES,
              seed: int = 0) -> pd.DataFrame:
        """Systems (rows) × measures: ``mean``, ``ci_low`` and ``ci_high`` (percentile bootstrap over
        queries) under each measure (columns: a MultiIndex ``(measure, statistic)``)."""
        rows = stats.compare(self._scores, None, self.measures, n_resamples=n_resamples, seed=seed,
                             confidence=confidence)
        wide = rows.pivot(index="system", columns="measure", values=["mean", "ci_low", "ci_high"])
        wide = wide.swaplevel(0, 1, axis=1)
        columns = pd.MultiIndex.from_product([self.measures, ["mean", "ci_low", "ci_high"]], names=["measure", None])
        wide = wide.reindex(index=self.systems, columns=columns).astype(float)
        wide.index.name = "system"
        return wide

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
        tables = [stats.head_to_head(self._scores, [(s, baseline) for s in others], m, n_resamples=n_resamples,
                                     seed=seed, alpha=alpha) for m in (measures or self.measures)]
        return pd.concat(tables, ignore_index=True)

    def run(self, system: str) -> Run:
        """The run of ``system``: ``{query_id: {doc_id: score}}`` (read from its stored ``run.trec``)."""
        if system not in self._runs:
            if system not in self.paths:
                raise BenchError(f"no run of {system!r} in these results", "one of: " + ", ".join(self.systems))
            self._runs[system] = read_trec(self.paths[system] / RUN_FILE)
        return self._runs[system]

    def top(self, system: str, query_id: str, k: int = 10) -> pd.DataFrame:
        """The ``k`` best documents of a query in the run of ``system`` (ties by doc id, as in TREC files), one row
        each: ``rank`` (from 1), ``doc_id``, ``score``, ``relevance`` (its qrel, 0 when unjudged), ``title`` and
        ``text`` (from the collection; empty for a document that is not in it). A query the system did not
        answer has no rows; a system or query id that is not in the results is an error."""
        run = self.run(system)
        k = positive_int("k", k)
        pair = self._resolved_pair()
        collection = pair.collection()
        known = [q.query_id for q in collection.queries]
        if query_id not in set(known):
            raise BenchError(f"no query {query_id!r} in the results of {system}: not a query of {pair.name}",
                             f"give a query id of the pair (e.g. {', '.join(known[:3])})")
        best = ranked(run.get(query_id, {}), k)
        texts = _documents(collection, {doc for doc, _ in best})
        judged = collection.qrels.get(query_id, {})
        rows = [(rank, doc, score, judged.get(doc, 0), *texts.get(doc, ("", "")))
                for rank, (doc, score) in enumerate(best, 1)]
        return pd.DataFrame(rows, columns=TOP_COLUMNS).astype({"rank": int, "score": float, "relevance": int})

    def _resolved_pair(self) -> Pair:
        if self._pair is None:
            self._pair = resolve_pair(self.pair)
        return self._pair

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
        return Results(self.pair, pd.concat([self._scores, other._scores], ignore_index=True),
                       {**self.paths, **other.paths}, [*self.reports, *other.reports], {**self._runs, **other._runs},
                       self._pair or other._pair)

    def __repr__(self) -> str:
        means = self._scores.groupby(["system", "measure"], sort=False)["value"].mean()
        body = ", ".join(f"{s} {m} {v:.4f}" for (s, m), v in means.items())
        return f"Results({self.pair}: {body})"


def _documents(collection, doc_ids: set[str]) -> dict[str, tuple[str, str]]:
    """(title, text) of each of ``doc_ids`` that the collection holds (one pass over its documents, stopped
    once all are found)."""
    found: dict[str, tuple[str, str]] = {}
    if not doc_ids:
        return found
    for doc in collection.iter_docs():
        if doc.doc_id in doc_ids:
            found[doc.doc_id] = (doc.title or "", doc.text or "")
            if len(found) == len(doc_ids):
                break
    return found


def run(pair: str | Path | Pair, systems: str | Sequence[str] | None = None, runs: str | Path = "runs",
        reports: str | Path | None = None, seed: int = 0, depth: int = 1000, *,
        measures: str | Sequence[str] | None = None, baseline: str | None = None, force: bool = False,
        **options: Any) -> Results:
    """Run ``systems`` (names; default: every system that applies) on ``pair`` like ``bench run``.

    ``options`` are run options (:class:`bench.systems.options.RunOptions`: ``encoder=``, ``rerank=``, ...); an
    unknown one, or one that no chosen system reads, is an error before anything runs. ``measures``
    (ir_measures names) replace the pair's. Runs are stored under ``runs/<pair>/<system>/``; with
    ``reports``, the pair's report is written there too (against ``baseline``). A system whose stored run was
    made from identical inputs is not run again (:mod:`bench.experiment.identity`) unless ``force``."""
    if baseline is not None and reports is None:
        raise BenchError("baseline= is the report's baseline, and no report is written", "give reports= too, "
                         "or use results.compare(baseline)")
    if not isinstance(force, bool):
        raise BenchError(f"force must be True or False, not {force!r}")
    plan = plan_run(pair, systems, options=options, depth=depth, seed=seed, measures=measures, runs=runs,
                    reports=reports, baseline=baseline, force=force)
    done = plan.execute()
    return _stored(plan.pair, {result.system: result.path for result in done}, plan.write_report())


def _stored(pair: Pair, paths: Mapping[str, Path], reports: list[Path]) -> Results:
    """The :class:`Results` of the runs just written at ``paths`` (system -> run directory)."""
    loaded = {}
    for system, path in paths.items():
        stored = load_run(path)
        if stored is None:  # pragma: no cover - bench has just written it
            raise BenchError(f"the run {path} just written cannot be read", "check the disk")
        loaded[system] = stored
    return _results(pair, loaded, reports)


def _results(pair: Pair, stored: Mapping[str, StoredRun], reports: list[Path] = ()) -> Results:
    tables = [run.per_query.assign(system=system) for system, run in stored.items()]
    return Results(pair.name, pd.concat(tables, ignore_index=True)[SYSTEMS_PER_QUERY_COLUMNS],
                   {system: run.path for system, run in stored.items()}, list(reports), _pair=pair)


def evaluate(pair: str | Path | Pair, run: str | Path | Mapping[str, Mapping[str, float]], *,
             name: str | None = None, measures: str | Sequence[str] | None = None) -> Results:
    """Score a run made elsewhere on ``pair``: the path of a run file (TREC or MS MARCO, plain or gzip-compressed,
    read as ``bench eval`` reads it: :func:`bench.experiment.external.read_run`), or a dict
    ``{query_id: {doc_id: score}}``. Nothing is stored. ``name`` is its system name in the results
    (default: the file's name without suffixes, or ``run``); ``measures`` replace the pair's."""
    from bench.experiment.external import read_run

    pair = resolve_pair(pair)
    collection = pair.collection()
    known = {q.query_id for q in collection.queries}
    if isinstance(run, (str, Path)):
        path = Path(run)
        name = name or (path.parent.name if path.name == RUN_FILE else Path(path.name.removesuffix(".gz")).stem)
        run = checked_run(read_run(path).run, known, pair.name, f"run file {path}")
    else:
        name = name or "run"
        run = checked_run(run, known, pair.name, f"run {name!r}", coerce_ids=True)
    table = per_query(run, collection.qrels, measure_names(measures) or pair.measures)
    return Results(pair.name, table.assign(system=name)[SYSTEMS_PER_QUERY_COLUMNS], _runs={name: run}, _pair=pair)


def load(pair: str | Path | Pair, runs: str | Path = "runs", systems: str | Sequence[str] | None = None) -> Results:
    """The stored runs of ``pair`` under ``runs`` (``runs/<pair>/<run>/``, as ``bench run``, ``bench eval`` and
    ``bench fuse`` write them) as :class:`Results`, without running anything: ``systems`` (run names, e.g.
    ``bm25`` or ``optical+seed1``; default every stored run of the pair, in the order of the reports)."""
    pair = resolve_pair(pair)
    root = Path(runs)
    if not root.is_dir():
        raise BenchError(f"runs {root}: no such directory", "give the directory the runs were stored in (runs=)")
    found = {run.name: run for run in load_runs(root, pair.name)}
    if not found:
        raise BenchError(f"no stored run of {pair.name} under {root}", f"run systems first: bench.run({pair.name!r})")
    names = [str(n) for n in listed(systems)]
    if systems is not None and not names:
        raise BenchError(f"systems={systems!r} names no run", "give run names, or leave systems out for every run")
    missing = [n for n in names if n not in found]
    if missing:
        raise BenchError(f"no stored run {missing[0]!r} of {pair.name} under {root}",
                         "stored runs: " + ", ".join(found))
    if not names:
        from bench.results.report.model import system_order

        order = system_order(list(found.values()))
        names = sorted(found, key=lambda n: (order.index(found[n].system), n))
    return _results(pair, {n: found[n] for n in dict.fromkeys(names)})


def fuse(pair: str | Path | Pair, inputs: str | Sequence[str], method: str, *, runs: str | Path = "runs",
         weights: str | Sequence[float] | None = None, rrf_k: float | None = None, name: str | None = None,
         depth: int = 1000, reports: str | Path | None = None) -> Results:
    """Fuse the stored runs ``inputs`` of ``pair`` like ``bench fuse`` (:mod:`bench.experiment.fuse`): ``method``
    ``"rrf"`` (``sum w / (rrf_k + rank)``, ``rrf_k`` 60 by default) or ``"combsum"`` (``sum w x`` the min-max
    normalised score), ``weights`` one per input (default 1 each); the fused run is stored as ``name``
    (default ``METHOD-INPUT-INPUT...``) under ``runs`` and returned as :class:`Results` (with ``reports``, the
    pair's report is written there too). Every check comes before anything is written."""
    from bench.experiment.fuse import plan_fusion

    pair = resolve_pair(pair)
    plan = plan_fusion(pair, runs, inputs, method, weights=weights, k=rrf_k, name=name, depth=depth)
    if reports is not None:
        check_dir(Path(reports), "reports")
    result = plan.execute()
    written = []
    if reports is not None:
        from bench.experiment.reporting import write_report

        written = write_report(pair.name, plan.runs, Path(reports), given=pair)
    return _stored(pair, {result.system: result.path}, written)
