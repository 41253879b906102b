"""The report's figures as PNG bytes (matplotlib's Agg canvas, no pyplot and no global backend)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

BASELINE_COLOR = "#9e9e9e"
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def bar_chart(table: pd.DataFrame, systems: list[str], measures: list[str], labels: dict[str, str],
              baseline: str | None) -> bytes:
    """Grouped bars: one group per measure, one bar per system, 95% intervals as error bars."""
    width = 0.8 / max(len(systems), 1)
    fig = Figure(figsize=(max(6.0, 1.0 + len(measures) * (0.35 + 0.22 * len(systems))), 4.0))
    ax = fig.add_subplot()
    x = np.arange(len(measures))
    colors = iter(PALETTE * 3)
    for i, system in enumerate(systems):
        rows = table[table["system"] == system].set_index("measure").reindex(measures)
        means = rows["mean"].to_numpy(dtype=float)
        err = np.vstack([means - rows["ci_low"].to_numpy(dtype=float), rows["ci_high"].to_numpy(dtype=float) - means])
        err = np.nan_to_num(err, nan=0.0)
        is_base = system == baseline
        ax.bar(x + (i - (len(systems) - 1) / 2) * width, np.nan_to_num(means), width * 0.92, yerr=err,
               capsize=2, error_kw={"elinewidth": 0.8, "ecolor": "#333333"},
               color=BASELINE_COLOR if is_base else next(colors), hatch="//" if is_base else None,
               edgecolor="white", linewidth=0.5, label=f"{system} (baseline)" if is_base else system)
    ax.set_xticks(x, [labels.get(m, m) for m in measures])
    ax.set_ylim(0, min(1.0, max(0.1, float(np.nanmax(table["ci_high"].fillna(table["mean"]))) * 1.12)))
    ax.set_ylabel("mean over queries (95% CI)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=9)
    return _png(fig)


def difference_chart(diffs: pd.Series, title: str) -> bytes:
    """Per-query differences (system − baseline), sorted from the largest gain to the largest loss."""
    values = diffs.sort_values(ascending=False).to_numpy(dtype=float)
    fig = Figure(figsize=(8.0, 3.2))
    ax = fig.add_subplot()
    colors = np.where(values > 0, "#2ca02c", np.where(values < 0, "#d62728", "#9e9e9e"))
    ax.bar(np.arange(values.size), values, 1.0, color=colors, linewidth=0)
    ax.axhline(0, color="#333333", linewidth=0.8)
    ax.set_xlim(-0.5, values.size - 0.5)
    ax.set_xticks([])
    ax.set_xlabel(f"{values.size} queries, sorted by difference")
    ax.set_ylabel("difference")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return _png(fig)


def rate_chart(table: pd.DataFrame, measure_label: str, references: dict[str, float] | None = None) -> bytes:
    """One line per system of ``value`` against ``rate`` (columns system, rate, value; several rows of a
    system at one rate, its seeds, are drawn as their mean with their range shaded); references (systems
    that do not depend on the rate) as dashed horizontal lines."""
    fig = Figure(figsize=(6.5, 4.0))
    ax = fig.add_subplot()
    colors = iter(PALETTE * 3)
    for system, rows in table.groupby("system", sort=False):
        stats = rows.groupby("rate")["value"].agg(["mean", "min", "max"]).sort_index()
        color = next(colors)
        ax.plot(stats.index, stats["mean"], marker="o", color=color, label=system)
        if (stats["max"] > stats["min"]).any():
            ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=0.15, linewidth=0)
    for name, value in (references or {}).items():
        ax.axhline(value, linestyle="--", linewidth=1.0, color=next(colors), label=f"{name} (no bitext)")
    ax.set_xlabel("fraction of misaligned bitext pairs")
    ax.set_ylabel(measure_label)
    ax.set_xticks(sorted(table["rate"].unique()))
    ax.grid(alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=9)
    return _png(fig)
