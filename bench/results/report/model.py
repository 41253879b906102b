"""The per-pair report as plain data, built from the complete runs under ``runs/`` and nothing else.

What a report says about its pair (description, languages, low-resource, tuning) comes from the
``pair_info`` the runs' manifests carry, never from the pair registry, so a report of a user's own
pair (``--pair-file``) reads like any other. The ordering constants are presentation only.

A report may be narrowed to chosen systems (so Holm's family holds those only) and given chosen measures:
a measure a run was not stored with is computed from its ``run.trec`` and the pair's qrels, which the
caller loads (a report reads runs only) and passes down as a function of the runs that need them. The
numbers are computed in memory, for the report: a stored run's files are never rewritten. Likewise, given
the pair's documents (:data:`bench.results.report.losses.DocumentsLoader`), the report shows for its largest
losses the passages the best system ranked above the first relevant document (:mod:`.losses`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pandas as pd

from bench.results import stats
from bench.errors import BenchError, did_you_mean
from bench.results.report.losses import DocumentsLoader, Losses, loss_passages
from bench.results.report.variants import Replicates, by_system, group_runs, noisy, per_seed_tests
from bench.results.runs import RUN_FILE, StoredRun, load_runs, read_queries, read_trec
from bench.results.scoring import SYSTEMS_PER_QUERY_COLUMNS, parse_measures, per_query

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
# the qrels of a pair's runs, loaded by the caller for the runs that need re-scoring: (pair, runs) -> qrels
QrelsLoader = Callable[[str, list[StoredRun]], Mapping[str, Mapping[str, int]]]
ANALYSIS_ROWS = 5  # the largest gains and the largest losses shown with their queries


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


def origins(runs: list[StoredRun]) -> dict[str, str]:
    """System -> ``external`` (a run made elsewhere, scored by bench: ``external`` in its manifest) or ``plugin``
    (a system of another package: its spec names the package, ``plugin``) for the systems of ``runs`` that are
    one of them, as their manifests say."""
    found = {}
    for run in runs:
        spec = run.manifest.get("spec")
        if run.manifest.get("external") is True:
            found[run.system] = "external"
        elif isinstance(spec, dict) and isinstance(spec.get("plugin"), str):
            found[run.system] = "plugin"
    return found


def plugin_packages(runs: list[StoredRun]) -> dict[str, str]:
    """Plugin system -> the package (``name==version``) its manifest names."""
    return {run.system: run.manifest["spec"]["plugin"] for run in runs
            if origins([run]).get(run.system) == "plugin"}


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


def fmt_p(p, n_resamples: int | None = None) -> str:
    """A p-value to 3 decimals (``1.2e-04`` below 0.001); with ``n_resamples``, a randomization p-value at its
    floor (:func:`bench.results.stats.at_floor`) as the bound it is (:func:`floor_text`)."""
    if p is None or pd.isna(p):
        return "—"
    if n_resamples is not None and stats.at_floor(p, n_resamples):
        return floor_text(n_resamples)
    return f"{p:.1e}" if p < 0.001 else f"{p:.3f}"


def floor_text(n_resamples: int) -> str:
    """The randomization p-value at its floor ``1 / (n_resamples + 1)`` as a bound by a power of ten:
    ``< 1e-4`` for 10,000 resamples (1/10,001), ``≤ 1e-3`` for 999 (1/1,000 exactly)."""
    k = len(str(int(n_resamples) + 1)) - 1  # 10**k <= n_resamples + 1 < 10**(k + 1)
    return f"{'≤' if int(n_resamples) + 1 == 10 ** k else '<'} 1e-{k}"


def floor_note(n_resamples: int) -> str:
    """What :func:`floor_text` means, for a table's legend."""
    return (f"p randomization {floor_text(n_resamples)}: none of the {n_resamples:,} random sign assignments "
            f"reached the observed difference, so the estimate is at its floor 1/({n_resamples:,} + 1) = "
            f"{stats.randomization_floor(n_resamples):.1e}, a bound on p rather than its value.")


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
    n_resamples: int = stats.N_RESAMPLES  # of the randomization tests (their p-values' floor)
    origins: dict[str, str] = field(default_factory=dict)  # system -> "external" or "plugin" (see origins())
    packages: dict[str, str] = field(default_factory=dict)  # plugin system -> its package (name==version)
    rescored: dict[str, list[str]] = field(default_factory=dict)  # run -> the measures computed from its run.trec
    passages: Losses | None = None  # the largest losses, with the documents above the first relevant one

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


def chosen_runs(runs: list[StoredRun], systems: Sequence[str], baseline: str | None, pair: str,
                runs_root: Path) -> list[StoredRun]:
    """The runs of ``systems`` (with their seeds and noise variants); a name without a run, or a baseline not
    among ``systems``, is an error."""
    names = list(dict.fromkeys(systems))
    known = sorted({r.system for r in runs})
    for name in names:
        if name not in known:
            raise BenchError(f"no run of system {name!r} on {pair} under {runs_root}",
                             did_you_mean(name, known, "choose among: " + ", ".join(known)))
    if baseline is not None and baseline not in names:
        raise BenchError(f"baseline {baseline!r} is not among the chosen systems ({', '.join(names)})",
                         "add it to the systems, or choose one of them as the baseline")
    return [r for r in runs if r.system in names]


def rescore(pair: str, runs: list[StoredRun], measures: list[str],
            qrels: QrelsLoader | None) -> tuple[list[StoredRun], dict[str, list[str]]]:
    """``runs`` with their per-query tables on ``measures`` only: a measure a run was stored without is scored
    from its ``run.trec`` on ``qrels(pair, the runs that need it)`` (:func:`bench.results.scoring.per_query`),
    in memory; the run's files stay as they are. Also each re-scored run's name -> the measures computed."""
    missing = {run.name: [m for m in measures if m not in set(run.per_query["measure"])] for run in runs}
    needing = [run for run in runs if missing[run.name]]
    if needing and qrels is None:
        first = needing[0]
        raise BenchError(f"run {first.name} of {pair} was not stored with {', '.join(missing[first.name])}, and "
                         "no qrels were given to score it", "pass the pair's qrels (bench report loads them)")
    judged = qrels(pair, needing) if needing else {}
    out, done = [], {}
    for run in runs:
        table = run.per_query[run.per_query["measure"].isin(measures)]
        if missing[run.name]:
            scored = per_query(read_trec(run.path / RUN_FILE), judged, missing[run.name])
            table = pd.concat([table, scored], ignore_index=True)
            done[run.name] = missing[run.name]
            log.info("scored %s of %s with %s from its %s (in memory: its files are unchanged)", run.name, pair,
                     ", ".join(missing[run.name]), RUN_FILE)
        out.append(replace(run, per_query=table.reset_index(drop=True)))
    return out, done


def natural_rows(values: pd.DataFrame, systems: list[str], measures: list[str]) -> pd.DataFrame:
    """The long per-query table by system and measure (in the order of ``systems`` and ``measures``), then by
    query id in natural order (:func:`bench.results.stats.query_key`)."""
    system_rank, measure_rank = {s: i for i, s in enumerate(systems)}, {m: i for i, m in enumerate(measures)}
    keys = [(system_rank[s], measure_rank[m], stats.query_key(q))
            for s, m, q in zip(values["system"], values["measure"], values["query_id"])]
    return values.iloc[sorted(range(len(keys)), key=keys.__getitem__)].reset_index(drop=True)


def build_pair_report(pair: str, runs_root: Path, baseline: str | None = None, *,
                      systems: Sequence[str] | None = None, measures: Sequence[str] | None = None,
                      qrels: QrelsLoader | None = None, documents: DocumentsLoader | None = None,
                      n_resamples: int = stats.N_RESAMPLES, seed: int = 0) -> PairReport:
    """The report of ``pair``: one row per system at noise 0 (its seeds averaged, see :mod:`.variants`),
    the seeds one by one, and the runs on noised bitext apart.

    ``systems`` narrows it to those systems' runs (an unknown name is an error; Holm's family is theirs);
    ``measures`` (ir_measures names, already checked) are its measures in that order, the first the primary:
    a run stored without one of them is scored from its ``run.trec`` on the qrels ``qrels(pair, runs)`` gives,
    in memory (:func:`rescore`). With ``documents``, the largest losses of the best system against the baseline
    get the passages it ranked above the first relevant document (:func:`.losses.loss_passages`; none where the
    loader has nothing for the runs)."""
    # a run without file hashes is trusted only once its values are derived again on the qrels (runs.load_run)
    runs = load_runs(runs_root, pair, qrels=(lambda run: qrels(run.pair, [run])) if qrels else None)
    if not runs:
        raise BenchError(f"no complete run of pair {pair} under {runs_root}", f"run `bench run --pair {pair}` first")
    if systems is not None:
        runs = chosen_runs(runs, systems, baseline, pair, runs_root)
    rescored: dict[str, list[str]] = {}
    if measures is not None:
        measures = list(dict.fromkeys(str(m) for m in parse_measures(measures)))  # ir_measures' canonical names
        runs, rescored = rescore(pair, runs, measures, qrels)
    grouped = group_runs(runs)
    main = by_system(grouped)
    if not main:
        raise BenchError(f"every run of pair {pair} under {runs_root} is on noised bitext: nothing to compare them "
                         "with",
                         f"run `bench run --pair {pair}` (no --bitext-noise) for the systems' plain runs")
    names = ordered(main, system_order(runs))
    values = pd.concat(
        [main[s].per_query().assign(pair=pair, system=s) for s in names], ignore_index=True,
    )[REPORT_PER_QUERY_COLUMNS]
    if measures is None:
        measures = ordered(values["measure"], MEASURE_ORDER)
        primary = "AP" if "AP" in measures else measures[0]
    else:
        measures = list(measures)
        primary = measures[0]  # the user's first
    values = natural_rows(values, names, measures)
    if baseline is None:
        baseline = DEFAULT_BASELINE if DEFAULT_BASELINE in names else names[0]
    elif baseline not in names:
        raise BenchError(f"baseline {baseline!r} has no complete run on {pair}", "choose one of: " + ", ".join(names))
    if len(names) == 1:
        baseline = None
    table = stats.compare(values, baseline, measures, n_resamples=n_resamples, seed=seed)
    info = recorded_pair(pair, runs)
    variants = noisy(grouped, system_order(runs))
    report = PairReport(
        pair=pair, description=info.description, query_lang=info.query_lang, doc_lang=info.doc_lang,
        runs=[r for s in names for r in main[s].runs] + [r for v in variants for r in v.runs], systems=names,
        measures=measures, baseline=baseline, table=table, per_query=values,
        primary=primary, replicates=main, noise=variants, ceilings=ceilings(runs) & set(names), n_resamples=n_resamples,
        origins=origins(runs), packages=plugin_packages(runs), rescored=rescored,
    )
    # a ceiling is not a competitor; a run stored with other measures has no value of the primary one
    scored = [s for s in names if s != baseline and report.row(s, report.primary) is not None]
    candidates = [s for s in scored if s not in report.ceilings] or scored
    if baseline is not None and candidates and report.row(baseline, report.primary) is not None:
        report.best = max(candidates, key=lambda s: report.row(s, report.primary)["mean"])
        paired = stats.paired_values(values, report.best, baseline, report.primary)
        report.diffs = (paired["system"] - paired["other"]).sort_values(ascending=False, kind="stable")
        if documents is not None:
            losses = {str(q): float(report.diffs[q]) for q in largest_changes(report.diffs)[1]}
            report.passages = loss_passages(main[report.best].runs[0], main[baseline].runs[0], losses, documents)
    report.queries, report.system_translations = query_texts([main[s].runs[0] for s in names])
    asked = [(a, b) for a, b in HEAD_TO_HEAD if a in main and b in main]
    if asked:
        report.head_to_head = stats.head_to_head(values, asked, report.primary, n_resamples=n_resamples, seed=seed)
    several = report.several_seeds
    if several:
        tests = dict(n_resamples=n_resamples, seed=seed)
        report.per_seed = per_seed_tests(main, values, [(s, baseline) for s in several if baseline not in (None, s)],
                                         report.primary, **tests)
        seeded = [(a, b) for a, b in asked if a in several]
        if seeded:
            report.per_seed_head_to_head = per_seed_tests(main, values, seeded, report.primary, **tests)
    return report


def largest_changes(diffs: pd.Series) -> tuple[list, list]:
    """The query ids of the largest gains (largest first) and of the largest losses (largest first) among
    ``diffs`` (sorted, largest first), up to :data:`ANALYSIS_ROWS` each; ties are neither."""
    gains = [q for q, v in diffs.head(ANALYSIS_ROWS).items() if v > stats.TIE_EPS]
    losses = [q for q, v in diffs[diffs < -stats.TIE_EPS].tail(ANALYSIS_ROWS)[::-1].items()]
    return gains, losses


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
