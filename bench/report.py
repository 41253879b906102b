"""Per-pair comparison reports and the leaderboard, built from the complete runs under ``runs/``.

- :func:`write_pair_report` writes ``reports/<pair>.md``, a self-contained ``reports/<pair>.html`` (figures
  embedded as PNG data) and ``reports/<pair>.perquery.csv`` (long form: pair, system, query_id,
  measure, value).
- :func:`write_leaderboard` writes ``reports/leaderboard.{md,html,json}``: MAP and nDCG@10 of every
  system on every reported pair (tuning pairs excluded), the mean over the low-resource pairs, and
  the run each number came from.

Only complete runs count (an interrupted or damaged run directory is skipped with a warning), and
every file is written atomically, so an interrupted report leaves the previous one intact.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from bench import stats
from bench.errors import BenchError
from bench.runs import StoredRun, load_runs
from bench.store import atomic_file, fingerprint

log = logging.getLogger(__name__)

SYSTEM_ORDER = ["bm25", "bm25-psq", "bm25-nmt", "nmt-dense", "mdense", "mdense-maxsim", "sdistill", "sdistill-maxsim",
                "optical", "optical-maxsim", "mdense-hybrid", "optical-hybrid",
                "oracle-bm25", "oracle-dense"]
MEASURE_ORDER = ["AP", "nDCG@10", "RR@10", "R@100", "R@1000"]
LEADERBOARD_MEASURES = ["AP", "nDCG@10"]
LABELS = {"AP": "MAP"}
DEFAULT_BASELINE = "bm25"
# The study's questions (issue 6), asked whenever both systems ran: what distillation buys over the
# zero-shot encoder under the same scoring, what the OT term adds over sentence-level distillation,
# and how the distilled students compare with the NMT pipeline and with each other's scoring.
HEAD_TO_HEAD = [("optical", "mdense"), ("optical-maxsim", "mdense-maxsim"), ("sdistill", "mdense"),
                ("sdistill-maxsim", "mdense-maxsim"), ("optical", "sdistill"), ("optical-maxsim", "sdistill-maxsim"),
                ("optical", "mdense-maxsim"), ("optical-maxsim", "mdense"), ("optical", "nmt-dense"),
                ("optical-maxsim", "nmt-dense"), ("optical", "bm25-psq"), ("optical-maxsim", "bm25-psq"),
                ("optical-hybrid", "mdense-hybrid"), ("optical-hybrid", "optical-maxsim"), ("optical-hybrid", "bm25-psq")]
PROVENANCE_NOTE = ("data: fingerprint of the run's input files and their sha256 (the manifest's data field); models: role "
                   "and fingerprint of each model used (the translation model and the distilled checkpoint "
                   "included); commit: the git commit bench ran from.")
PER_QUERY_COLUMNS = ["pair", "system", "query_id", "measure", "value"]


def label(measure: str) -> str:
    return LABELS.get(measure, measure)


def _ordered(names, order: list[str]) -> list[str]:
    rank = {n: i for i, n in enumerate(order)}
    return sorted(dict.fromkeys(names), key=lambda n: (rank.get(n, len(rank)), n))


def _pair_info(name: str):
    """The registered pair, or None (an unregistered pair is still reported, but never low-resource)."""
    from bench.pairs import get_pair

    try:
        return get_pair(name)
    except BenchError:
        log.warning("pair %s is not registered: reporting it without a description", name)
        return None


def _source(run: StoredRun, base: Path) -> str:
    try:
        return Path(os.path.relpath(run.path, base)).as_posix()
    except ValueError:  # another drive
        return run.path.as_posix()


def write_texts(paths: list[Path], contents: list[str]) -> None:
    """Each file atomically (an interrupted write leaves the previous version)."""
    for path, text in zip(paths, contents):
        with atomic_file(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        log.info("wrote %s", path)


# --- per-pair report ------------------------------------------------------------------------------


@dataclass
class PairReport:
    pair: str
    description: str
    query_lang: str
    doc_lang: str
    runs: list[StoredRun]
    systems: list[str]
    measures: list[str]
    baseline: str | None
    table: pd.DataFrame  # bench.stats.compare
    per_query: pd.DataFrame  # PER_QUERY_COLUMNS
    primary: str
    best: str | None = None
    diffs: pd.Series | None = None  # per-query difference best − baseline on the primary measure
    head_to_head: pd.DataFrame | None = None  # bench.stats.head_to_head over the HEAD_TO_HEAD pairs that ran
    generated_at: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def row(self, system: str, measure: str) -> pd.Series | None:
        rows = self.table[(self.table["system"] == system) & (self.table["measure"] == measure)]
        return None if rows.empty else rows.iloc[0]

    @property
    def n_queries(self) -> int:
        return int(self.per_query["query_id"].nunique())


def build_pair_report(pair: str, runs_root: Path, baseline: str | None = None, *,
                      n_resamples: int = stats.N_RESAMPLES, seed: int = 0) -> PairReport:
    runs = load_runs(runs_root, pair)
    if not runs:
        raise BenchError(f"no complete run of pair {pair} under {runs_root}", f"run `bench run --pair {pair}` first")
    systems = _ordered([r.system for r in runs], SYSTEM_ORDER)
    by_system = {r.system: r for r in runs}
    per_query = pd.concat(
        [by_system[s].per_query.assign(pair=pair, system=s) for s in systems], ignore_index=True,
    )[PER_QUERY_COLUMNS]
    measures = _ordered(per_query["measure"], MEASURE_ORDER)
    if baseline is None:
        baseline = DEFAULT_BASELINE if DEFAULT_BASELINE in systems else systems[0]
    elif baseline not in systems:
        raise BenchError(f"baseline {baseline!r} has no complete run on {pair}", "choose one of: " + ", ".join(systems))
    if len(systems) == 1:
        baseline = None
    table = stats.compare(per_query, baseline, measures, n_resamples=n_resamples, seed=seed)
    info = _pair_info(pair)
    report = PairReport(
        pair=pair, description=info.description if info else "", query_lang=info.query_lang if info else "?",
        doc_lang=info.doc_lang if info else "?", runs=[by_system[s] for s in systems], systems=systems,
        measures=measures, baseline=baseline, table=table, per_query=per_query,
        primary="AP" if "AP" in measures else measures[0],
    )
    if baseline is not None:
        others = [s for s in systems if s != baseline]
        candidates = [s for s in others if not s.startswith("oracle")] or others  # oracles are ceilings
        report.best = max(candidates, key=lambda s: report.row(s, report.primary)["mean"])
        paired = stats.paired_values(per_query, report.best, baseline, report.primary)
        report.diffs = (paired["system"] - paired["other"]).sort_values(ascending=False, kind="stable")
    asked = [(a, b) for a, b in HEAD_TO_HEAD if a in by_system and b in by_system]
    if asked:
        report.head_to_head = stats.head_to_head(per_query, asked, report.primary, n_resamples=n_resamples, seed=seed)
    return report


def head_to_head_rows(report: PairReport) -> list[list[str]]:
    """The head-to-head table as text cells (system, reference, means, Δ, w/t/l, p-values)."""
    if report.head_to_head is None:
        return []
    return [[r["system"], r["reference"], fmt(r["mean"]), fmt(r["reference_mean"]), f"{r['delta']:+.3f}",
             f"{r['wins']}/{r['ties']}/{r['losses']}", fmt_p(r["p_randomization"]), fmt_p(r["p_ttest"]),
             fmt_p(r["p_holm"]) + (" †" if r["significant"] else "")] for _, r in report.head_to_head.iterrows()]


HEAD_TO_HEAD_HEADER = ["system", "reference", "system mean", "reference mean", "Δ", "wins/ties/losses",
                       "p randomization", "p t-test", "p Holm"]
HEAD_TO_HEAD_NOTE = ("Paired over the queries both systems answer; two-sided p-values; Holm adjusts the "
                     "randomization p-values over the comparisons in this table; † p Holm < 0.05.")


def fmt(x, digits: int = 3) -> str:
    return "—" if x is None or pd.isna(x) else f"{x:.{digits}f}"


def fmt_p(p) -> str:
    if p is None or pd.isna(p):
        return "—"
    return f"{p:.1e}" if p < 0.001 else f"{p:.3f}"


def significance_note(report: PairReport) -> str:
    k = len(report.systems) - 1
    return (f"† differs from the baseline {report.baseline}: paired randomization test, Holm-corrected across "
            f"the {k} system{'s' if k != 1 else ''} compared, p < {stats.ALPHA}.")


def versions_summary(runs: list[StoredRun]) -> dict[str, str]:
    """Package → version; where runs disagree, each version with the systems that used it."""
    packages: dict[str, dict[str, list[str]]] = {}
    for run in runs:
        for package, version in sorted((run.manifest.get("versions") or {}).items()):
            packages.setdefault(package, {}).setdefault(str(version), []).append(run.system)
    return {
        package: next(iter(seen)) if len(seen) == 1 else "; ".join(f"{v} ({', '.join(s)})" for v, s in seen.items())
        for package, seen in sorted(packages.items())
    }


def _models_cell(models: dict, artifacts: dict) -> str:
    """``role fingerprint`` for each model of the run, the MT model and the distilled checkpoint included."""
    def fp(value) -> str:
        return str(value.get("fingerprint") if isinstance(value, dict) else value)[:12]

    cells = [f"{role} {fp(value)}" for role, value in sorted(models.items())]
    if "mt_model" in artifacts:
        cells.append(f"mt_model {fp(artifacts['mt_model'])}")
    if "student" in artifacts:
        cells.append(f"student {str(artifacts['student'].get('checkpoint'))[:16]}")
    return ", ".join(cells) or "—"


def provenance_rows(report: PairReport, base: Path) -> list[dict[str, str]]:
    rows = []
    for run in report.runs:
        m = run.manifest
        models = m.get("models") or {}
        rows.append({
            "system": run.system,
            "run": _source(run, base),
            "started (UTC)": str(m.get("started_at") or "—"),
            "commit": (m.get("commit") or "unknown")[:12],
            "dataset": str(m.get("dataset_id") or "—"),
            "data": fingerprint(m.get("data") or {}, 12) if m.get("data") else "—",
            "models": _models_cell(models, m.get("artifacts") or {}),
            "seed": str(m.get("seed", "—")),
            "depth": str(m.get("depth", "—")),
            "time (s)": fmt(m.get("wall_time_s"), 1),
        })
    return rows


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    esc = [[str(c).replace("|", "\\|") for c in row] for row in [header, *rows]]
    return ["| " + " | ".join(esc[0]) + " |", "|" + "|".join(" --- " for _ in header) + "|",
            *("| " + " | ".join(r) + " |" for r in esc[1:])]


def effectiveness_cells(report: PairReport, system: str, measure: str, best: dict[str, float]) -> tuple[str, str, bool]:
    """(mean, interval, significant) of one cell; ``best`` maps measure → best mean."""
    row = report.row(system, measure)
    if row is None:
        return "—", "", False
    mean = fmt(row["mean"])
    if np.isclose(row["mean"], best[measure]):
        mean = f"**{mean}**"
    return mean, f"[{fmt(row['ci_low'])}, {fmt(row['ci_high'])}]", bool(row["significant"])


def best_means(report: PairReport) -> dict[str, float]:
    return {m: float(report.table[report.table["measure"] == m]["mean"].max()) for m in report.measures}


def compared_rows(report: PairReport) -> list[pd.Series]:
    """The comparison rows of every non-baseline system, system by system, measure by measure."""
    rows = [report.row(s, m) for s in report.systems if s != report.baseline for m in report.measures]
    return [r for r in rows if r is not None]


def diff_counts(report: PairReport) -> tuple[int, int, int]:
    """(better, worse, tied) queries of the best system against the baseline."""
    d = report.diffs
    return int((d > stats.TIE_EPS).sum()), int((d < -stats.TIE_EPS).sum()), int((d.abs() <= stats.TIE_EPS).sum())


def _md_comparison(report: PairReport) -> list[str]:
    rows = [[r["system"], label(r["measure"]), f"{r['delta']:+.3f}", f"{r['wins']}/{r['ties']}/{r['losses']}",
             fmt_p(r["p_randomization"]), fmt_p(r["p_ttest"]), fmt_p(r["p_holm"]) + (" †" if r["significant"] else "")]
            for r in compared_rows(report)]
    out = [significance_note(report), "", f"## Against the baseline ({report.baseline})", ""]
    out += md_table(["system", "measure", "Δ mean", "wins/ties/losses", "p randomization", "p t-test", "p Holm"], rows)
    out += ["", "Δ: mean per-query difference, system − baseline. p-values are two-sided; Holm adjusts the "
            "randomization p-values per measure.", ""]
    d = report.diffs
    better, worse, tied = diff_counts(report)
    gains = ", ".join(f"{q} ({v:+.3f})" for q, v in d.head(5).items() if v > stats.TIE_EPS) or "none"
    losses = ", ".join(f"{q} ({v:+.3f})" for q, v in d[d < -stats.TIE_EPS].tail(5)[::-1].items()) or "none"
    return out + [
        f"## Per-query differences: {report.best} − {report.baseline} ({label(report.primary)})", "",
        f"{report.best} is better on {better}, worse on {worse} and tied on {tied} of {d.size} queries "
        f"(mean difference {d.mean():+.3f}).", "",
        f"- largest gains: {gains}", f"- largest losses: {losses}", "",
        f"The sorted chart is in `{report.pair}.html`; every per-query value is in `{report.pair}.perquery.csv`.", "",
    ]


def render_markdown(report: PairReport, base: Path) -> str:
    best = best_means(report)
    out = [f"# {report.pair}", ""]
    if report.description:
        out += [report.description, ""]
    out += [f"Queries in {report.query_lang}, documents in {report.doc_lang}; {report.n_queries} judged queries; "
            f"{len(report.systems)} systems; baseline: {report.baseline or '— (one system)'}. "
            f"Generated {report.generated_at}.", "", "## Effectiveness", ""]
    rows = []
    for system in report.systems:
        cells = []
        for measure in report.measures:
            mean, interval, sig = effectiveness_cells(report, system, measure, best)
            cells.append(f"{mean}{' †' if sig else ''} {interval}".strip())
        rows.append([f"{system} (baseline)" if system == report.baseline else system, *cells])
    out += md_table(["system", *(label(m) for m in report.measures)], rows)
    out += ["", f"Mean over queries with a {stats.CONFIDENCE:.0%} percentile bootstrap interval; "
            "bold: best per measure."]
    if report.baseline is not None:
        out += _md_comparison(report)
    else:
        out += ["", "Only one system has a complete run: no comparison.", ""]
    if report.head_to_head is not None:
        out += [f"## Head to head ({label(report.primary)})", "", *md_table(HEAD_TO_HEAD_HEADER, head_to_head_rows(report)),
                "", HEAD_TO_HEAD_NOTE, ""]
    prov = provenance_rows(report, base)
    versions = ", ".join(f"{k} {v}" for k, v in versions_summary(report.runs).items()) or "not recorded"
    out += ["## Provenance", "", *md_table(list(prov[0]), [list(r.values()) for r in prov]), "",
            PROVENANCE_NOTE, "", f"Package versions: {versions}", ""]
    return "\n".join(out)


def write_pair_report(pair: str, runs_root: Path, reports_dir: Path, baseline: str | None = None, *,
                      n_resamples: int = stats.N_RESAMPLES, seed: int = 0) -> list[Path]:
    """Write ``<pair>.perquery.csv``, ``<pair>.md`` and ``<pair>.html`` under ``reports_dir``."""
    from bench.report_html import render_pair_html

    runs_root, reports_dir = Path(runs_root), Path(reports_dir)
    report = build_pair_report(pair, runs_root, baseline, n_resamples=n_resamples, seed=seed)
    base = reports_dir.resolve().parent
    paths = [reports_dir / f"{pair}.perquery.csv", reports_dir / f"{pair}.md", reports_dir / f"{pair}.html"]
    contents = [report.per_query.to_csv(index=False, lineterminator="\n"), render_markdown(report, base),
                render_pair_html(report, base)]
    write_texts(paths, contents)
    return paths


# --- leaderboard ----------------------------------------------------------------------------------


def leaderboard_data(runs_root: Path, reports_dir: Path) -> dict:
    """The leaderboard as plain data (what leaderboard.json holds)."""
    base = Path(reports_dir).resolve().parent
    pairs, entries = {}, []
    for run in load_runs(Path(runs_root)):
        info = _pair_info(run.pair)
        if info is not None and info.tuning:
            continue
        pairs.setdefault(run.pair, {
            "pair": run.pair, "description": info.description if info else "",
            "low_resource": bool(info.low_resource) if info else False,
        })
        means = run.per_query.groupby("measure")["value"].mean()
        entries.append({
            "pair": run.pair, "system": run.system,
            "scores": {m: float(means[m]) if m in means else None for m in LEADERBOARD_MEASURES},
            "n_queries": int(run.per_query["query_id"].nunique()),
            "run": _source(run, base), "started_at": run.manifest.get("started_at"),
            "commit": run.manifest.get("commit"), "dataset_id": run.manifest.get("dataset_id"),
        })
    from bench.pairs import PAIRS

    pair_names = _ordered(pairs, PAIRS.names())
    low = [p for p in pair_names if pairs[p]["low_resource"]]
    systems = _ordered([e["system"] for e in entries], SYSTEM_ORDER)
    score = {(e["pair"], e["system"]): e["scores"] for e in entries}
    means = {}
    for system in systems:
        missing = [p for p in low if (p, system) not in score]
        means[system] = {
            m: (None if missing or not low or any(score[(p, system)][m] is None for p in low)
                else float(np.mean([score[(p, system)][m] for p in low])))
            for m in LEADERBOARD_MEASURES
        }
        means[system]["missing_pairs"] = missing
    entries.sort(key=lambda e: (pair_names.index(e["pair"]), systems.index(e["system"])))
    return {
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "measures": LEADERBOARD_MEASURES, "pairs": [pairs[p] for p in pair_names], "low_resource_pairs": low,
        "systems": systems, "entries": entries, "low_resource_mean": means,
    }


def render_leaderboard_markdown(data: dict) -> str:
    measures, pairs, low = data["measures"], [p["pair"] for p in data["pairs"]], data["low_resource_pairs"]
    score = {(e["pair"], e["system"]): e["scores"] for e in data["entries"]}
    header = ["system", *(f"{p} {label(m)}" for p in pairs for m in measures),
              *(f"low-resource mean {label(m)}" for m in measures)]
    rows = []
    for system in data["systems"]:
        cells = [fmt(score.get((p, system), {}).get(m)) for p in pairs for m in measures]
        cells += [fmt(data["low_resource_mean"][system][m]) for m in measures]
        rows.append([system, *cells])
    out = ["# Leaderboard", "", f"Generated {data['generated_at']} from the latest complete run of every system on "
           "every reported pair (tuning pairs are never reported).", ""]
    out += md_table(header, rows) if rows else ["No complete runs."]
    out += ["", f"Low-resource mean: the mean over {', '.join(low) or 'no pairs'}; — when a system lacks a run on "
            "one of them.", ""]
    desc = [f"- **{p['pair']}**{' (low-resource)' if p['low_resource'] else ''}: "
            f"{p['description'] or 'unregistered pair'}" for p in data["pairs"]]
    out += ["## Pairs", "", *desc, "", "## Sources", ""]
    out += md_table(["pair", "system", "run", "started (UTC)", "commit", "dataset", "queries"], [
        [e["pair"], e["system"], e["run"], e["started_at"] or "—", (e["commit"] or "unknown")[:12],
         e["dataset_id"] or "—", str(e["n_queries"])] for e in data["entries"]])
    return "\n".join(out) + "\n"


def write_leaderboard(runs_root: Path, reports_dir: Path) -> list[Path]:
    """Write ``leaderboard.json``, ``leaderboard.md`` and ``leaderboard.html`` under ``reports_dir``."""
    from bench.report_html import render_leaderboard_html

    reports_dir = Path(reports_dir)
    data = leaderboard_data(Path(runs_root), reports_dir)
    paths = [reports_dir / "leaderboard.json", reports_dir / "leaderboard.md", reports_dir / "leaderboard.html"]
    contents = [json.dumps(data, indent=2, ensure_ascii=False) + "\n", render_leaderboard_markdown(data),
                render_leaderboard_html(data)]
    write_texts(paths, contents)
    return paths
