"""Markdown: the per-pair report, and tables of the table model (:mod:`bench.results.report.tables`)."""

from __future__ import annotations

from bench.results.report.model import label
from bench.results.report.tables import (NOISE_NOTE, PROVENANCE_NOTE, TRAINING_NOTE, Cell, Differences, PairPage,
                                        Table)


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a markdown table of text cells (``|`` escaped)."""
    esc = [[str(c).replace("|", "\\|") for c in row] for row in [header, *rows]]
    return ["| " + " | ".join(esc[0]) + " |", "|" + "|".join(" --- " for _ in header) + "|",
            *("| " + " | ".join(r) + " |" for r in esc[1:])]


def md_cell(cell: Cell, bold: bool = True) -> str:
    text = f"[{cell.text}]({cell.link})" if cell.link else cell.text
    text = f"**{text}**" if cell.bold and bold else text
    if cell.significant:
        text += " †"
    return f"{text} {cell.interval}" if cell.interval else text


def md_lines(table: Table, bold: bool = True) -> list[str]:
    """The lines of ``table``; ``bold=False`` leaves the best values unmarked."""
    return md_table(table.header, [[md_cell(c, bold) for c in row] for row in table.rows])


def passages_markdown(d: Differences) -> list[str]:
    """The largest losses with the documents above the first relevant one: a sub-section per query."""
    out = ["### Where the largest losses went wrong", "", d.passages_note, ""]
    for view in d.passages:
        out += [f"#### {view.heading}", "", view.text, "", *([*md_lines(view.table), ""] if view.table else [])]
    return out


def pair_markdown(page: PairPage) -> str:
    report = page.report
    out = [f"# {report.pair}", ""]
    if report.description:
        out += [report.description, ""]
    out += [page.facts, "", "## Effectiveness", "", *md_lines(page.effectiveness), "", page.effectiveness_note]
    if page.comparison is not None:
        out += [page.significance_note, "", page.family_note, "", f"## Against the baseline ({report.baseline})", "",
                *md_lines(page.comparison), "", page.comparison_note, ""]
        if page.power:
            out += [f"### Power ({label(report.primary)})", "", *(f"- {line}" for line in page.power), ""]
    d = page.differences
    if page.comparison is not None and d is None:
        out += ["No per-query differences: the baseline and the other systems share no measure.", ""]
    elif page.comparison is not None:
        out += [f"## Per-query differences: {d.title}", "", d.summary, "",
                f"- largest gains: {d.gains}", f"- largest losses: {d.losses}", "",
                *(["### The largest gains and losses, query by query", "", *md_lines(d.analysis), ""]
                  if d.analysis is not None else []),
                *(passages_markdown(d) if d.passages is not None else []),
                f"The sorted chart is in `{report.pair}.html`; every per-query value is in "
                f"`{report.pair}.perquery.csv`.", ""]
    else:
        out += ["", "Only one system has a complete run: no comparison.", ""]
    if page.head_to_head is not None:
        out += [f"## Head to head ({label(report.primary)})", "", *md_lines(page.head_to_head), "",
                page.head_to_head_note, ""]
    if page.seeds is not None:
        out += [f"## Seeds ({label(report.primary)} against the baseline)", "", *md_lines(page.seeds), "",
                page.seeds_note, ""]
    if page.seeds_head_to_head is not None:
        out += [f"### Head to head, seed by seed ({label(report.primary)})", "", *md_lines(page.seeds_head_to_head), "",
                page.seeds_head_to_head_note, ""]
    if page.noise is not None:
        out += ["## Runs on noised bitext", "", *md_lines(page.noise), "", NOISE_NOTE, ""]
    if page.training is not None:
        out += ["## Training", "", *md_lines(page.training), "", TRAINING_NOTE, ""]
    versions = ", ".join(f"{row[0].text} {row[1].text}" for row in page.versions.rows) or "not recorded"
    out += ["## Provenance", "", *md_lines(page.provenance), "", PROVENANCE_NOTE, "",
            f"Package versions: {versions}", ""]
    return "\n".join(out)
