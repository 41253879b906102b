"""Robustness to misaligned bitext (the seed study's question): every trained system at every noise rate.

For each rate, the systems that learn from the pair's bitext are run with ``bitext_noise=rate``
(the same seeded corruption for all of them, :mod:`bench.data.bitext`); the systems that use no bitext run
once, as reference lines. Runs are named like every run (:func:`bench.experiment.runner.cell_name`):
``<runs>/<pair>/<system>+noise<rate>[+seed<n>]/``, rate 0 being the plain run ``<runs>/<pair>/<system>/``,
so the sweep, ``bench run`` and the grid share runs. The table (long CSV and Markdown) and a plot of
each measure against the rate go to ``<reports>/<pair>.noise.{csv,md,png}``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import pandas as pd

from bench.infra import plots
from bench.errors import BenchError
from bench.systems.options import RunOptions
from bench.data.pairs import Pair
from bench.results.report import md_table, write_texts, label
from bench.experiment.runner import run_systems
from bench.infra.store import atomic_file
from bench.systems import System, all_systems, get_system

log = logging.getLogger(__name__)

PRIMARY = "AP"


def parse_rates(value: str) -> list[float]:
    try:
        rates = [float(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise BenchError(f"--rates must be comma-separated numbers, got {value!r}", "e.g. --rates 0,0.2,0.4") from None
    if not rates or any(not 0 <= r < 1 for r in rates) or len(set(rates)) != len(rates):
        raise BenchError(f"--rates must be distinct fractions in [0, 1), got {value!r}", "e.g. --rates 0,0.2,0.4")
    return sorted(rates)


def noise_sweep(pair: Pair, rates: Sequence[float], systems: Sequence[System], references: Sequence[System],
                runs_root: Path, reports_dir: Path, *, seed: int = 0,
                options: RunOptions | dict | None = None) -> list[Path]:
    """Run the sweep; return the written table, Markdown and plot paths."""
    options = RunOptions.from_mapping(options)
    rows = []
    for rate in rates:
        log.info("noise rate %g: %s", rate, ", ".join(s.name for s in systems))
        results = run_systems(pair, list(systems), Path(runs_root), seed=seed, options=replace(options, bitext_noise=rate))
        rows += [{"pair": pair.name, "system": r.system, "rate": rate, "measure": m, "value": v}
                 for r in results for m, v in r.means.items()]
    ref_means = {}
    if references:
        # the references read none of the training options: run them under the defaults they read
        reference_options = RunOptions.from_mapping(options.used(o for s in references for o in s.reads))
        for r in run_systems(pair, list(references), Path(runs_root), seed=seed, options=reference_options):
            ref_means[r.system] = r.means
    table = pd.DataFrame(rows, columns=["pair", "system", "rate", "measure", "value"])
    return write_sweep(pair.name, table, ref_means, reports_dir)


def write_sweep(pair: str, table: pd.DataFrame, references: dict[str, dict[str, float]], reports_dir: Path) -> list[Path]:
    reports_dir = Path(reports_dir)
    measures = list(dict.fromkeys(table["measure"]))
    wide = table.pivot_table(index="system", columns=["measure", "rate"], values="value", sort=False)
    rates = sorted(table["rate"].unique())
    md = [f"# {pair}: effectiveness against the fraction of misaligned bitext", "",
          "Each trained system retrained at each rate (the same seeded corruption for all); references use no "
          "bitext.", ""]
    for measure in measures:
        header = ["system", *(f"rate {r:g}" for r in rates), f"Δ at {rates[-1]:g}"]
        body = []
        for system in dict.fromkeys(table["system"]):
            values = [wide.loc[system, (measure, r)] for r in rates]
            body.append([system, *(f"{v:.3f}" for v in values), f"{values[-1] - values[0]:+.3f}"])
        for name, means in references.items():
            body.append([f"{name} (reference)", *(f"{means[measure]:.3f}" for _ in rates), "+0.000"])
        md += [f"## {label(measure)}", "", *md_table(header, body), ""]
    md += [f"Plot: `{pair}.noise.png` ({label(PRIMARY)}). Long form: `{pair}.noise.csv`.", ""]
    primary = table[table["measure"] == PRIMARY]
    png = plots.rate_chart(primary, label(PRIMARY), {n: m[PRIMARY] for n, m in references.items()})
    paths = [reports_dir / f"{pair}.noise.csv", reports_dir / f"{pair}.noise.md"]
    write_texts(paths, [table.to_csv(index=False, lineterminator="\n"), "\n".join(md)])
    with atomic_file(reports_dir / f"{pair}.noise.png") as tmp:
        tmp.write_bytes(png)
    return paths + [reports_dir / f"{pair}.noise.png"]


def swept(system: System) -> bool:
    """Swept by default: a system that learns from the bitext, unless it trains an MT model (an hour a rate
    on a CPU: name it to sweep it) or fuses other systems (their runs are swept)."""
    stages = system.stages
    return (system.learns_from_bitext() and stages is not None and not stages.english_documents_only
            and not system.uses)


def reference(system: System) -> bool:
    """A reference line: a built-in system of the zero-shot encoder on the query as asked (what the
    students start from); it uses no bitext."""
    return system.stages is not None and system.stages.zero_shot


def default_systems(names: str | None) -> tuple[list[System], list[System]]:
    """The swept systems (``names`` or every :func:`swept` one) and the references (:func:`reference`)."""
    every = all_systems()
    chosen = [get_system(n.strip()) for n in names.split(",") if n.strip()] if names else [s for s in every if swept(s)]
    return chosen, [s for s in every if reference(s)]
