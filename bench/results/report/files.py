"""Writing reports: every file atomically, so an interrupted report leaves the previous one intact.

A pair report is ``<pair>.perquery.csv`` (the values its tables come from, always) and the formats asked
for (:data:`FORMATS`, default :data:`DEFAULT_FORMATS`): ``md``, ``html``, ``latex`` (``<pair>.tex``) and
``csv`` (the summary table, ``<pair>.summary.csv``). Every file's text is made before the first is written."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from bench.errors import BenchError
from bench.results import stats
from bench.results.report.html import pair_html
from bench.results.report.latex import pair_latex
from bench.results.report.markdown import pair_markdown
from bench.results.report.losses import DocumentsLoader
from bench.results.report.model import QrelsLoader, build_pair_report
from bench.results.report.summary import pair_summary_csv
from bench.results.report.tables import pair_page
from bench.infra.store import atomic_file

log = logging.getLogger(__name__)

# a format -> the file name's ending after the pair's name, and its writer (of the page)
FORMATS = {"md": (".md", pair_markdown), "html": (".html", pair_html), "latex": (".tex", pair_latex),
           "csv": (".summary.csv", pair_summary_csv)}
DEFAULT_FORMATS = ("md", "html")


def report_formats(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """The formats of a comma-separated list (or a sequence), each known (:data:`FORMATS`), without repeats;
    None: :data:`DEFAULT_FORMATS`."""
    if value is None:
        return DEFAULT_FORMATS
    items = value.split(",") if isinstance(value, str) else list(value)
    names = list(dict.fromkeys(str(f).strip() for f in items if str(f).strip()))
    if not names:
        raise BenchError(f"--format {value!r} names no format", "e.g. --format md,html,latex,csv")
    for name in names:
        if name not in FORMATS:
            raise BenchError(f"unknown report format {name!r}", "choose among: " + ", ".join(FORMATS))
    return tuple(names)


def write_texts(paths: list[Path], contents: list[str]) -> None:
    """Each file atomically (an interrupted write leaves the previous version)."""
    for path, text in zip(paths, contents):
        with atomic_file(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        log.info("wrote %s", path)


def pair_report_files(pair: str, runs_root: Path, reports_dir: Path, baseline: str | None = None, *,
                      systems: Sequence[str] | None = None, measures: Sequence[str] | None = None,
                      qrels: QrelsLoader | None = None, documents: DocumentsLoader | None = None,
                      formats: Sequence[str] = DEFAULT_FORMATS, n_resamples: int = stats.N_RESAMPLES,
                      seed: int = 0) -> tuple[list[Path], list[str]]:
    """The paths and texts of ``<pair>.perquery.csv`` and the report in each of ``formats`` under
    ``reports_dir``, nothing written; ``systems``, ``measures``, ``qrels`` and ``documents``:
    :func:`bench.results.report.model.build_pair_report`."""
    formats = report_formats(formats)
    runs_root, reports_dir = Path(runs_root), Path(reports_dir)
    report = build_pair_report(pair, runs_root, baseline, systems=systems, measures=measures, qrels=qrels,
                               documents=documents, n_resamples=n_resamples, seed=seed)
    page = pair_page(report, reports_dir.resolve().parent)
    paths = [reports_dir / f"{pair}.perquery.csv", *(reports_dir / f"{pair}{FORMATS[f][0]}" for f in formats)]
    contents = [report.per_query.to_csv(index=False, lineterminator="\n"), *(FORMATS[f][1](page) for f in formats)]
    return paths, contents


def write_pair_report(pair: str, runs_root: Path, reports_dir: Path, baseline: str | None = None,
                      **choices) -> list[Path]:
    """Write the files of :func:`pair_report_files` (each atomically, once all are made); their paths."""
    paths, contents = pair_report_files(pair, runs_root, reports_dir, baseline, **choices)
    write_texts(paths, contents)
    return paths
