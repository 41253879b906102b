"""Self-contained HTML for the per-pair report and the leaderboard: inline CSS, PNGs as data URIs,
no scripts and no external assets, so one file can be mailed, archived or opened offline."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from bench import plots, stats
from bench.report import (
    HEAD_TO_HEAD_HEADER, HEAD_TO_HEAD_NOTE, LABELS, PROVENANCE_NOTE, PairReport, best_means, compared_rows, diff_counts, effectiveness_cells, fmt, fmt_p,
    head_to_head_rows, label, provenance_rows, significance_note, versions_summary,
)

CSS = """
body { font: 15px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #222;
       max-width: 1180px; margin: 2em auto; padding: 0 1.2em; }
h1 { font-size: 1.7em; margin-bottom: .2em; } h2 { font-size: 1.25em; margin-top: 1.8em;
     border-bottom: 1px solid #ddd; padding-bottom: .2em; }
.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: .6em 0; font-variant-numeric: tabular-nums; }
th, td { padding: .3em .7em; border-bottom: 1px solid #e4e4e4; text-align: right; vertical-align: top; }
th { background: #f5f5f5; font-weight: 600; } th:first-child, td:first-child { text-align: left; }
td.text, th.text { text-align: left; }
tr.baseline td { background: #fafafa; color: #555; }
.ci { color: #777; font-size: .85em; } .sig { color: #b00; font-weight: 700; }
.best { font-weight: 700; } .pos { color: #1a7f1a; } .neg { color: #b00; }
.note { color: #555; font-size: .9em; max-width: 60em; }
code { background: #f3f3f3; padding: 0 .25em; border-radius: 3px; }
img { max-width: 100%; height: auto; display: block; margin: .6em 0; }
details { margin: .6em 0; } summary { cursor: pointer; color: #245; }
.scroll { overflow-x: auto; } table.nowrap td { white-space: nowrap; } table.nowrap { font-size: .9em; }
"""


def _page(title: str, body: list[str]) -> str:
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">', f"<title>{escape(title)}</title>",
        f"<style>{CSS}</style>", "</head>", "<body>", *body, "</body>", "</html>", "",
    ])


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _table(header: list[str], rows: list[list[str]], row_classes: list[str] | None = None,
           text_cols: int = 1, css: str = "") -> str:
    """``rows`` hold ready HTML; the first ``text_cols`` columns are left-aligned."""
    def cls(i):
        return ' class="text"' if i < text_cols else ""
    head = "".join(f"<th{cls(i)}>{h}</th>" for i, h in enumerate(header))
    body = []
    for n, row in enumerate(rows):
        rc = f' class="{row_classes[n]}"' if row_classes and row_classes[n] else ""
        body.append(f"<tr{rc}>" + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(row)) + "</tr>")
    return f'<div class="scroll"><table class="{css}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _signed(x: float) -> str:
    css = "pos" if x > stats.TIE_EPS else "neg" if x < -stats.TIE_EPS else ""
    return f'<span class="{css}">{x:+.3f}</span>'


def render_pair_html(report: PairReport, base: Path) -> str:
    e = escape
    best = best_means(report)
    body = [f"<h1>{e(report.pair)}</h1>"]
    facts = (f"Queries in <b>{e(report.query_lang)}</b>, documents in <b>{e(report.doc_lang)}</b> · "
             f"{report.n_queries} judged queries · {len(report.systems)} systems · baseline "
             f"<b>{e(report.baseline or '— (one system)')}</b> · generated {e(report.generated_at)}")
    if report.description:
        body.append(f'<p class="sub">{e(report.description)}</p>')
    body += [f'<p class="sub">{facts}</p>', "<h2>Effectiveness</h2>"]
    rows, classes = [], []
    for system in report.systems:
        cells = []
        for measure in report.measures:
            mean, interval, sig = effectiveness_cells(report, system, measure, best)
            value = mean.strip("*")
            html = f'<span class="best">{e(value)}</span>' if mean.startswith("**") else e(value)
            html += ' <span class="sig">†</span>' if sig else ""
            cells.append(f'{html}<br><span class="ci">{e(interval)}</span>')
        is_base = system == report.baseline
        rows.append([e(system) + (" <small>(baseline)</small>" if is_base else ""), *cells])
        classes.append("baseline" if is_base else "")
    body.append(_table(["system", *(e(label(m)) for m in report.measures)], rows, classes))
    note = f"Mean over queries with a {stats.CONFIDENCE:.0%} percentile bootstrap interval; bold: best per measure."
    if report.baseline is not None:
        note += " " + significance_note(report)
    body.append(f'<p class="note">{e(note)}</p>')
    body.append(_img(plots.bar_chart(report.table, report.systems, report.measures, LABELS, report.baseline),
                     f"mean per system and measure on {report.pair}, with 95% intervals"))
    if report.baseline is not None:
        body.append(f"<h2>Against the baseline ({e(report.baseline)})</h2>")
        rows = [[e(r["system"]), e(label(r["measure"])), _signed(r["delta"]), f"{r['wins']} / {r['ties']} / {r['losses']}",
                 fmt_p(r["p_randomization"]), fmt_p(r["p_ttest"]),
                 fmt_p(r["p_holm"]) + (' <span class="sig">†</span>' if r["significant"] else "")]
                for r in compared_rows(report)]
        body.append(_table(["system", "measure", "Δ mean", "wins / ties / losses", "p randomization", "p t-test",
                            "p Holm"], rows, text_cols=2))
        body.append('<p class="note">Δ: mean per-query difference, system − baseline. Two-sided p-values; Holm '
                    "adjusts the randomization p-values per measure across the systems compared.</p>")
        d = report.diffs
        better, worse, tied = diff_counts(report)
        title = f"{report.best} − {report.baseline}, {label(report.primary)}"
        body += [f"<h2>Per-query differences: {e(title)}</h2>",
                 f"<p>{e(report.best)} is better on <b>{better}</b>, worse on <b>{worse}</b> and tied on <b>{tied}</b> "
                 f"of {d.size} queries (best system: the non-oracle system with the highest mean "
                 f"{e(label(report.primary))}).</p>",
                 _img(plots.difference_chart(d, title), f"sorted per-query differences, {title}")]
        detail = _table(["query", "difference"], [[e(str(q)), _signed(v)] for q, v in d.items()])
        body.append(f"<details><summary>all {d.size} differences</summary>{detail}</details>")
        body.append(f'<p class="note">Every per-query value, long form: <code>{e(report.pair)}.perquery.csv</code>.</p>')
    else:
        body.append('<p class="note">Only one system has a complete run: no comparison.</p>')
    if report.head_to_head is not None:
        body.append(f"<h2>Head to head ({e(label(report.primary))})</h2>")
        body.append(_table(HEAD_TO_HEAD_HEADER, [[e(c) for c in r] for r in head_to_head_rows(report)], text_cols=2))
        body.append(f'<p class="note">{e(HEAD_TO_HEAD_NOTE)}</p>')
    body.append("<h2>Provenance</h2>")
    prov = provenance_rows(report, base)
    body.append(_table([e(k) for k in prov[0]], [[e(v) for v in r.values()] for r in prov], text_cols=len(prov[0]),
                       css="nowrap"))
    body.append(f'<p class="note">{e(PROVENANCE_NOTE)}</p>')
    versions = versions_summary(report.runs)
    body.append("<p><b>Package versions</b></p>")
    body.append(_table(["package", "version"], [[e(k), e(v)] for k, v in versions.items()], text_cols=2)
                if versions else '<p class="note">not recorded</p>')
    return _page(f"bench report: {report.pair}", body)


def render_leaderboard_html(data: dict) -> str:
    e = escape
    measures, pairs = data["measures"], data["pairs"]
    score = {(x["pair"], x["system"]): x["scores"] for x in data["entries"]}
    body = ["<h1>Leaderboard</h1>",
            f'<p class="sub">Generated {e(data["generated_at"])} from the latest complete run of every system on every '
            "reported pair (tuning pairs are never reported).</p>"]
    if not data["entries"]:
        body.append("<p>No complete runs.</p>")
        return _page("bench leaderboard", body)
    group = "".join(f'<th colspan="{len(measures)}" class="text">{e(p["pair"])}{" *" if p["low_resource"] else ""}</th>'
                    for p in pairs)
    group += f'<th colspan="{len(measures)}" class="text">low-resource mean</th>'
    sub = "".join(f"<th>{e(label(m))}</th>" for _ in range(len(pairs) + 1) for m in measures)
    best = {}
    for p in [p["pair"] for p in pairs]:
        for m in measures:
            values = [score[(p, s)][m] for s in data["systems"] if (p, s) in score and score[(p, s)][m] is not None]
            best[(p, m)] = max(values) if values else None
    rows = []
    for system in data["systems"]:
        cells = []
        for p in [p["pair"] for p in pairs]:
            for m in measures:
                v = score.get((p, system), {}).get(m)
                cells.append(f'<span class="best">{fmt(v)}</span>' if v is not None and v == best[(p, m)] else fmt(v))
        cells += [fmt(data["low_resource_mean"][system][m]) for m in measures]
        rows.append("<tr><td>" + e(system) + "</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    body.append('<div class="scroll"><table><thead><tr><th rowspan="2" class="text">system</th>' + group
                + "</tr><tr>" + sub + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")
    low = data["low_resource_pairs"]
    body.append(f'<p class="note">* low-resource pair. Low-resource mean: the mean over {e(", ".join(low) or "no pairs")}; '
                "— when a system lacks a run on one of them. Bold: best per column.</p>")
    body.append("<h2>Pairs</h2><ul>" + "".join(
        f"<li><b>{e(p['pair'])}</b>: {e(p['description'] or 'unregistered pair')}</li>" for p in pairs) + "</ul>")
    body.append("<h2>Sources</h2>")
    body.append(_table(["pair", "system", "run", "started (UTC)", "commit", "dataset", "queries"], [
        [e(x["pair"]), e(x["system"]), f"<code>{e(x['run'])}</code>", e(x["started_at"] or "—"),
         e((x["commit"] or "unknown")[:12]), e(x["dataset_id"] or "—"), str(x["n_queries"])] for x in data["entries"]],
        text_cols=6))
    return _page("bench leaderboard", body)
