"""The pair report that bench writes after it stores runs (``bench run``, ``bench eval``, ``bench fuse``, the
API and the grid): one function, so each of them reports with the same loaders.

A report reads runs only (:mod:`bench.results.report`); what it may need of the pair is handed to it as
plain callables made here: the qrels, for a run stored without a measure the report shows
(:mod:`bench.experiment.qrels`), and the documents of the largest losses (:mod:`bench.experiment.documents`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.data.pairs import Pair


def write_report(pair: str, runs_root: Path, reports_dir: Path, *, given: Pair | None = None, partial: bool = False,
                 **choices: Any) -> list[Path]:
    """Write the report of ``pair`` from the runs under ``runs_root`` and return its paths. ``given``: the pair
    itself when it is not a built-in one (a pair file); ``partial``: a report rewritten while a run goes on,
    without the documents of its losses; ``choices``: the report's (baseline, measures, ...)."""
    from bench.experiment.documents import documents_loader
    from bench.experiment.qrels import qrels_loader
    from bench.results.report import write_pair_report

    return write_pair_report(pair, Path(runs_root), Path(reports_dir), qrels=qrels_loader(given),
                             documents=None if partial else documents_loader(given), **choices)
