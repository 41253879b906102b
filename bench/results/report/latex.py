"""The summary table of a pair report as LaTeX for a paper (``reports/<pair>.tex``): a ``table`` float with a
booktabs ``tabular`` (``\\usepackage{booktabs}``) of the effectiveness table's means, system names escaped,
the best of each measure in bold (never a ceiling), † where a system differs from the baseline, and the
legend (significance, Holm's family, external and plugin runs) as a note under the table. The intervals
are in the markdown and HTML reports."""

from __future__ import annotations

import re

from bench.results.report.tables import (Cell, PairPage, holm_family, origins_note, rescored_note,
                                         significance_note)

# LaTeX's special characters, and the few other symbols the report's texts use
_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
            ">": r"\textgreater{}", "±": r"$\pm$", "†": r"$^{\dagger}$", "−": r"$-$", "—": "---", "–": "--",
            "Δ": r"$\Delta$", "α": r"$\alpha$", "≤": r"$\leq$", "≥": r"$\geq$", "·": r"$\cdot$",
            "√": r"$\surd$"}
# and a hyphen before another (``--`` would be a dash): ``-{}``
_SPECIAL = re.compile("|".join([*(re.escape(c) for c in _ESCAPES), "-(?=-)"]))
DAGGER = _ESCAPES["†"]


def escape(text: str) -> str:
    """``text`` as LaTeX text: its special characters escaped, the report's symbols in math mode."""
    return _SPECIAL.sub(lambda m: _ESCAPES.get(m.group(0), "-{}"), str(text))


def latex_cell(cell: Cell) -> str:
    """A cell's text, bold where it is the best of its column, † where it differs from the baseline."""
    text = escape(cell.text)
    if cell.bold:
        text = rf"\textbf{{{text}}}"
    return text + DAGGER if cell.significant else text


def label_of(pair: str) -> str:
    return "tab:" + re.sub(r"[^A-Za-z0-9:.-]", "-", pair)


def pair_latex(page: PairPage) -> str:
    report, table = page.report, page.effectiveness
    legend = (f"Mean over the {report.n_queries} judged queries; bold: the best of each measure"
              f"{' (a ceiling never is)' if report.ceilings else ''}.")
    if report.several_seeds:
        legend += " A system of several seeds: the mean over its seeds ± the sample standard deviation (ddof 1)."
    if report.baseline is not None:
        legend += f" {significance_note(report)} {holm_family(report)}"
    legend += origins_note(report) + rescored_note(report)
    lines = [
        f"% bench report of {report.pair}, generated {report.generated_at}: its summary table "
        r"(needs \usepackage{booktabs})",
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{escape(report.pair)}: effectiveness, {escape(report.query_lang)} queries and "
        rf"{escape(report.doc_lang)} documents.}}",
        rf"\label{{{label_of(report.pair)}}}",
        rf"\begin{{tabular}}{{{'l' * table.text_cols}{'r' * (len(table.header) - table.text_cols)}}}",
        r"\toprule",
        " & ".join(escape(h) for h in table.header) + r" \\",
        r"\midrule",
        *(" & ".join(latex_cell(c) for c in row) + r" \\" for row in table.rows),
        r"\bottomrule",
        r"\end{tabular}",
        r"\par\smallskip",
        rf"{{\footnotesize {escape(legend.strip())}\par}}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"
