"""Robustness to misaligned bitext (the seed study's question): every trained system at every noise rate.

For each seed and rate, the systems that learn from the pair's bitext are run with ``bitext_noise=rate``
(the same seeded corruption for all of them, :mod:`bench.data.bitext`); the systems that use no bitext run
once, as reference lines. The table gives each system's mean over seeds at each rate and its slope
against the rate with an interval over seeds and queries, and tests whether the slopes of systems that
differ only in their distillation recipe differ (:mod:`bench.results.robustness`).

Runs are named like every run (:func:`bench.experiment.runner.cell_name`):
``<runs>/<pair>/<system>+noise<rate>[+seed<n>]/``, rate 0 being the plain run ``<runs>/<pair>/<system>/``,
so the sweep, ``bench run`` and the grid share runs. The table (long CSV and Markdown) and a plot of
each measure against the rate go to ``<reports>/<pair>.noise.{csv,md,png}``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, replace
from itertools import combinations
from pathlib import Path
from typing import Sequence

import pandas as pd

from bench.infra import plots
from bench.systems.options import RunOptions
from bench.data.pairs import Pair
from bench.errors import BenchError
from bench.results.report import md_table, write_texts, label
from bench.data.pair_ref import pair_ref, resolve_pair
from bench.experiment.estimate import Estimate, estimate
from bench.experiment.identity import archived, planned_identity, run_identity, stored_verdict
from bench.experiment.plan import RunPlan, check_options, noise_rates, parse_seeds
from bench.infra.store import atomic_file
from bench.methods.distill.recipes import RECIPES
from bench.results.robustness import slope, slope_difference
from bench.results.archive import archive_run
from bench.results.runs import StoredRun, load_run
from bench.results.stats import CONFIDENCE
from bench.systems import System, all_systems, parse_systems
from bench.systems.needs import combine
from bench.systems.stages import Dense, Student

log = logging.getLogger(__name__)

PRIMARY = "AP"
PER_QUERY_COLUMNS = ("system", "seed", "rate", "query_id", "measure", "value")
ARCHIVED, STORED, TO_RUN = "from the archive", "stored (reused)", "to run"  # where a sweep's run comes from


def parse_rates(value: str) -> list[float]:
    """The ``--rates`` of a sweep (:func:`bench.experiment.plan.noise_rates`), in increasing order."""
    return sorted(noise_rates(value, "--rates"))


@dataclass(frozen=True)
class Sweep:
    """The runs of a sweep, planned and checked before the first starts: one :class:`RunPlan` per seed and
    noise rate (the swept systems) and one for the references (which read no bitext: run once)."""

    pair: Pair
    rates: tuple[float, ...]
    seeds: tuple[int, ...]
    plans: tuple[RunPlan, ...]
    reference: RunPlan | None
    comparisons: tuple[tuple[str, str], ...] = ()

    def execute(self, reports_dir: Path, archive: Path | None = None) -> list[Path]:
        """Run every plan; write the table, Markdown and plot; return their paths. ``archive``: a folder of
        archived runs (:mod:`bench.results.archive`) that cells with identical inputs are taken from, and that
        every run of the sweep is added to."""
        rows = []
        used = []
        for plan in self.plans:
            rate = plan.options.bitext_noise
            log.info("seed %d, noise rate %g: %s", plan.seed, rate, ", ".join(s.name for s in plan.systems))
            for stored in plan_runs(plan, archive):
                rows.append(stored.per_query.assign(system=stored.system, seed=plan.seed, rate=rate))
                used.append(stored)
        refs = plan_runs(self.reference, archive) if self.reference else []
        used += refs
        taken = sum(archive is not None and archive.resolve() in stored.path.resolve().parents for stored in used)
        if taken:
            log.warning("%d of the sweep's %d runs taken from the archive in %s (identical inputs; -v names each)",
                        taken, len(used), archive)
        ref_means = {r.system: dict(r.manifest["measures"]) for r in refs}
        per_query = pd.concat(rows, ignore_index=True)[list(PER_QUERY_COLUMNS)]
        return write_sweep(self.pair.name, per_query, ref_means, reports_dir, self.comparisons)

    def sources(self, archive: Path | None = None) -> list[tuple[RunPlan, dict[str, Source]]]:
        """Each plan (the references' last) with where :meth:`execute` would take each of its systems' runs
        from, asked without building anything (:func:`planned_identity`), by the rule :func:`plan_runs`
        follows: the archived run of identical inputs, else the stored one, else the system runs."""
        found = []
        for plan in (*self.plans, *([self.reference] if self.reference else [])):
            collection = plan.pair.collection()
            where = {}
            for system in plan.systems:
                identity = planned_identity(plan.pair, system, plan.options, depth=plan.depth, seed=plan.seed,
                                            measures=plan.measures, collection=collection)
                where[system.name] = _source(identity, plan, archive)
            found.append((plan, where))
        return found

    def survey(self, archive: Path | None = None) -> Survey:
        """What the sweep would do, asked before it runs (:meth:`sources`), with the estimate of what its runs still
        to make build or train: what ``bench sweep noise --dry-run`` prints, and a long sweep first."""
        sources = self.sources(archive)
        to_run = []
        for plan, where in sources:
            running = tuple(s for s in plan.systems if where[s.name].where == TO_RUN)
            if running:  # a plan of exactly the systems that run (force: none of them is reused)
                to_run.append(replace(plan, systems=running, force=True))
        needs = combine(need for plan in to_run for need in plan.needs())
        return Survey(self, archive, sources, estimate(needs, dict.fromkeys((n.key for n in needs), self.pair)))


@dataclass(frozen=True)
class Survey:
    """A sweep before it runs: where each of its runs would come from (``sources``: each plan with a
    :class:`Source` per system) and the :class:`bench.experiment.estimate.Estimate` of the runs to make."""

    sweep: Sweep
    archive: Path | None
    sources: list[tuple[RunPlan, dict[str, Source]]]
    estimate: Estimate

    def lines(self) -> list[str]:
        """The survey in words: the sweep, each seed and rate with where its runs come from (and why an archived or
        stored run is not taken), the counts, then the estimate."""
        sweep = self.sweep
        reference = sweep.reference
        lines = [f"sweep: {', '.join(s.name for s in sweep.plans[0].systems)} on {sweep.pair.name} at rates "
                 f"{', '.join(f'{r:g}' for r in sweep.rates)}, seeds {', '.join(map(str, sweep.seeds))}"
                 + (f"; references (run once): {', '.join(s.name for s in reference.systems)}" if reference else "")]
        counts: Counter = Counter()
        unmatched = 0
        for plan, where in self.sources:
            cell = "references" if plan is reference else f"seed {plan.seed}, rate {plan.options.bitext_noise:g}"
            groups: dict[str, list[str]] = {}
            for name, source in where.items():
                groups.setdefault(source.where, []).append(name)
                counts[source.where] += 1
                unmatched += source.unmatched
            lines.append(f"  {cell}: " + "; ".join(f"{w}: {', '.join(n)}" for w, n in groups.items()))
            lines += [f"    {name}: {source.why}" for name, source in where.items() if source.why]
        lines.append("  runs: " + ", ".join(f"{counts[w]} {w}" for w in (ARCHIVED, STORED, TO_RUN)))
        if unmatched:
            lines.append(f"  {unmatched} of them counted as to run because their encoder is not prepared yet (the run "
                         "converts or downloads it first): only then can they be matched to a stored or archived run")
        lines += self.estimate.lines()
        lines.append(f"  runs in {sweep.plans[0].runs / sweep.pair.name}"
                     + (f", archive {self.archive / sweep.pair.name}" if self.archive is not None else ""))
        return lines


@dataclass(frozen=True)
class Source:
    """Where a sweep's run comes from (:data:`ARCHIVED`, :data:`STORED` or :data:`TO_RUN`); ``why``: why an
    archived or stored run is not taken; ``unmatched``: no identity could be asked yet (its models are not
    prepared), so none could be matched."""

    where: str
    why: str | None = None
    unmatched: bool = False


def _source(identity: dict | None, plan: RunPlan, archive: Path | None) -> Source:
    if identity is None:
        return Source(TO_RUN, unmatched=True)
    whys = []
    if archive is not None:
        verdict = stored_verdict(archive, plan.pair.name, identity, archived=True)
        if verdict.stored is not None:
            return Source(ARCHIVED)
        whys.append(verdict.why)
    verdict = stored_verdict(plan.runs, plan.pair.name, identity)
    if verdict.stored is not None:
        return Source(STORED)
    whys.append(verdict.why)
    return Source(TO_RUN, "; ".join(w for w in whys if w) or None)


def plan_runs(plan: RunPlan, archive: Path | None = None) -> list[StoredRun]:
    """The runs of ``plan``, in the order of its systems: a system's archived run where the run the plan makes
    of it would have the same identity, the others run (or reused, as stored); with an ``archive``, each run
    the plan makes or reuses is added to it."""
    taken = {}
    if archive is not None:
        collection = plan.pair.collection()
        for system in plan.systems:
            # not probed: the models' fingerprints are part of the identity, so they are prepared as the run would
            identity = run_identity(plan.pair, system, plan.options, depth=plan.depth, seed=plan.seed,
                                    measures=plan.measures, collection=collection)
            found = archived(archive, plan.pair.name, identity, level=logging.INFO)  # execute counts them
            if found is not None:
                taken[system.name] = found
    made = {}

    def keep(result) -> None:  # each run archived as soon as it is stored, not when the plan ends
        made[result.system] = load_run(result.path)
        if archive is not None:
            archive_run(made[result.system], archive)

    rest = tuple(s for s in plan.systems if s.name not in taken)
    if rest:
        replace(plan, systems=rest).execute(keep)
    return [taken[s.name] if s.name in taken else made[s.name] for s in plan.systems]


def plan_sweep(pair: str | Path | Pair, rates: Sequence[float], systems: str | Sequence[System] | None = None,
               options: RunOptions | dict | None = None, *, references: Sequence[System] | None = None,
               seeds: Sequence[int] = (0,), runs: str | Path = "runs") -> Sweep:
    """Check a sweep (the pair, the systems, the options against the swept systems and the references)
    and plan its runs, every seed at every rate. ``systems``: names or systems (default: every
    :func:`swept` system); the references default to every :func:`reference` system."""
    if len(set(rates)) < 2:
        # the table's slopes are fitted over the rates: refused before anything trains, not after
        raise BenchError(f"a noise sweep needs at least two rates, got {', '.join(f'{r:g}' for r in rates) or 'none'}",
                         "give two or more, e.g. --rates 0,0.2,0.4; for one rate: bench run --bitext-noise RATE")
    resolved = resolve_pair(pair)
    if systems is None or isinstance(systems, str):
        chosen, default_refs = default_systems(systems)
    else:
        chosen, default_refs = list(systems), []
    refs = list(default_refs if references is None else references)
    options = RunOptions.from_mapping(options)
    unmoved = [s.name for s in chosen if not s.learns_from_bitext(options)]
    if unmoved:
        raise BenchError(f"the noise rate changes nothing for {', '.join(unmoved)}: it learns nothing from the bitext",
                         "sweep systems that do (" + ", ".join(s.name for s in all_systems() if swept(s))
                         + "); the zero-shot encoder's lines are drawn as references")
    check_options(options, [*chosen, *refs])
    seeds = tuple(parse_seeds(list(seeds)))
    ref = pair_ref(pair)
    plans = tuple(RunPlan(resolved, ref, tuple(chosen), replace(options, bitext_noise=rate), seed=seed,
                          runs=Path(runs)) for seed in seeds for rate in rates)
    reference = None
    if refs:
        # the references read none of the training options, and no seed: run them once under the defaults
        reference_options = RunOptions.from_mapping(options.used(o for s in refs for o in s.reads))
        reference = RunPlan(resolved, ref, tuple(refs), reference_options, seed=seeds[0], runs=Path(runs))
    return Sweep(resolved, tuple(rates), seeds, plans, reference, tuple(recipe_pairs(chosen)))


def noise_sweep(pair: Pair, rates: Sequence[float], systems: Sequence[System], references: Sequence[System],
                runs_root: Path, reports_dir: Path, *, seeds: Sequence[int] = (0,),
                options: RunOptions | dict | None = None, archive: Path | None = None) -> list[Path]:
    """Plan and run a sweep (:func:`plan_sweep`); return the written table, Markdown and plot paths."""
    return plan_sweep(pair, rates, systems, options, references=references, seeds=seeds, runs=runs_root).execute(
        reports_dir, archive)


def recipe_pairs(systems: Sequence[System]) -> list[tuple[str, str]]:
    """Pairs of systems that differ only in their student's distillation recipe (``optical`` and its
    ablation ``sdistill``, under each scoring), in the order of :data:`RECIPES`: the sweep tests whether
    their slopes differ."""
    order = list(RECIPES)
    groups: dict = {}
    for system in systems:
        stages = system.stages
        if isinstance(stages, Dense) and isinstance(stages.foreign, Student) and stages.foreign.recipe in order:
            rest = {"query": stages.query.spec, "english": stages.english.spec, "scoring": stages.scoring}
            groups.setdefault(json.dumps(rest, sort_keys=True, default=str), []).append(system)
    pairs = []
    for members in groups.values():
        members.sort(key=lambda s: order.index(s.stages.foreign.recipe))
        pairs += [(a.name, b.name) for a, b in combinations(members, 2)]
    return pairs


def seed_means(per_query: pd.DataFrame) -> pd.DataFrame:
    """Each run's means (over its queries): one row per system, seed, rate and measure."""
    keys = ["system", "seed", "rate", "measure"]
    return per_query.groupby(keys, sort=False)["value"].mean().reset_index()


def write_sweep(pair: str, per_query: pd.DataFrame, references: dict[str, dict[str, float]], reports_dir: Path,
                comparisons: Sequence[tuple[str, str]] = ()) -> list[Path]:
    """The sweep's long table of run means (``<pair>.noise.csv``: system, seed, rate, measure, value), its
    Markdown (mean over seeds at each rate, ± their standard deviation when several ran; the slope against
    the rate with its interval over seeds and queries; the paired slope tests of ``comparisons``) and the
    plot of the primary measure (``<pair>.noise.png``). ``per_query``: the columns of
    :data:`PER_QUERY_COLUMNS`."""
    reports_dir = Path(reports_dir)
    means = seed_means(per_query)
    measures = list(dict.fromkeys(means["measure"]))
    rates = sorted(means["rate"].unique())
    seeds = sorted(means["seed"].unique())
    several = len(seeds) > 1
    values_are = "the mean over seeds ± their standard deviation" if several else "the run's mean"
    resampled = "seeds and queries resampled independently" if several else "queries resampled (one seed)"
    md = [f"# {pair}: effectiveness against the fraction of misaligned bitext", "",
          "Each trained system retrained at each rate (the same seeded corruption for all); references use no "
          f"bitext. Seeds: {', '.join(map(str, seeds))}; each value is {values_are}.", "",
          "Slope: the least-squares slope of the measure against the rate, per seed and query, averaged "
          f"(-0.25: each 10 points of misaligned pairs cost 0.025); in brackets its {CONFIDENCE:.0%} interval "
          f"by a bootstrap of {resampled}.", ""]
    for measure in measures:
        header = ["system", *(f"rate {r:g}" for r in rates), f"Δ at {rates[-1]:g}", "slope [interval]"]
        body = []
        for system in dict.fromkeys(means["system"]):
            rows = means[(means["system"] == system) & (means["measure"] == measure)]
            by_rate = rows.groupby("rate")["value"]
            values, spread = by_rate.mean(), by_rate.std()
            cells = [f"{values[r]:.3f}" + (f" ± {spread[r]:.3f}" if several else "") for r in rates]
            fit = slope(_values(per_query, system, measure))
            body.append([system, *cells, f"{values[rates[-1]] - values[rates[0]]:+.3f}",
                         f"{fit.slope:+.3f} [{fit.ci_low:+.3f}, {fit.ci_high:+.3f}]"])
        for name, ref in references.items():
            body.append([f"{name} (reference)", *(f"{ref[measure]:.3f}" for _ in rates), "+0.000", ""])
        md += [f"## {label(measure)}", "", *md_table(header, body), ""]
    md += _comparisons(per_query, comparisons)
    md += [f"Plot: `{pair}.noise.png` ({label(PRIMARY)}). Long form: `{pair}.noise.csv`.", ""]
    primary = means[means["measure"] == PRIMARY]
    png = plots.rate_chart(primary, label(PRIMARY), {n: m[PRIMARY] for n, m in references.items()})
    paths = [reports_dir / f"{pair}.noise.csv", reports_dir / f"{pair}.noise.md"]
    table = means.assign(pair=pair)[["pair", "system", "seed", "rate", "measure", "value"]]
    write_texts(paths, [table.to_csv(index=False, lineterminator="\n"), "\n".join(md)])
    with atomic_file(reports_dir / f"{pair}.noise.png") as tmp:
        tmp.write_bytes(png)
    return paths + [reports_dir / f"{pair}.noise.png"]


def _values(per_query: pd.DataFrame, system: str, measure: str) -> pd.DataFrame:
    return per_query[(per_query["system"] == system) & (per_query["measure"] == measure)]


def _comparisons(per_query: pd.DataFrame, comparisons: Sequence[tuple[str, str]]) -> list[str]:
    """The paired slope tests of the primary measure (one row per pair of systems both in the sweep)."""
    present = set(per_query["system"])
    rows = []
    for a, b in comparisons:
        if a in present and b in present:
            test = slope_difference(_values(per_query, a, PRIMARY), _values(per_query, b, PRIMARY))
            rows.append([f"{a} − {b}", f"{test.difference:+.3f} [{test.ci_low:+.3f}, {test.ci_high:+.3f}]",
                         f"{test.p_value:.4f}", str(test.seeds), str(test.queries)])
    if not rows:
        return []
    header = ["slopes compared", "difference [interval]", "p", "seeds", "queries"]
    return [f"## Do their slopes differ? ({label(PRIMARY)})", "",
            "Two systems trained on the same corrupted bitext, paired by seed and query: the mean slope "
            "difference with its interval (as above) and a two-sided sign-flip randomization test over "
            "queries of the seed-mean difference. A negative difference: the first falls faster.", "",
            *md_table(header, rows), ""]


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
