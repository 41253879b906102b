"""Writing reports: every file atomically, so an interrupted report leaves the previous one intact."""

from __future__ import annotations

import logging
from pathlib import Path

from bench.results import stats
from bench.results.report.html import pair_html
from bench.results.report.markdown import pair_markdown
from bench.results.report.model import build_pair_report
from bench.results.report.tables import pair_page
from bench.infra.store import atomic_file

log = logging.getLogger(__name__)


def write_texts(paths: list[Path], contents: list[str]) -> None:
    """Each file atomically (an interrupted write leaves the previous version)."""
    for path, text in zip(paths, contents):
        with atomic_file(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        log.info("wrote %s", path)


def write_pair_report(pair: str, runs_root: Path, reports_dir: Path, baseline: str | None = None, *,
                      n_resamples: int = stats.N_RESAMPLES, seed: int = 0) -> list[Path]:
    """Write ``<pair>.perquery.csv``, ``<pair>.md`` and ``<pair>.html`` under ``reports_dir``."""
    runs_root, reports_dir = Path(runs_root), Path(reports_dir)
    report = build_pair_report(pair, runs_root, baseline, n_resamples=n_resamples, seed=seed)
    page = pair_page(report, reports_dir.resolve().parent)
    paths = [reports_dir / f"{pair}.perquery.csv", reports_dir / f"{pair}.md", reports_dir / f"{pair}.html"]
    contents = [report.per_query.to_csv(index=False, lineterminator="\n"), pair_markdown(page), pair_html(page)]
    write_texts(paths, contents)
    return paths
