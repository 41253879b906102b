"""The report's tables as plain data: a header and rows of cells, built once and rendered by both the
markdown and the HTML writer (:mod:`bench.results.report.markdown`, :mod:`bench.results.report.html`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.results import stats
from bench.results.report.losses import SHOWN, SNIPPET_CHARS, Loss, Passage
from bench.results.report.model import PairReport, floor_note, fmt, fmt_p, label, largest_changes, source_path
from bench.results.report.variants import STD_NOTE, value_text
from bench.results.runs import StoredRun
from bench.infra.store import fingerprint

MDE_NOTE = (f"MDE: the minimum detectable effect, the smallest |Δ| the paired test detects over these queries at "
            f"α {stats.ALPHA} and power {stats.POWER} by the standard normal approximation, "
            f"(z(1 − α/2) + z(power)) · sd(per-query differences) / √n; a p above α with |Δ| < MDE says "
            "too few queries, not no difference.")
COMPARISON_NOTE = ("Δ: mean per-query difference, system − baseline. p-values are two-sided; Holm adjusts the "
                   "randomization p-values per measure. " + MDE_NOTE)
HEAD_TO_HEAD_NOTE = ("Paired over the queries both systems answer; two-sided p-values; Holm adjusts the "
                     "randomization p-values over the comparisons in this table; † p Holm < 0.05.")
SEEDS_NOTE = ("Each seed's own run. Δ and the tests: the seed's run against the baseline's values in the table "
              "above (their mean over its seeds where it has several), paired over queries; two-sided p-values; "
              "Holm adjusts the randomization p-values over the rows of this table.")
SEEDS_HEAD_TO_HEAD_NOTE = ("Each seed of the system against the reference's values in the head-to-head table "
                           "(their mean over its seeds where it has several); Holm over the rows of this table; "
                           "† p Holm < 0.05.")
NOISE_NOTE = ("Systems retrained on bitext with the given fraction of misaligned pairs (bench sweep noise, bench grid "
              f"--noise), kept out of the tables above; with several seeds, the mean {STD_NOTE}. Δ: against the "
              "same system without noise.")
PROVENANCE_NOTE = ("data: fingerprint of the run's input files and their sha256 (the manifest's data field); "
                   "models: role and fingerprint of each model used (the translation model and the distilled "
                   "checkpoint included); commit: the git commit bench ran from.")


ORIGIN_NOTES = {"external": "external: a run made elsewhere, scored by bench (bench eval, bench run --run)",
                "plugin": "plugin: a system of another package (the bench.systems entry points)"}


@dataclass(frozen=True)
class Cell:
    text: str
    bold: bool = False  # the best of its column
    significant: bool = False  # marked † (see the table's note)
    interval: str = ""  # a confidence interval, shown after the value
    tone: str = ""  # "pos" or "neg" for a signed difference (colour in HTML only)
    code: bool = False  # a path or an identifier (monospace in HTML only)
    link: str = ""  # a relative link (another report)


@dataclass
class Table:
    header: list[str]
    rows: list[list[Cell]]
    text_cols: int = 1  # the first columns hold text (left-aligned), the rest numbers
    row_classes: list[str] = field(default_factory=list)  # per row, "" or e.g. "baseline"
    css: str = ""
    groups: list[tuple] = field(default_factory=list)  # HTML: header groups (text, span[, link]) after column 0
    subheader: list[str] = field(default_factory=list)  # HTML: the labels under the groups


def signed(x: float) -> Cell:
    return Cell(f"{x:+.3f}", tone="pos" if x > stats.TIE_EPS else "neg" if x < -stats.TIE_EPS else "")


@dataclass
class LossView:
    """One of the largest losses: a heading, what happened in words, and its documents (none to show: None)."""

    heading: str
    text: str
    table: Table | None


@dataclass
class Differences:
    """The per-query differences of the best system against the baseline, on the primary measure."""

    title: str
    summary: str
    gains: str
    losses: str
    values: pd.Series
    table: Table
    analysis: Table | None = None  # the largest gains and losses with the query, its translations and both values
    passages: list[LossView] | None = None  # the largest losses with the documents above the first relevant one
    passages_note: str = ""


@dataclass
class PairPage:
    """Everything a writer shows of one pair's report (figures are drawn from ``report``)."""

    report: PairReport
    facts: str
    effectiveness: Table
    effectiveness_note: str
    significance_note: str | None
    comparison: Table | None
    differences: Differences | None
    head_to_head: Table | None
    provenance: Table
    versions: Table
    seeds: Table | None = None  # each seed of the systems that have several, against the baseline
    seeds_head_to_head: Table | None = None  # each seed in the head-to-head comparisons
    noise: Table | None = None  # the runs on noised bitext
    family_note: str | None = None  # Holm's family of the comparisons with the baseline
    power: list[str] | None = None  # per system, its difference from the baseline beside the MDE (primary measure)
    training: Table | None = None  # how each distilled student of the runs was trained
    # the notes under the tables (each with the floor of the randomization p-values where one is at it)
    comparison_note: str = COMPARISON_NOTE
    head_to_head_note: str = HEAD_TO_HEAD_NOTE
    seeds_note: str = SEEDS_NOTE
    seeds_head_to_head_note: str = SEEDS_HEAD_TO_HEAD_NOTE


def facts(report: PairReport) -> str:
    return (f"Queries in {report.query_lang}, documents in {report.doc_lang}; {report.n_queries} judged queries; "
            f"{len(report.systems)} systems; baseline: {report.baseline or '— (one system)'}. "
            f"Generated {report.generated_at}.")


def rescored_note(report: PairReport) -> str:
    """Which runs' values were computed for this report from their run.trec ("" when none)."""
    if not report.rescored:
        return ""
    done = "; ".join(f"{run}: {', '.join(label(m) for m in measures)}" for run, measures in report.rescored.items())
    return (f" Scored for this report from the stored run.trec on the pair's qrels (the stored runs hold other "
            f"measures and are unchanged): {done}.")


def origins_note(report: PairReport) -> str:
    """The legend of the external and plugin runs marked in the tables ("" when there are none)."""
    kinds = [k for k in ORIGIN_NOTES if k in set(report.origins[s] for s in report.systems if s in report.origins)]
    notes = []
    for kind in kinds:
        note = ORIGIN_NOTES[kind]
        if kind == "plugin":
            note += " (" + ", ".join(f"{s}: {report.packages[s]}" for s in report.systems if s in report.packages) + ")"
        notes.append(note)
    return " " + "; ".join(notes) + "." if notes else ""


def holm_family(report: PairReport) -> str | None:
    """Holm's family of the comparisons with the baseline, per measure: which systems, how many."""
    if report.baseline is None:
        return None
    tested = report.table[report.table["p_randomization"].notna()]
    family = {m: tested[tested["measure"] == m]["system"].tolist() for m in report.measures}
    family = {m: f for m, f in family.items() if f}
    if not family:
        return f"Holm's family: empty (no system shares a measure with the baseline {report.baseline})."

    def members(systems: list[str]) -> str:
        return (f"{len(systems)} comparison{'s' if len(systems) != 1 else ''} with {report.baseline} "
                f"({', '.join(systems)})")

    if len(family) == 1:
        measure, systems = next(iter(family.items()))
        return f"Holm's family ({label(measure)}): the {members(systems)}."
    if len({tuple(f) for f in family.values()}) == 1:
        measures = ", ".join(label(m) for m in family)
        return f"Holm's family, for each of {measures} apart: the {members(next(iter(family.values())))}."
    return "Holm's family, per measure: " + "; ".join(f"{label(m)}: {members(f)}" for m, f in family.items()) + "."


def significance_note(report: PairReport) -> str:
    k = len(report.systems) - 1
    return (f"† differs from the baseline {report.baseline}: paired randomization test, Holm-corrected across "
            f"the {k} system{'s' if k != 1 else ''} compared, p < {stats.ALPHA}.")


def effectiveness(report: PairReport) -> Table:
    """Mean and interval of every system on every measure; bold: best per measure among the competitors (a
    ceiling, human translations of the queries, is never bold); †: differs from the baseline."""
    competing = report.table[~report.table["system"].isin(report.ceilings)]
    best = {m: float(competing[competing["measure"] == m]["mean"].max()) for m in report.measures}
    rows = []
    for system in report.systems:
        n = report.seeds(system)
        notes = [*(["baseline"] if system == report.baseline else []),
                 *(["ceiling"] if system in report.ceilings and system != report.baseline else []),
                 *([report.origins[system]] if system in report.origins else []),
                 *([f"{n} seeds"] if n > 1 else [])]
        cells = [Cell(f"{system} ({', '.join(notes)})" if notes else system)]
        for measure in report.measures:
            row = report.row(system, measure)
            std = report.replicates[system].spread(measure)[1] if n > 1 else float("nan")
            cells.append(Cell("—") if row is None else Cell(
                value_text(row["mean"], std, n),
                bold=system not in report.ceilings and bool(np.isclose(row["mean"], best[measure])),
                significant=bool(row["significant"]), interval=f"[{fmt(row['ci_low'])}, {fmt(row['ci_high'])}]"))
        rows.append(cells)
    return Table(["system", *(label(m) for m in report.measures)], rows,
                 row_classes=["baseline" if s == report.baseline else "" for s in report.systems])


def comparison(report: PairReport) -> Table:
    """Every non-baseline system against the baseline, measure by measure."""
    rows = [report.row(s, m) for s in report.systems if s != report.baseline for m in report.measures]
    return Table(["system", "measure", "Δ mean", "MDE", "wins/ties/losses", "p randomization", "p t-test", "p Holm"], [
        [Cell(r["system"]), Cell(label(r["measure"])), signed(r["delta"]), Cell(fmt(r["mde"])),
         Cell(f"{r['wins']}/{r['ties']}/{r['losses']}"), Cell(fmt_p(r["p_randomization"], report.n_resamples)),
         Cell(fmt_p(r["p_ttest"])), Cell(fmt_p(r["p_holm"]), significant=bool(r["significant"]))]
        for r in rows if r is not None and not pd.isna(r["wins"])], text_cols=2)


def power(report: PairReport) -> list[str] | None:
    """One line per system compared with the baseline on the primary measure: its Δ beside the minimum
    detectable effect (:func:`bench.results.stats.minimum_detectable_effect`) and p Holm, and what they say."""
    lines = []
    for system in report.systems:
        r = report.row(system, report.primary)
        if system == report.baseline or r is None or pd.isna(r["mde"]):
            continue
        n = int(r["wins"] + r["ties"] + r["losses"])
        verdict = ("|Δ| ≥ MDE: enough queries to detect a difference this large" if abs(r["delta"]) >= r["mde"]
                   else "|Δ| < MDE: too few queries to detect a difference this small")
        lines.append(f"{system}: Δ {r['delta']:+.3f}, MDE {r['mde']:.3f} over {n} queries, "
                     f"p Holm {fmt_p(r['p_holm'])}{' †' if r['significant'] else ''}; {verdict}")
    return lines or None


def differences(report: PairReport) -> Differences:
    d = report.diffs
    better, worse, tied = (int((d > stats.TIE_EPS).sum()), int((d < -stats.TIE_EPS).sum()),
                           int((d.abs() <= stats.TIE_EPS).sum()))
    gains = ", ".join(f"{q} ({v:+.3f})" for q, v in d.head(5).items() if v > stats.TIE_EPS) or "none"
    losses = ", ".join(f"{q} ({v:+.3f})" for q, v in d[d < -stats.TIE_EPS].tail(5)[::-1].items()) or "none"
    return Differences(
        title=f"{report.best} − {report.baseline} ({label(report.primary)})",
        summary=(f"{report.best} is better on {better}, worse on {worse} and tied on {tied} of {d.size} queries "
                 f"(mean difference {d.mean():+.3f})."),
        gains=gains, losses=losses, values=d,
        table=Table(["query", "difference"], [[Cell(str(q)), signed(v)] for q, v in d.items()]),
        analysis=analysis(report), passages=passages(report),
        passages_note=passages_note(report) if report.passages is not None else "",
    )


def analysis(report: PairReport) -> Table | None:
    """Per-query analysis: the largest gains and losses of the best system against the baseline, with the
    query text, its human translation and the systems' own translations (what the runs stored)."""
    d = report.diffs
    if d is None or not report.queries:
        return None
    gains, losses = largest_changes(d)
    picked = gains + losses
    if not picked:  # every query tied
        return None
    own = [s for s in (report.best, report.baseline) if report.system_translations.get(s)]
    paired = stats.paired_values(report.per_query, report.best, report.baseline, report.primary)
    rows = []
    for qid in picked:
        query = report.queries.get(str(qid), {})
        rows.append([Cell(str(qid)), Cell(query.get("text") or "—"), Cell(query.get("translation") or "—"),
                     *(Cell(report.system_translations[s].get(str(qid)) or "—") for s in own),
                     Cell(fmt(paired.loc[qid, "other"])), Cell(fmt(paired.loc[qid, "system"])), signed(d[qid])])
    header = ["query", "text", "translation", *(f"{s}'s translation" for s in own), report.baseline, report.best, "Δ"]
    return Table(header, rows, text_cols=3 + len(own))


def passages_note(report: PairReport) -> str:
    """What the passages of the largest losses are (the legend above them)."""
    found = report.passages
    return (f"The queries on which {found.system} lost most against {found.baseline} ({label(report.primary)}), "
            f"largest loss first: the first relevant document in {found.system}'s ranking (in bold) beside the "
            f"documents it ranked above it (up to {SHOWN}, from its top; its top {SHOWN} where it retrieved no "
            f"relevant document). Ranks are those of the stored runs {found.system_run} and {found.baseline_run}; "
            f"a passage is the start of the document's text (up to {SNIPPET_CHARS} characters, cut at a word); "
            "judgment: as in the pair's qrels (unjudged: not in them).")


def passages(report: PairReport) -> list[LossView] | None:
    """The largest losses of the best system, each with the documents it ranked above the first relevant one
    (``report.passages``; None without them)."""
    found = report.passages
    if found is None or not found.cases:
        return None
    views = []
    for case in found.cases:
        query = report.queries.get(case.query_id, {})
        asked = (f"Query: {query['text']}" + (f" ({query['translation']})" if query.get("translation") else "") + ". "
                 if query.get("text") else "")
        shown = sorted([*case.above, *([case.relevant] if case.relevant else [])],
                       key=lambda p: (p.rank is None, p.rank or 0))
        table = Table([f"{found.system} rank", "document", "judgment", "title", "passage", f"{found.baseline} rank"],
                      [_passage_row(p) for p in shown], text_cols=5) if shown else None
        views.append(LossView(f"{case.query_id} (Δ {case.delta:+.3f})", asked + loss_text(case, found.system,
                                                                                         found.baseline), table))
    return views


def loss_text(case: Loss, system: str, baseline: str) -> str:
    """Where ``system`` ranked the query's first relevant document, in words."""
    judged = f"{case.n_relevant} judged relevant"
    if case.n_relevant == 0:
        return "No document of this query is judged relevant."
    if case.retrieved:
        first = case.relevant
        if first.rank == 1:
            return (f"{system} ranks a relevant document first (of {judged}): it lost on the others (ranked lower or "
                    "not retrieved).")
        above = first.rank - 1
        more = f"; the top {len(case.above)} of them are shown" if len(case.above) < above else ""
        return (f"{system} ranks its first relevant document, {first.doc_id}, at {first.rank} (of {judged}), below "
                f"{above} other{'s' if above != 1 else ''}{more}.")
    theirs = (f"; {baseline} ranks {case.relevant.doc_id} at {case.relevant.baseline_rank}"
              if case.relevant is not None else "")
    top = f" Its top {len(case.above)}:" if case.above else " It retrieved nothing for it."
    return f"{system} retrieved no relevant document ({judged}){theirs}.{top}"


def _passage_row(p: Passage) -> list[Cell]:
    judgment = "unjudged" if p.relevance is None else f"relevant ({p.relevance})" if p.relevant else "not relevant"
    return [Cell("—" if p.rank is None else str(p.rank)), Cell(p.doc_id, bold=p.relevant), Cell(judgment),
            Cell(p.title or "—"), Cell(p.snippet or "—"),
            Cell("—" if p.baseline_rank is None else str(p.baseline_rank))]


def head_to_head(report: PairReport) -> Table | None:
    """The HEAD_TO_HEAD comparisons that ran, on the primary measure."""
    if report.head_to_head is None:
        return None
    return Table(["system", "reference", "system mean", "reference mean", "Δ", "wins/ties/losses",
                  "p randomization", "p t-test", "p Holm"], [
        [Cell(r["system"]), Cell(r["reference"]), Cell(fmt(r["mean"])), Cell(fmt(r["reference_mean"])),
         signed(r["delta"]), Cell(f"{r['wins']}/{r['ties']}/{r['losses']}"),
         Cell(fmt_p(r["p_randomization"], report.n_resamples)), Cell(fmt_p(r["p_ttest"])),
         Cell(fmt_p(r["p_holm"]), significant=bool(r["significant"]))]
        for _, r in report.head_to_head.iterrows()], text_cols=2)


def seeds(report: PairReport) -> Table | None:
    """Every seed of the systems that have several: its means, and on the primary measure its test
    against the baseline (``report.per_seed``)."""
    if not report.several_seeds:
        return None
    tested = {} if report.per_seed is None else {(r["system"], r["seed"]): r for _, r in report.per_seed.iterrows()}
    rows = []
    for system in report.several_seeds:
        cell = report.replicates[system]
        means = {m: cell.seed_means(m) for m in report.measures}
        for i, run in enumerate(cell.runs):
            r = tested.get((system, run.seed))
            test = ([signed(r["delta"]), Cell(f"{r['wins']}/{r['ties']}/{r['losses']}"),
                     Cell(fmt_p(r["p_randomization"], report.n_resamples)), Cell(fmt_p(r["p_ttest"])),
                     Cell(fmt_p(r["p_holm"]), significant=bool(r["significant"]))]
                    if r is not None else [Cell("—") for _ in range(5)])
            rows.append([Cell(system), Cell(str(run.seed)), Cell(run.name, code=True),
                         *(Cell(fmt(means[m][i])) for m in report.measures), *test])
    primary = label(report.primary)
    return Table(["system", "seed", "run", *(label(m) for m in report.measures), f"Δ {primary}", "wins/ties/losses",
                  "p randomization", "p t-test", "p Holm"], rows, text_cols=3)


def seeds_head_to_head(report: PairReport) -> Table | None:
    """Each seed of a HEAD_TO_HEAD system against its reference, on the primary measure."""
    if report.per_seed_head_to_head is None:
        return None
    return Table(["system", "seed", "reference", "system mean", "reference mean", "Δ", "wins/ties/losses",
                  "p randomization", "p t-test", "p Holm"], [
        [Cell(r["system"]), Cell(str(r["seed"])), Cell(r["reference"]), Cell(fmt(r["mean"])),
         Cell(fmt(r["reference_mean"])), signed(r["delta"]), Cell(f"{r['wins']}/{r['ties']}/{r['losses']}"),
         Cell(fmt_p(r["p_randomization"], report.n_resamples)), Cell(fmt_p(r["p_ttest"])),
         Cell(fmt_p(r["p_holm"]), significant=bool(r["significant"]))]
        for _, r in report.per_seed_head_to_head.iterrows()], text_cols=3)


def noise(report: PairReport) -> Table | None:
    """The runs on noised bitext: per system and rate, the mean (± std over seeds) and Δ against noise 0."""
    if not report.noise:
        return None
    rows = []
    for cell in report.noise:
        clean = report.replicates.get(cell.system)
        mean = cell.spread(report.primary)[0]
        delta = (signed(mean - clean.spread(report.primary)[0]) if clean is not None and not np.isnan(mean)
                 else Cell("—"))
        rows.append([Cell(cell.system), Cell(f"{cell.noise:g}"), Cell(str(cell.n)),
                     *(Cell(value_text(*cell.spread(m), cell.n)) for m in report.measures), delta])
    return Table(["system", "bitext noise", "seeds", *(label(m) for m in report.measures),
                  f"Δ {label(report.primary)} vs noise 0"], rows)


def models_cell(models: dict, artifacts: dict) -> str:
    """``role fingerprint`` for each model of the run, the MT model and the distilled checkpoint included."""
    def fp(value) -> str:
        return str(value.get("fingerprint") if isinstance(value, dict) else value)[:12]

    cells = [f"{role} {fp(value)}" for role, value in sorted(models.items())]
    if "mt_model" in artifacts:
        cells.append(f"mt_model {fp(artifacts['mt_model'])}")
    if "student" in artifacts:
        cells.append(f"student {str(artifacts['student'].get('checkpoint'))[:16]}")
    return ", ".join(cells) or "—"


def provenance(report: PairReport, base: Path) -> Table:
    """Where each number came from: run directory, time, commit, data and model fingerprints."""
    rows = []
    for run in report.runs:
        m = run.manifest
        rows.append([
            run.system, source_path(run, base), str(m.get("started_at") or "—"), (m.get("commit") or "unknown")[:12],
            str(m.get("dataset_id") or "—"), fingerprint(m.get("data") or {}, 12) if m.get("data") else "—",
            models_cell(m.get("models") or {}, m.get("artifacts") or {}), str(m.get("seed", "—")),
            str(m.get("depth", "—")), fmt(m.get("wall_time_s"), 1),
        ])
    header = ["system", "run", "started (UTC)", "commit", "dataset", "data", "models", "seed", "depth", "time (s)"]
    return Table(header, [[Cell(c) for c in row] for row in rows], text_cols=len(header), css="nowrap")


TRAINING_NOTE = ("One row per trained student (its systems share it), as its checkpoint recorded: the bitext pairs "
                 "it trained on, its steps, the seconds it trained over every process (a resumed training: the "
                 "total, with its last process's in brackets; one recorded before totals were kept: its last "
                 "process's, said so), and the most memory its last training process had held when it ended "
                 "(resident set; on a GPU also torch's allocations there). A dash: the checkpoint predates that "
                 "record.")


def training(report: PairReport) -> Table | None:
    """The students behind the report's runs, one row per checkpoint (from the manifests' ``artifacts``)."""
    students: dict[str, dict] = {}
    for run in report.runs:
        student = (run.manifest.get("artifacts") or {}).get("student")
        if not isinstance(student, dict) or not student.get("checkpoint"):
            continue
        row = students.setdefault(student["checkpoint"], {"student": student, "runs": []})
        row["runs"].append(run.name)
    if not students:
        return None
    rows = []
    for checkpoint, row in students.items():
        done = row["student"].get("training") or {}
        seconds = training_seconds(done)
        memory = _number_or_dash(done.get("peak_rss_mb"))
        if done.get("peak_cuda_mb") is not None:
            memory += f" (GPU {done['peak_cuda_mb']:,})"
        rows.append([str(row["student"].get("recipe") or "—"), ", ".join(row["runs"]), checkpoint[:12],
                     _number_or_dash(done.get("pairs")), _number_or_dash(done.get("steps")), seconds, memory,
                     _trained_on(done)])
    header = ["recipe", "runs", "checkpoint", "bitext pairs", "steps", "training (s)", "peak memory (MB)", "device"]
    return Table(header, [[Cell(c) for c in row] for row in rows], text_cols=3)


def training_seconds(done: dict) -> str:
    """A student's training time: over every process that trained it; where a resumed training's record has
    only its last process's seconds (recorded before the total was), those, said so."""
    if not done.get("resumed"):
        return fmt(done.get("seconds", done.get("seconds_last_session")), 0)
    if done.get("seconds") is not None:
        return f"{fmt(done['seconds'], 0)} (resumed; {fmt(done.get('seconds_last_session'), 0)} in its last process)"
    return f"{fmt(done.get('seconds_last_session'), 0)} in its last process (resumed; the earlier ones unrecorded)"


def _trained_on(done: dict) -> str:
    """The device a student trained on, with its CPU threads where recorded (``cpu, 1 thread``): on the CPU a
    training at another thread count is another model."""
    device, threads = done.get("device"), done.get("threads")
    if not device:
        return "—"
    if not threads:
        return str(device)
    return f"{device}, {threads} thread{'' if threads == 1 else 's'}"


def _number_or_dash(value) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "—"


def versions_summary(runs: list[StoredRun]) -> dict[str, str]:
    """Package → version; where runs disagree, each version with the systems that used it."""
    packages: dict[str, dict[str, list[str]]] = {}
    for run in runs:
        for package, version in sorted((run.manifest.get("versions") or {}).items()):
            packages.setdefault(package, {}).setdefault(str(version), []).append(run.name)
    return {
        package: next(iter(seen)) if len(seen) == 1 else "; ".join(f"{v} ({', '.join(s)})" for v, s in seen.items())
        for package, seen in sorted(packages.items())
    }


def with_floor(note: str, report: PairReport, table: pd.DataFrame | None) -> str:
    """``note``, and the floor's legend where a randomization p-value of ``table`` is at it."""
    if table is None or not any(stats.at_floor(p, report.n_resamples) for p in table["p_randomization"]):
        return note
    return f"{note} {floor_note(report.n_resamples)}"


def pair_page(report: PairReport, base: Path) -> PairPage:
    """Every table and text of the report, computed once for both writers."""
    compared = report.baseline is not None
    several = ("" if not report.several_seeds else
               f" A system of several seeds: the mean over its seeds {STD_NOTE}; its interval, † and comparisons "
               "use its per-query values averaged over the seeds, and each seed is tested on its own under Seeds.")
    return PairPage(
        report=report, facts=facts(report), effectiveness=effectiveness(report),
        effectiveness_note=(f"Mean over queries with a {stats.CONFIDENCE:.0%} percentile bootstrap interval; "
                            "bold: best per measure." + several + origins_note(report) + rescored_note(report)),
        significance_note=significance_note(report) if compared else None,
        comparison=comparison(report) if compared else None,
        differences=differences(report) if report.diffs is not None else None,
        head_to_head=head_to_head(report), provenance=provenance(report, base),
        versions=Table(["package", "version"], [[Cell(k), Cell(v)] for k, v in versions_summary(report.runs).items()],
                       text_cols=2),
        seeds=seeds(report), seeds_head_to_head=seeds_head_to_head(report), noise=noise(report),
        family_note=holm_family(report), power=power(report) if compared else None,
        comparison_note=with_floor(COMPARISON_NOTE, report, report.table if compared else None),
        head_to_head_note=with_floor(HEAD_TO_HEAD_NOTE, report, report.head_to_head),
        seeds_note=with_floor(SEEDS_NOTE, report, report.per_seed),
        seeds_head_to_head_note=with_floor(SEEDS_HEAD_TO_HEAD_NOTE, report, report.per_seed_head_to_head),
        training=training(report),
    )
