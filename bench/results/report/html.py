"""Self-contained HTML from the table model: jinja2 templates (``templates/``, autoescaped), inline CSS,
figures as PNG data URIs, no scripts and no external assets, so one file can be mailed, archived or
opened offline."""

from __future__ import annotations

import base64
from functools import cache

import jinja2

from bench.results.report.model import LABELS, label
from bench.results.report.tables import NOISE_NOTE, PROVENANCE_NOTE, TRAINING_NOTE, PairPage


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("bench.results.report", "templates"), autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )


def render(template: str, **context) -> str:
    """``templates/<template>`` rendered with ``context``; every value is escaped (autoescape)."""
    return environment().get_template(template).render(**context)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def pair_html(page: PairPage) -> str:
    from bench.infra import plots  # matplotlib: only when a page is drawn

    report = page.report
    bars = plots.bar_chart(report.table, report.systems, report.measures, LABELS, report.baseline)
    figures = {"bars": data_uri(bars)}
    if page.differences is not None:
        figures["differences"] = data_uri(plots.difference_chart(page.differences.values, page.differences.title))
    return render("pair.html.j2", page=page, report=report, figures=figures, primary=label(report.primary),
                  provenance_note=PROVENANCE_NOTE, noise_note=NOISE_NOTE, training_note=TRAINING_NOTE)
