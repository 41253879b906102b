"""The summary table of a pair report as CSV for a paper (``reports/<pair>.summary.csv``): one row per system
(in the tables' order), one column per measure (its mean over queries; ir_measures' names), then for each
measure the randomization and Holm-adjusted p-values against the baseline (empty for the baseline itself
and where the system was not compared). ``role`` says what the tables mark: baseline, ceiling, external,
plugin. Numbers to 6 significant digits."""

from __future__ import annotations

import csv
import io

import pandas as pd

from bench.results.report.model import PairReport
from bench.results.report.tables import PairPage

ROLE_ORDER = ("baseline", "ceiling", "external", "plugin")


def roles(report: PairReport, system: str) -> str:
    found = {"baseline": system == report.baseline, "ceiling": system in report.ceilings,
             "external": report.origins.get(system) == "external", "plugin": report.origins.get(system) == "plugin"}
    return ";".join(r for r in ROLE_ORDER if found[r])


def number(x) -> str:
    return "" if x is None or pd.isna(x) else format(float(x), ".6g")


def summary_header(report: PairReport) -> list[str]:
    return ["system", "role", "seeds", *report.measures,
            *(f"{m} {p}" for m in report.measures for p in ("p_randomization", "p_holm"))]


def pair_summary_csv(page: PairPage) -> str:
    report = page.report
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(summary_header(report))
    for system in report.systems:
        rows = {m: report.row(system, m) for m in report.measures}
        writer.writerow([system, roles(report, system), report.seeds(system),
                         *(number(None if r is None else r["mean"]) for r in rows.values()),
                         *(number(None if r is None else r[p]) for r in rows.values()
                           for p in ("p_randomization", "p_holm"))])
    return out.getvalue()
