"""The per-pair report as plain data, built from the complete runs under ``runs/`` and nothing else.

What a report says about its pair (description, languages, low-resource, tuning) comes from the
``pair_info`` the runs' manifests carry, never from the pair registry, so a report of a user's own
pair (``--pair-file``) reads like any other. The ordering constants are presentation only.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bench.results import stats
from bench.errors import BenchError
from bench.results.report.variants import Replicates, by_system, group_runs, noisy, per_seed_tests
from bench.results.runs import StoredRun, load_runs, read_queries
from bench.results.scoring import SYSTEMS_PER_QUERY_COLUMNS

log = logging.getLogger(__name__)

MEASURE_ORDER = ["AP", "nDCG@10", "nDCG@20", "RR@10", "R@100", "R@1000"]
LABELS = {"AP": "MAP"}
DEFAULT_BASELINE = "bm25"
# The study's questions (issue 6), asked whenever both systems ran: what distillation buys over the
# zero-shot encoder under the same scoring, what the OT term adds over sentence-level distillation,
# and how the distilled students compare with the NMT pipeline and with each other's scoring.
HEAD_TO_HEAD = [("optical", "mdense"), ("optical-maxsim", "mdense-maxsim"), ("sdistill", "mdense"),
                ("sdistill-maxsim", "mdense-maxsim"), ("optical", "sdistill"), ("optical-maxsim", "sdistill-maxsim"),
                ("optical", "mdense-maxsim"), ("optical-maxsim", "mdense"), ("optical", "nmt-dense"),
                ("optical-maxsim", "nmt-dense"), ("optical", "bm25-psq"), ("optical-maxsim", "bm25-psq"),
                ("optical-hybrid", "mdense-hybrid"), ("optical-hybrid", "optical-maxsim"),
                ("optical-hybrid", "bm25-psq")]
REPORT_PER_QUERY_COLUMNS = ["pair", *SYSTEMS_PER_QUERY_COLUMNS]  # a report's per-query table


def label(measure: str) -> str:
    return LABELS.get(measure, measure)


def _place(value) -> float:
    return value if isinstance(value, int) and not isinstance(value, bool) else float("inf")


def system_order(runs: list[StoredRun]) -> list[str]:
    """The systems of ``runs`` in the order of the tables: the place their manifests record (bench's systems
    by family, then as declared), then the others (external runs, runs written before manifests recorded
    it) by name."""
    places: dict[str, float] = {}
    for run in runs:
        places[run.system] = min(places.get(run.system, float("inf")), _place(run.manifest.get("place")))
    return sorted(places, key=lambda s: (places[s], s))


def pair_order(runs: list[StoredRun]) -> list[str]:
    """The pairs of ``runs`` in the registry's order (recorded in ``pair_info``), then the others by name."""
    places: dict[str, float] = {}
    for run in runs:
        info = run.manifest.get("pair_info")
        place = _place(info.get("place")) if isinstance(info, dict) else float("inf")
        places[run.pair] = min(places.get(run.pair, float("inf")), place)
    return sorted(places, key=lambda p: (places[p], p))


def ceilings(runs: list[StoredRun]) -> set[str]:
    """The systems of ``runs`` that are ceilings (human translations of the queries), as their manifests say
    (``ceiling``, recorded from the system's declaration; a run written before manifests recorded it is
    taken as a competitor: rerun it to have it shown apart)."""
    return {run.system for run in runs if run.manifest.get("ceiling") is True}


def ordered(names, order: list[str]) -> list[str]:
    """``names`` without repeats, those in ``order`` first (in its order), then the rest by name."""
    rank = {n: i for i, n in enumerate(order)}
    return sorted(dict.fromkeys(names), key=lambda n: (rank.get(n, len(rank)), n))


def fmt(x, digits: int = 3) -> str:
    return "—" if x is None or pd.isna(x) else f"{x:.{digits}f}"


def fmt_p(p) -> str:
    if p is None or pd.isna(p):
        return "—"
    return f"{p:.1e}" if p < 0.001 else f"{p:.3f}"


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def source_path(run: StoredRun, base: Path) -> str:
    """The run's directory relative to ``base`` (the folder holding runs/ and reports/)."""
    try:
        return Path(os.path.relpath(run.path, base)).as_posix()
    except ValueError:  # another drive
        return run.path.as_posix()


# --- what the runs say about their pair -----------------------------------------------------------


@dataclass(frozen=True)
class PairInfo:
    """A pair as its runs' manifests describe it (``pair_info``); the defaults stand for runs written
    before manifests carried it."""

    name: str
    description: str = ""
    query_lang: str = "?"
    doc_lang: str = "?"
    low_resource: bool = False
    tuning: bool = False


def recorded_pair(pair: str, runs: list[StoredRun]) -> PairInfo:
    """The ``pair_info`` of the most recent of ``runs`` that records one (one warning when none does)."""
    recorded = [r for r in runs if isinstance(r.manifest.get("pair_info"), dict)]
    if not recorded:
        log.warning("the runs of %s predate pair_info in their manifests: reporting the pair without a description "
                    "or languages (rerun it to record them)", pair)
        return PairInfo(pair)
    latest = max(recorded, key=lambda r: str(r.manifest.get("started_at") or ""))
    info = latest.manifest["pair_info"]
    return PairInfo(
        name=pair, description=str(info.get("description") or ""), query_lang=str(info.get("query_lang") or "?"),
        doc_lang=str(info.get("doc_lang") or "?"), low_resource=bool(info.get("low_resource", False)),
        tuning=bool(info.get("tuning", False)),
    )


# --- the per-pair report --------------------------------------------------------------------------


@dataclass
class PairReport:
    pair: str
    description: str
    query_lang: str
    doc_lang: str
    runs: list[StoredRun]  # every run reported: the main cells' seeds, then the noise variants
    systems: list[str]
    measures: list[str]
    baseline: str | None
    table: pd.DataFrame  # bench.results.stats.compare
    per_query: pd.DataFrame  # REPORT_PER_QUERY_COLUMNS
    primary: str
    best: str | None = None
    diffs: pd.Series | None = None  # per-query difference best − baseline on the primary measure
    head_to_head: pd.DataFrame | None = None  # bench.results.stats.head_to_head over the HEAD_TO_HEAD pairs that ran
    # what the runs' queries.tsv say: query_id -> {"text", "translation"}, and per system its own translations
    queries: dict[str, dict[str, str]] = field(default_factory=dict)
    system_translations: dict[str, dict[str, str]] = field(default_factory=dict)
    generated_at: str = field(default_factory=now_utc)
    # the seeds of each system (noise 0; report.variants): the table's values are their per-query average
    replicates: dict[str, Replicates] = field(default_factory=dict)
    per_seed: pd.DataFrame | None = None  # each seed of a several-seed system against the baseline (primary)
    per_seed_head_to_head: pd.DataFrame | None = None  # each seed of a HEAD_TO_HEAD system against its reference
    ceilings: set[str] = field(default_factory=set)  # human-translation systems: shown apart, never the best
    noise: list[Replicates] = field(default_factory=list)  # runs on noised bitext: their own section

    def seeds(self, system: str) -> int:
        return self.replicates[system].n if system in self.replicates else 1

    @property
    def several_seeds(self) -> list[str]:
        return [s for s in self.systems if self.seeds(s) > 1]

    def row(self, system: str, measure: str) -> pd.Series | None:
        rows = self.table[(self.table["system"] == system) & (self.table["measure"] == measure)]
        return None if rows.empty else rows.iloc[0]

    @property
    def n_queries(self) -> int:
        return int(self.per_query["query_id"].nunique())


def build_pair_report(pair: str, runs_root: Path, baseline: str | None = None, *,
                      n_resamples: int = stats.N_RESAMPLES, seed: int = 0) -> PairReport:
    """The report of ``pair``: one row per system at noise 0 (its seeds averaged, see :mod:`.variants`),
    the seeds one by one, and the runs on noised bitext apart."""
    runs = load_runs(runs_root, pair)
    if not runs:
        raise BenchError(f"no complete run of pair {pair} under {runs_root}", f"run `bench run --pair {pair}` first")
    grouped = group_runs(runs)
    main = by_system(grouped)
    if not main:
        raise BenchError(f"every run of pair {pair} under {runs_root} is on noised bitext: nothing to compare them "
                         "with",
                         f"run `bench run --pair {pair}` (no --bitext-noise) for the systems' plain runs")
    systems = ordered(main, system_order(runs))
    per_query = pd.concat(
        [main[s].per_query().assign(pair=pair, system=s) for s in systems], ignore_index=True,
    )[REPORT_PER_QUERY_COLUMNS]
    measures = ordered(per_query["measure"], MEASURE_ORDER)
    if baseline is None:
        baseline = DEFAULT_BASELINE if DEFAULT_BASELINE in systems else systems[0]
    elif baseline not in systems:
        raise BenchError(f"baseline {baseline!r} has no complete run on {pair}", "choose one of: " + ", ".join(systems))
    if len(systems) == 1:
        baseline = None
    table = stats.compare(per_query, baseline, measures, n_resamples=n_resamples, seed=seed)
    info = recorded_pair(pair, runs)
    variants = noisy(grouped, system_order(runs))
    report = PairReport(
        pair=pair, description=info.description, query_lang=info.query_lang, doc_lang=info.doc_lang,
        runs=[r for s in systems for r in main[s].runs] + [r for v in variants for r in v.runs], systems=systems,
        measures=measures, baseline=baseline, table=table, per_query=per_query,
        primary="AP" if "AP" in measures else measures[0], replicates=main, noise=variants,
        ceilings=ceilings(runs) & set(systems),
    )
    # a ceiling is not a competitor; a run stored with other measures has no value of the primary one
    scored = [s for s in systems if s != baseline and report.row(s, report.primary) is not None]
    candidates = [s for s in scored if s not in report.ceilings] or scored
    if baseline is not None and candidates and report.row(baseline, report.primary) is not None:
        report.best = max(candidates, key=lambda s: report.row(s, report.primary)["mean"])
        paired = stats.paired_values(per_query, report.best, baseline, report.primary)
        report.diffs = (paired["system"] - paired["other"]).sort_values(ascending=False, kind="stable")
    report.queries, report.system_translations = query_texts([main[s].runs[0] for s in systems])
    asked = [(a, b) for a, b in HEAD_TO_HEAD if a in main and b in main]
    if asked:
        report.head_to_head = stats.head_to_head(per_query, asked, report.primary, n_resamples=n_resamples, seed=seed)
    several = report.several_seeds
    if several:
        tests = dict(n_resamples=n_resamples, seed=seed)
        report.per_seed = per_seed_tests(main, per_query, [(s, baseline) for s in several if baseline not in (None, s)],
                                         report.primary, **tests)
        seeded = [(a, b) for a, b in asked if a in several]
        if seeded:
            report.per_seed_head_to_head = per_seed_tests(main, per_query, seeded, report.primary, **tests)
    return report


def query_texts(runs: list[StoredRun]) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """The query texts and human translations the runs stored (``queries.tsv``; the first run that has a
    query wins), and each system's own translations where it translated."""
    queries: dict[str, dict[str, str]] = {}
    own: dict[str, dict[str, str]] = {}
    for run in runs:
        for qid, row in read_queries(run.path).items():
            known = queries.setdefault(qid, {"text": row["text"], "translation": row["translation"]})
            if not known["translation"] and row["translation"]:
                known["translation"] = row["translation"]
            if row["system_translation"]:
                own.setdefault(run.system, {})[qid] = row["system_translation"]
    return queries, own
