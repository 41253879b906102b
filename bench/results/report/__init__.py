"""Per-pair comparison reports and the leaderboard, built from the complete runs under ``runs/``.

- :func:`write_pair_report` writes ``reports/<pair>.perquery.csv`` (long form: pair, system, query_id,
  measure, value: the values the tables are computed from, a system's seeds averaged per query, query ids in
  natural order) and the report in the formats asked for: ``reports/<pair>.md``, a self-contained
  ``reports/<pair>.html`` (figures embedded as PNG data) by default, and for a paper its summary table as
  LaTeX (``<pair>.tex``, booktabs) and CSV (``<pair>.summary.csv``). It may be narrowed to chosen systems
  (Holm's family is theirs), against a chosen baseline, on chosen measures (a measure a run was not stored
  with is computed from its ``run.trec`` and the pair's qrels, which the caller passes, in memory only).
- :func:`write_leaderboard` writes ``reports/leaderboard.{md,html,json}``: MAP and nDCG@10 (or a pair's
  own first two measures) of every system on every reported pair (tuning pairs excluded), with
  intervals and significance against each pair's baseline, bold on the best of every column, the mean
  over the low-resource pairs, links to the pair reports, and the run each number came from.

A system's runs of other seeds (``runs/<pair>/optical+seed1/``) are replicates of its default run: the
tables show the mean over seeds ± the sample standard deviation (ddof 1) and the number of seeds, and
each seed is also tested on its own; runs on noised bitext (``optical+noise0.2``) have their own table in
the pair report and are not on the leaderboard (:mod:`bench.results.report.variants`).

A pair report shows the query texts and translations the runs stored beside them (``queries.tsv``) in
its per-query analysis and, given the pair's documents (a :data:`DocumentsLoader`, passed by the caller as the
qrels are), for each of the largest losses the documents the best system ranked above the first relevant one
(:mod:`.losses`).

Only complete runs count (an interrupted or damaged run directory is skipped with a warning), and
every file is written atomically, so an interrupted report leaves the previous one intact. A report
reads runs only: what it says about a pair comes from the runs' manifests (``pair_info``).

Modules, each importing only those above it: ``variants`` (runs grouped into seeds and noise rates),
``losses`` (the documents above the first relevant one in the largest losses), ``model`` (the report as
plain data, ordering and formatting), ``tables`` (the table model the writers render), ``markdown``,
``html`` (templates in ``templates/``), ``latex`` and ``summary`` (CSV) (the writers),
``files`` (the formats, atomic writes, :func:`write_pair_report`), ``leaderboard``.
"""

from bench.results.report.files import (DEFAULT_FORMATS, FORMATS, pair_report_files, report_formats, write_pair_report,
                                        write_texts)
from bench.results.report.html import pair_html
from bench.results.report.leaderboard import (
    LEADERBOARD_MEASURES, leaderboard_data, leaderboard_html, leaderboard_markdown, write_leaderboard,
)
from bench.results.report.losses import DocumentsLoader, PairDocuments
from bench.results.report.markdown import md_lines, md_table, pair_markdown
from bench.results.report.model import (
    HEAD_TO_HEAD, MEASURE_ORDER, PairInfo, PairReport, QrelsLoader, build_pair_report, ceilings, floor_text, fmt,
    fmt_p, label, ordered, origins, pair_order, recorded_pair, system_order,
)
from bench.results.report.tables import Cell, PairPage, Table, models_cell, pair_page, versions_summary

__all__ = [
    "DEFAULT_FORMATS", "DocumentsLoader", "FORMATS", "HEAD_TO_HEAD", "LEADERBOARD_MEASURES", "MEASURE_ORDER", "Cell",
    "PairDocuments", "PairInfo",
    "QrelsLoader", "ceilings", "floor_text", "origins", "pair_order", "pair_report_files", "recorded_pair",
    "report_formats",
    "system_order",
    "PairPage", "PairReport", "Table", "build_pair_report", "fmt", "fmt_p", "label", "leaderboard_data",
    "leaderboard_html", "leaderboard_markdown", "md_lines", "md_table", "models_cell", "ordered", "pair_html",
    "pair_markdown", "pair_page", "versions_summary", "write_leaderboard", "write_pair_report",
    "write_texts",
]
