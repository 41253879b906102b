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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import pandas as pd

from bench.infra import plots
from bench.systems.options import RunOptions
from bench.data.pairs import Pair
from bench.results.report import md_table, write_texts, label
from bench.data.pair_ref import pair_ref, resolve_pair
from bench.experiment.plan import RunPlan, check_options, noise_rates
from bench.infra.store import atomic_file
from bench.systems import System, all_systems, parse_systems

log = logging.getLogger(__name__)

PRIMARY = "AP"


def parse_rates(value: str) -> list[float]:
    """The ``--rates`` of a sweep (:func:`bench.experiment.plan.noise_rates`), in increasing order."""
    return sorted(noise_rates(value, "--rates"))


@dataclass(frozen=True)
class Sweep:
    """The runs of a sweep, planned and checked before the first starts: one :class:`RunPlan` per noise
    rate (the swept systems) and one for the references (which read no bitext: run once)."""

    pair: Pair
    rates: tuple[float, ...]
    plans: tuple[RunPlan, ...]
    reference: RunPlan | None

    def execute(self, reports_dir: Path) -> list[Path]:
        """Run every plan; write the table, Markdown and plot; return their paths."""
        rows = []
        for rate, plan in zip(self.rates, self.plans):
            log.info("noise rate %g: %s", rate, ", ".join(s.name for s in plan.systems))
            rows += [{"pair": self.pair.name, "system": r.system, "rate": rate, "measure": m, "value": v}
                     for r in plan.execute() for m, v in r.means.items()]
        ref_means = {r.system: r.means for r in self.reference.execute()} if self.reference else {}
        table = pd.DataFrame(rows, columns=["pair", "system", "rate", "measure", "value"])
        return write_sweep(self.pair.name, table, ref_means, reports_dir)


def plan_sweep(pair: str | Path | Pair, rates: Sequence[float], systems: str | Sequence[System] | None = None,
               options: RunOptions | dict | None = None, *, references: Sequence[System] | None = None,
               seed: int = 0, runs: str | Path = "runs") -> Sweep:
    """Check a sweep (the pair, the systems, the options against the swept systems and the references)
    and plan its runs. ``systems``: names or systems (default: every :func:`swept` system); the references
    default to every :func:`reference` system."""
    resolved = resolve_pair(pair)
    if systems is None or isinstance(systems, str):
        chosen, default_refs = default_systems(systems)
    else:
        chosen, default_refs = list(systems), []
    refs = list(default_refs if references is None else references)
    options = RunOptions.from_mapping(options)
    check_options(options, [*chosen, *refs])
    ref = pair_ref(pair)
    plans = tuple(RunPlan(resolved, ref, tuple(chosen), replace(options, bitext_noise=rate), seed=seed,
                          runs=Path(runs)) for rate in rates)
    reference = None
    if refs:
        # the references read none of the training options: run them under the defaults they read
        reference_options = RunOptions.from_mapping(options.used(o for s in refs for o in s.reads))
        reference = RunPlan(resolved, ref, tuple(refs), reference_options, seed=seed, runs=Path(runs))
    return Sweep(resolved, tuple(rates), plans, reference)


def noise_sweep(pair: Pair, rates: Sequence[float], systems: Sequence[System], references: Sequence[System],
                runs_root: Path, reports_dir: Path, *, seed: int = 0,
                options: RunOptions | dict | None = None) -> list[Path]:
    """Plan and run a sweep (:func:`plan_sweep`); return the written table, Markdown and plot paths."""
    return plan_sweep(pair, rates, systems, options, references=references, seed=seed, runs=runs_root).execute(
        reports_dir)


def write_sweep(pair: str, table: pd.DataFrame, references: dict[str, dict[str, float]],
                reports_dir: Path) -> list[Path]:
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


def default_systems(names: str | Sequence[str] | None) -> tuple[list[System], list[System]]:
    """The swept systems (``names`` or every :func:`swept` one) and the references (:func:`reference`)."""
    every = all_systems()
    chosen = parse_systems(names) if names else [s for s in every if swept(s)]
    return chosen, [s for s in every if reference(s)]
