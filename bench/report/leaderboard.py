"""The leaderboard: MAP and nDCG@10 of every system on every reported pair (tuning pairs excluded), the
mean over the low-resource pairs, and the run each number came from, as plain data
(``leaderboard.json``) and as markdown and HTML. What a pair is (low-resource, tuning, description)
comes from its runs' manifests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.evaluate import means
from bench.report.files import write_texts
from bench.report.html import render
from bench.report.markdown import md_lines
from bench.report.model import PAIR_ORDER, SYSTEM_ORDER, fmt, label, now_utc, ordered, pair_info, source_path
from bench.report.tables import Cell, Table
from bench.runs import load_runs

LEADERBOARD_MEASURES = ["AP", "nDCG@10"]
NO_DESCRIPTION = "no description recorded"


def leaderboard_data(runs_root: Path, reports_dir: Path) -> dict:
    """The leaderboard as plain data (what leaderboard.json holds)."""
    base = Path(reports_dir).resolve().parent
    by_pair: dict = {}
    for run in load_runs(Path(runs_root)):
        by_pair.setdefault(run.pair, []).append(run)
    pairs, entries = {}, []
    for pair, runs in by_pair.items():
        info = pair_info(pair, runs)
        if info.tuning:
            continue
        pairs[pair] = {"pair": pair, "description": info.description, "low_resource": info.low_resource}
        for run in runs:
            scores = means(run.per_query)
            entries.append({
                "pair": pair, "system": run.system,
                "scores": {m: scores.get(m) for m in LEADERBOARD_MEASURES},
                "n_queries": int(run.per_query["query_id"].nunique()),
                "run": source_path(run, base), "started_at": run.manifest.get("started_at"),
                "commit": run.manifest.get("commit"), "dataset_id": run.manifest.get("dataset_id"),
            })
    pair_names = ordered(pairs, PAIR_ORDER)
    low = [p for p in pair_names if pairs[p]["low_resource"]]
    systems = ordered([e["system"] for e in entries], SYSTEM_ORDER)
    score = {(e["pair"], e["system"]): e["scores"] for e in entries}
    low_means = {}
    for system in systems:
        missing = [p for p in low if (p, system) not in score]
        low_means[system] = {
            m: (None if missing or not low or any(score[(p, system)][m] is None for p in low)
                else float(np.mean([score[(p, system)][m] for p in low])))
            for m in LEADERBOARD_MEASURES
        }
        low_means[system]["missing_pairs"] = missing
    entries.sort(key=lambda e: (pair_names.index(e["pair"]), systems.index(e["system"])))
    return {
        "generated_at": now_utc(), "measures": LEADERBOARD_MEASURES, "pairs": [pairs[p] for p in pair_names],
        "low_resource_pairs": low, "systems": systems, "entries": entries, "low_resource_mean": low_means,
    }


def scores_table(data: dict) -> Table:
    """System × (pair, measure) and the low-resource means; bold: best per pair and measure."""
    measures, pairs = data["measures"], [p["pair"] for p in data["pairs"]]
    score = {(e["pair"], e["system"]): e["scores"] for e in data["entries"]}
    best = {}
    for p in pairs:
        for m in measures:
            values = [score[(p, s)][m] for s in data["systems"] if (p, s) in score and score[(p, s)][m] is not None]
            best[(p, m)] = max(values) if values else None
    rows = []
    for system in data["systems"]:
        cells = [Cell(system)]
        for p in pairs:
            for m in measures:
                v = score.get((p, system), {}).get(m)
                cells.append(Cell(fmt(v), bold=v is not None and v == best[(p, m)]))
        cells += [Cell(fmt(data["low_resource_mean"][system][m])) for m in measures]
        rows.append(cells)
    return Table(
        ["system", *(f"{p} {label(m)}" for p in pairs for m in measures),
         *(f"low-resource mean {label(m)}" for m in measures)],
        rows,
        groups=[*((f"{p['pair']}{' *' if p['low_resource'] else ''}", len(measures)) for p in data["pairs"]),
                ("low-resource mean", len(measures))],
        subheader=[label(m) for _ in range(len(pairs) + 1) for m in measures],
    )


def sources_table(data: dict) -> Table:
    return Table(["pair", "system", "run", "started (UTC)", "commit", "dataset", "queries"], [
        [Cell(e["pair"]), Cell(e["system"]), Cell(e["run"], code=True), Cell(e["started_at"] or "—"),
         Cell((e["commit"] or "unknown")[:12]), Cell(e["dataset_id"] or "—"), Cell(str(e["n_queries"]))]
        for e in data["entries"]], text_cols=6)


def _texts(data: dict) -> dict[str, str]:
    low = data["low_resource_pairs"]
    return {
        "intro": (f"Generated {data['generated_at']} from the latest complete run of every system on every reported "
                  "pair (tuning pairs are never reported)."),
        "mean_note": (f"Low-resource mean: the mean over {', '.join(low) or 'no pairs'}; — when a system lacks a run "
                      "on one of them."),
    }


def leaderboard_markdown(data: dict) -> str:
    texts = _texts(data)
    out = ["# Leaderboard", "", texts["intro"], ""]
    out += md_lines(scores_table(data), bold=False) if data["systems"] else ["No complete runs."]
    out += ["", texts["mean_note"], ""]
    desc = [f"- **{p['pair']}**{' (low-resource)' if p['low_resource'] else ''}: {p['description'] or NO_DESCRIPTION}"
            for p in data["pairs"]]
    out += ["## Pairs", "", *desc, "", "## Sources", "", *md_lines(sources_table(data))]
    return "\n".join(out) + "\n"


def leaderboard_html(data: dict) -> str:
    return render("leaderboard.html.j2", data=data, **_texts(data), no_description=NO_DESCRIPTION,
                  scores=scores_table(data), sources=sources_table(data))


def write_leaderboard(runs_root: Path, reports_dir: Path) -> list[Path]:
    """Write ``leaderboard.json``, ``leaderboard.md`` and ``leaderboard.html`` under ``reports_dir``."""
    reports_dir = Path(reports_dir)
    data = leaderboard_data(Path(runs_root), reports_dir)
    paths = [reports_dir / "leaderboard.json", reports_dir / "leaderboard.md", reports_dir / "leaderboard.html"]
    contents = [json.dumps(data, indent=2, ensure_ascii=False) + "\n", leaderboard_markdown(data),
                leaderboard_html(data)]
    write_texts(paths, contents)
    return paths
