"""The leaderboard: MAP and nDCG@10 (or, for a pair that lacks them, its own first two measures) of every
system on every reported pair (tuning pairs excluded), with 95% bootstrap intervals and a † where the
system differs from that pair's baseline (paired randomization test, Holm-corrected across the pair's
systems, as in the pair's report); the mean over the low-resource pairs; links to the pair reports; and
the run each number came from, as plain data (``leaderboard.json``) and as markdown and HTML. Bold is the
best value of each column. What a pair is (low-resource, tuning, description) comes from its runs'
manifests.

A system run with several seeds (``runs/<pair>/optical+seed1/``, ...) shows the mean over its seeds ± their
sample standard deviation (ddof 1) and the number of seeds; its interval and † come from its per-query
values averaged over the seeds (:mod:`bench.results.report.variants`). Runs on noised bitext are not on the
leaderboard (the pair report and the sweep show them). A system of another package is marked ``(plugin)`` as in
the pair reports, with a legend naming its package; runs made elsewhere are marked in the sources table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench.results import stats
from bench.results.scoring import means
from bench.results.report.files import write_texts
from bench.results.report.html import render
from bench.results.report.markdown import md_lines
from bench.results.report.model import (DEFAULT_BASELINE, MEASURE_ORDER, ceilings, fmt, label, now_utc, ordered,
                                        pair_order, plugin_packages, recorded_pair, source_path, system_order)
from bench.results.report.tables import ORIGIN_NOTES, Cell, Table
from bench.results.report.variants import STD_NOTE, by_system, group_runs, value_text
from bench.results.runs import QrelsOf, load_runs

LEADERBOARD_MEASURES = ["AP", "nDCG@10"]
NO_DESCRIPTION = "no description recorded"


def pair_measures(measured) -> list[str]:
    """The leaderboard's measures of a pair: LEADERBOARD_MEASURES it has, else its own first two."""
    return [m for m in LEADERBOARD_MEASURES if m in set(measured)] or ordered(measured, MEASURE_ORDER)[:2]


def leaderboard_data(runs_root: Path, reports_dir: Path, *, n_resamples: int = stats.N_RESAMPLES,
                     seed: int = 0, qrels: QrelsOf | None = None) -> dict:
    """The leaderboard as plain data (what leaderboard.json holds); ``qrels`` as for
    :func:`bench.results.runs.load_run`."""
    base = Path(reports_dir).resolve().parent
    by_pair: dict = {}
    for run in load_runs(Path(runs_root), qrels=qrels):
        by_pair.setdefault(run.pair, []).append(run)
    pairs, entries = {}, []
    for pair, runs in by_pair.items():
        info = recorded_pair(pair, runs)
        if info.tuning:
            continue
        main = by_system(group_runs(runs))  # noise 0; a system's seeds are its replicates
        if not main:
            continue
        systems = ordered(main, system_order(runs))
        per_query = pd.concat([main[s].per_query().assign(system=s) for s in systems], ignore_index=True)
        measures = pair_measures(per_query["measure"].unique())
        baseline = (DEFAULT_BASELINE if DEFAULT_BASELINE in systems else systems[0]) if len(systems) > 1 else None
        table = stats.compare(per_query, baseline, measures, n_resamples=n_resamples, seed=seed)
        pairs[pair] = {"pair": pair, "description": info.description, "low_resource": info.low_resource,
                       "measures": measures, "baseline": baseline, "report": f"{pair}.html"}
        for system in systems:
            cell = main[system]
            run = cell.runs[0]
            scores = means(cell.per_query())
            rows = {r["measure"]: r for _, r in table[table["system"] == system].iterrows()}
            entries.append({
                "pair": pair, "system": system,
                "scores": {m: scores.get(m) for m in measures},
                "seeds": cell.seeds,  # one value per seed below where there are several
                "std": {m: _num(cell.spread(m)[1]) for m in measures} if cell.n > 1 else {},
                "seed_scores": {m: cell.seed_means(m) for m in measures} if cell.n > 1 else {},
                "runs": [source_path(r, base) for r in cell.runs],
                "ci": {m: [_num(rows[m]["ci_low"]), _num(rows[m]["ci_high"])] for m in measures if m in rows},
                "p_holm": {m: _num(rows[m]["p_holm"]) for m in measures if m in rows and system != baseline},
                "significant": {m: bool(rows[m]["significant"]) for m in measures if m in rows},
                "n_queries": int(run.per_query["query_id"].nunique()), "external": bool(run.manifest.get("external")),
                "plugin": plugin_packages(cell.runs).get(system),  # the package (name==version) of a plugin system
                "ceiling": system in ceilings(cell.runs),
                "run": source_path(run, base), "started_at": run.manifest.get("started_at"),
                "commit": run.manifest.get("commit"), "dataset_id": run.manifest.get("dataset_id"),
            })
    every = [r for runs in by_pair.values() for r in runs]
    pair_names = ordered(pairs, pair_order(every))
    low = [p for p in pair_names if pairs[p]["low_resource"]]
    systems = ordered([e["system"] for e in entries], system_order(every))
    score = {(e["pair"], e["system"]): e["scores"] for e in entries}
    mean_pairs = {m: [p for p in low if m in pairs[p]["measures"]] for m in LEADERBOARD_MEASURES}
    low_means = {}
    for system in systems:
        missing = [p for p in low if (p, system) not in score]
        low_means[system] = {
            m: (None if not mean_pairs[m] or any(score.get((p, system), {}).get(m) is None for p in mean_pairs[m])
                else float(np.mean([score[(p, system)][m] for p in mean_pairs[m]])))
            for m in LEADERBOARD_MEASURES
        }
        low_means[system]["missing_pairs"] = missing
    entries.sort(key=lambda e: (pair_names.index(e["pair"]), systems.index(e["system"])))
    return {
        "generated_at": now_utc(), "measures": LEADERBOARD_MEASURES, "pairs": [pairs[p] for p in pair_names],
        "low_resource_pairs": low, "low_resource_mean_pairs": mean_pairs, "systems": systems, "entries": entries,
        "low_resource_mean": low_means,
    }


def _num(x) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


def _best(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def scores_table(data: dict) -> Table:
    """System × (pair, measure) and the low-resource means, each value with its interval, † against the
    pair's baseline; bold: the best of each column (every column, the means included)."""
    measures, pairs = data["measures"], data["pairs"]
    entry = {(e["pair"], e["system"]): e for e in data["entries"]}
    columns = [(p["pair"], m) for p in pairs for m in p["measures"]]

    def value(system, column):
        e = entry.get((column[0], system))
        return None if e is None else e["scores"].get(column[1])

    ceiling = {e["system"] for e in data["entries"] if e.get("ceiling")}  # never bold: not a competitor
    competing = [s for s in data["systems"] if s not in ceiling]
    best = {c: _best([value(s, c) for s in competing]) for c in columns}
    best_mean = {m: _best([data["low_resource_mean"][s][m] for s in competing]) for m in measures}
    plugins = set(plugin_systems(data))
    rows = []
    for system in data["systems"]:
        notes = [*(["ceiling"] if system in ceiling else []), *(["plugin"] if system in plugins else [])]
        cells = [Cell(f"{system} ({', '.join(notes)})" if notes else system)]
        for pair, m in columns:
            v, e = value(system, (pair, m)), entry.get((pair, system))
            ci = (e or {}).get("ci", {}).get(m)
            n = len((e or {}).get("seeds") or [0])
            std = (e or {}).get("std", {}).get(m)
            text = fmt(v) if n < 2 else f"{value_text(v, float('nan') if std is None else std, n)} ({n} seeds)"
            cells.append(Cell(
                text, bold=system not in ceiling and v is not None and bool(np.isclose(v, best[(pair, m)])),
                significant=bool((e or {}).get("significant", {}).get(m)),
                interval=f"[{fmt(ci[0])}, {fmt(ci[1])}]" if ci and ci[0] is not None else ""))
        for m in measures:
            v = data["low_resource_mean"][system][m]
            top = system not in ceiling and v is not None and bool(np.isclose(v, best_mean[m]))
            cells.append(Cell(fmt(v), bold=top))
        rows.append(cells)
    return Table(
        ["system", *(f"{p} {label(m)}" for p, m in columns), *(f"low-resource mean {label(m)}" for m in measures)],
        rows,
        groups=[*((f"{p['pair']}{' *' if p['low_resource'] else ''}", len(p["measures"]), p["report"]) for p in pairs),
                ("low-resource mean", len(measures))],
        subheader=[*(label(m) for _, m in columns), *(label(m) for m in measures)],
    )


def plugin_systems(data: dict) -> dict[str, list[str]]:
    """Plugin system -> the packages (name==version) its entries' runs name, in the order of the systems."""
    found: dict[str, list[str]] = {}
    for e in data["entries"]:
        if e.get("plugin"):
            found.setdefault(e["system"], [])
            if e["plugin"] not in found[e["system"]]:
                found[e["system"]].append(e["plugin"])
    return {s: found[s] for s in data["systems"] if s in found}


def sources_table(data: dict) -> Table:
    """The run of each entry (every run, for a system of several seeds: the first's time and commit)."""
    return Table(["pair", "system", "run", "started (UTC)", "commit", "dataset", "queries"], [
        [Cell(e["pair"]), Cell(e["system"] + (" (external)" if e.get("external") else "")
                               + (" (plugin)" if e.get("plugin") else "")),
         Cell(", ".join(e.get("runs") or [e["run"]]), code=True), Cell(e["started_at"] or "—"),
         Cell((e["commit"] or "unknown")[:12]), Cell(e["dataset_id"] or "—"), Cell(str(e["n_queries"]))]
        for e in data["entries"]], text_cols=6)


def _texts(data: dict) -> dict[str, str]:
    over = {m: ", ".join(ps) or "no pairs" for m, ps in data["low_resource_mean_pairs"].items()}
    means_over = ("the mean over " + over[data["measures"][0]] if len(set(over.values())) == 1 else
                  "; ".join(f"{label(m)} over {ps}" for m, ps in over.items()))
    return {
        "intro": (f"Generated {data['generated_at']} from the latest complete run of every system on every reported "
                  "pair (tuning pairs are never reported). Each value is the mean over the pair's judged queries "
                  f"with a {stats.CONFIDENCE:.0%} percentile bootstrap interval; † differs from the pair's baseline "
                  f"(paired randomization test, Holm-corrected across the pair's systems, p < {stats.ALPHA}); "
                  "bold: the best of its column; a ceiling (the query's human translation) is never bold." + (
                      f" A system of several seeds: the mean over its seeds {STD_NOTE}, and how many; its interval "
                      "and † use its per-query values averaged over the seeds."
                      if any(len(e.get("seeds") or []) > 1 for e in data["entries"]) else "")),
        "mean_note": (f"Low-resource mean: {means_over}; — when a system lacks a run on one of them. "
                      "A pair without MAP and nDCG@10 shows its own first two measures." + plugin_note(data)),
    }


def plugin_note(data: dict) -> str:
    """The legend of the plugin systems marked in the scores table ("" when there are none)."""
    plugins = plugin_systems(data)
    if not plugins:
        return ""
    return (f" {ORIGIN_NOTES['plugin']} ("
            + ", ".join(f"{s}: {', '.join(packages)}" for s, packages in plugins.items()) + ").")


def _pair_line(p: dict, link: str) -> str:
    baseline = f"; baseline {p['baseline']}" if p["baseline"] else ""
    return (f"- [**{p['pair']}**]({link}){' (low-resource)' if p['low_resource'] else ''}: "
            f"{p['description'] or NO_DESCRIPTION}{baseline}")


def leaderboard_markdown(data: dict) -> str:
    texts = _texts(data)
    out = ["# Leaderboard", "", texts["intro"], ""]
    out += md_lines(scores_table(data)) if data["systems"] else ["No complete runs."]
    out += ["", texts["mean_note"], ""]
    desc = [_pair_line(p, f"{p['pair']}.md") for p in data["pairs"]]
    out += ["## Pairs", "", *desc, "", "## Sources", "", *md_lines(sources_table(data))]
    return "\n".join(out) + "\n"


def leaderboard_html(data: dict) -> str:
    return render("leaderboard.html.j2", data=data, **_texts(data), no_description=NO_DESCRIPTION,
                  scores=scores_table(data), sources=sources_table(data))


def write_leaderboard(runs_root: Path, reports_dir: Path, *, n_resamples: int = stats.N_RESAMPLES,
                      seed: int = 0, qrels: QrelsOf | None = None) -> list[Path]:
    """Write ``leaderboard.json``, ``leaderboard.md`` and ``leaderboard.html`` under ``reports_dir``."""
    reports_dir = Path(reports_dir)
    data = leaderboard_data(Path(runs_root), reports_dir, n_resamples=n_resamples, seed=seed, qrels=qrels)
    paths = [reports_dir / "leaderboard.json", reports_dir / "leaderboard.md", reports_dir / "leaderboard.html"]
    contents = [json.dumps(data, indent=2, ensure_ascii=False) + "\n", leaderboard_markdown(data),
                leaderboard_html(data)]
    write_texts(paths, contents)
    return paths
