"""One plan per run: what a run will do, settled once, before anything runs, and then run.

:func:`plan_run` resolves the pair (a name, a pair file or a :class:`~bench.data.pairs.Pair`), chooses
the systems (named ones, the ``ci`` profile's, or every system that applies to the pair), checks the
options against them, the measures, the depth, the seed, the baseline, validates the external runs and
fetches what the run must fetch (CIRAL's passages, AfriCLIRMatrix's documents), so a typo fails in one
line before hours of training, never after. The :class:`RunPlan` it returns is what ``bench run`` and
:func:`bench.run` execute (:meth:`RunPlan.execute`); ``bench sweep`` runs one plan per noise rate and
each cell of ``bench grid`` is a plan of one system (checked once for the whole grid). The CLI and the
API differ only in how they present the result. A plan knows before it runs which systems' stored runs
it reuses (:mod:`bench.experiment.identity`) and what its builds and trainings will take
(:mod:`bench.experiment.estimate`): what ``bench run --dry-run`` prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from bench.data.pair_ref import pair_ref, resolve_pair
from bench.data.pairs import Pair
from bench.errors import BenchError, did_you_mean
from bench.infra.environment import check_environment
from bench.infra.store import check_dir
from bench.results.runs import MANIFEST_FILE, run_dir
from bench.results.scoring import check_measures
from bench.systems import System, ci_systems, default_systems, get_system, parse_systems
from bench.systems.options import RunOptions, flag, unread


@dataclass(frozen=True)
class RunPlan:
    """A checked run: ``systems`` on ``pair`` under ``options``, ``depth``, ``seed`` and ``measures`` (None:
    the pair's), stored under ``runs``; the report (when ``reports`` is set) against ``baseline``;
    ``external``: validated runs made elsewhere, stored beside the systems'. ``ref``: how a worker
    process resolves the pair (:func:`bench.data.pair_ref.resolve_pair`). A system whose stored run has
    the identity this plan gives it is reused (:mod:`bench.experiment.identity`), unless ``force``."""

    pair: Pair
    ref: str
    systems: tuple[System, ...]
    options: RunOptions = field(default_factory=RunOptions)
    depth: int = 1000
    seed: int = 0
    measures: tuple[str, ...] | None = None
    runs: Path = Path("runs")
    reports: Path | None = None
    baseline: str | None = None
    external: tuple = ()  # bench.experiment.external.ExternalRun
    force: bool = False  # run every system again, whatever is stored

    def execute(self, stored: Callable[[Any], None] | None = None) -> list:
        """Run the systems, then store the external runs (:class:`bench.experiment.runner.RunResult` each).
        ``stored``: called with each system's result as soon as its run is stored (or reused)."""
        from bench.experiment import external
        from bench.experiment.runner import run_systems

        pair = resolve_pair(self.ref) if self.ref != self.pair.name else self.pair
        measures = list(self.measures) if self.measures else None
        # with a report, it is rewritten after each system, so the first rows are readable while the rest run
        partial_report = self.reports is not None and len(self.systems) > 1

        def progress(result) -> None:
            if stored is not None:
                stored(result)
            if partial_report:
                self.write_report(partial=True)

        results = run_systems(pair, list(self.systems), self.runs, depth=self.depth, seed=self.seed,
                              options=self.options, measures=measures, stored=progress, force=self.force)
        if self.external:
            results += external.store(pair, self.external, self.runs, measures=measures)
        return results

    @cached_property
    def reused(self) -> tuple[str, ...]:
        """The systems whose stored run has the identity this plan gives it (none under ``force``): those
        :meth:`execute` will reuse. Asked without building anything: a system whose models are not there yet
        (to be converted or downloaded) is counted as one to run."""
        if self.force:
            return ()
        from bench.experiment.identity import planned_identity, stored_verdict

        collection = self.pair.collection()
        names = []
        for system in self.systems:
            identity = planned_identity(self.pair, system, self.options, depth=self.depth, seed=self.seed,
                                        measures=self.measures, collection=collection)
            if identity is not None and stored_verdict(self.runs, self.pair.name, identity).stored is not None:
                names.append(system.name)
        return tuple(names)

    def needs(self) -> list:
        """The cached artifacts the runs of the systems not :attr:`reused` build on first use (each once; a
        finished one is reused), in the order they would be built (:mod:`bench.systems.needs`); a plugin's own
        are not known here."""
        from bench.systems import Job
        from bench.systems.needs import combine

        job = Job(self.pair, self.ref, self.options, self.seed)
        return combine([need for system in self.systems if system.name not in self.reused
                        for need in system.needs(job)])

    @cached_property
    def estimate(self):
        """How long building :meth:`needs` takes (:class:`bench.experiment.estimate.Estimate`; a finished one
        costs nothing)."""
        from bench.experiment.estimate import estimate

        needs = self.needs()
        return estimate(needs, dict.fromkeys((n.key for n in needs), self.pair))

    def describe(self) -> list[str]:
        """The plan in words: what a dry run prints (the pair, the systems, the settings, the stored runs
        reused, what is built or trained and for about how long)."""
        used = self.options.used(self.options.as_dict())
        lines = [f"plan: {len(self.systems)} system(s) on {self.pair.name} ({self.pair.description}), depth "
                 f"{self.depth}, seed {self.seed}, measures {', '.join(self.measures or self.pair.measures)}"
                 + (f", options {', '.join(f'{k}={v}' for k, v in used.items())}" if used else ""),
                 "  systems: " + ", ".join(f"{s.name} ({s.family})" for s in self.systems)]
        if self.reused:
            lines.append("  reused, a stored run with identical inputs (--force recomputes): " + ", ".join(self.reused))
        if self.external:
            lines.append("  external runs: " + ", ".join(e.name for e in self.external))
        lines += self.estimate.lines()
        lines.append(f"  runs in {self.runs / self.pair.name}"
                     + (f", report in {self.reports}" if self.reports is not None else ", no report"))
        return lines

    def write_report(self, partial: bool = False) -> list[Path]:
        """The pair's report from the runs stored under ``runs`` (none when the plan writes no report), with the
        documents of its largest losses read from the pair (:mod:`bench.experiment.documents`); ``partial``:
        while the run goes on, against the default baseline until the chosen one has run, without them."""
        if self.reports is None:
            return []
        from bench.experiment.reporting import write_report

        baseline = self.baseline
        stored = baseline is not None and (run_dir(self.runs, self.pair.name, baseline) / MANIFEST_FILE).is_file()
        if partial and not stored:
            baseline = None
        return write_report(self.pair.name, self.runs, self.reports, given=self.pair, partial=partial,
                            baseline=baseline)


def plan_run(pair: str | Path | Pair, systems: str | Sequence[str | System] | None = None, *,
             options: RunOptions | Mapping[str, Any] | None = None, depth: Any = 1000, seed: Any = 0,
             measures: str | Sequence[str] | None = None, runs: str | Path = "runs",
             reports: str | Path | None = None, baseline: str | None = None,
             external: Sequence[str] = (), fetch: bool = True, force: bool = False) -> RunPlan:
    """Check everything a run needs and return its :class:`RunPlan` (nothing is run or written).

    ``external``: ``NAME=PATH`` runs made elsewhere, validated now; ``fetch``: fetch the corpora that
    are published outside GitHub now (once, where online); ``force``: run every system again, whatever
    is stored."""
    check_environment()
    resolved = resolve_pair(pair)
    run_options = RunOptions.from_mapping(options)
    chosen = choose_systems(resolved, systems, run_options)
    check_options(run_options, chosen)
    names = measure_names(measures)
    if names is None and resolved.files:  # a pair file's own measures are the user's too
        check_measures(resolved.measures)
    runs_root = Path(runs)
    check_dir(runs_root, "runs")  # a file, or a place that cannot be written: refused before any work
    if reports is not None:
        check_dir(Path(reports), "reports")
    external_names = [str(r).split("=", 1)[0] for r in external]
    check_baseline(baseline, [s.name for s in chosen] + external_names, runs_root, resolved)
    prepared = ()
    if external:  # validated before any system runs: a bad run file costs nothing
        from bench.experiment import external as ext

        prepared = tuple(ext.prepare(resolved, list(external), runs_root))
    if fetch and chosen:
        from bench.methods.retrieve.prebuilt import fetch_corpus

        fetch_corpus(resolved.dataset_id)  # CIRAL's passages, AfriCLIRMatrix's documents: once, where online
    return RunPlan(resolved, pair_ref(pair), tuple(chosen), run_options, positive_int("depth", depth),
                   non_negative_int("seed", seed), tuple(names) if names else None, runs_root,
                   None if reports is None else Path(reports), baseline, prepared, bool(force))


def choose_systems(pair: Pair, names: str | Sequence[str | System] | None, options: RunOptions) -> list[System]:
    """The systems named, else the ``ci`` profile's, else every system that applies to the pair
    (:func:`bench.systems.default_systems`; with an ``mt_model``, the NMT systems on any pair)."""
    systems = parse_systems(names)
    if systems is None and options.profile == "ci":
        systems = ci_systems()
    if systems is None:
        has_translations = all(q.translation for q in pair.collection().queries)
        systems = default_systems(has_translations, pair.doc_lang, mt_model=bool(options.mt_model))
    return systems


def check_options(options: RunOptions, systems: Iterable[System]) -> None:
    """An option that no chosen system reads is an error, and so are a ``rerank`` naming no system and
    an ``encoder``, ``teacher`` or ``mt_model`` that resolves to no model."""
    ignored = unread(options, [o for s in systems for o in s.reads])
    if ignored:
        raise BenchError(f"no chosen system reads the option {ignored[0]} ({flag(ignored[0])})",
                         "drop it, or choose a system that reads it (bench systems lists them)")
    if options.rerank:
        try:
            get_system(options.rerank)
        except BenchError as exc:
            raise BenchError(f"option rerank: {exc.message}", exc.hint) from None
    for name in ("encoder", "teacher", "mt_model"):
        if getattr(options, name):
            _check_model(name, getattr(options, name))


def _check_model(name: str, spec: str) -> None:
    """Resolve a model option now, naming the closest packaged model when it is a typo of one."""
    from bench.data import models

    if name != "mt_model" and spec in models.PACKAGED:
        return  # converted (once) when a system first uses it
    try:
        if name == "mt_model":
            from bench.methods.translate import nmt

            nmt.resolve(spec)
        else:
            models.resolve(spec)
    except BenchError as exc:
        raise BenchError(f"option {name}: {exc.message}",
                         did_you_mean(spec, models.PACKAGED, exc.hint, cutoff=0.8)) from None


def measure_names(value: str | Sequence[str] | None) -> list[str] | None:
    """ir_measures names (comma-separated or a sequence), parsed by ir_measures, in their canonical
    form (``ndcg@10`` is refused, ``nDCG@10`` kept); None when none were given."""
    if value is None:
        return None
    items = re.split(r",(?![^()]*\))", value) if isinstance(value, str) else list(value)  # AP(rel=2,judged_only=True)
    names = [str(m).strip() for m in items if str(m).strip()]
    if not names:
        raise BenchError(f"--measures {value!r} names no measure", "e.g. --measures AP,nDCG@10")
    return list(dict.fromkeys(check_measures(names)))


def check_baseline(baseline: str | None, systems: Iterable[str], runs_root: Path, pair: Pair) -> None:
    """The report's baseline must be one of this run's systems or have a stored run of the pair."""
    if baseline is None:
        return
    names = list(systems)
    if baseline in names or (run_dir(Path(runs_root), pair.name, baseline) / MANIFEST_FILE).is_file():
        return
    raise BenchError(f"baseline {baseline!r} is not among the chosen systems and has no run under "
                     f"{Path(runs_root) / pair.name}",
                     did_you_mean(baseline, names, "choose one of: " + ", ".join(names), cutoff=0.5))


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        return int(value)
    return None


def positive_int(name: str, value: Any) -> int:
    """A whole number of at least 1 (``depth``), else an error naming ``name``."""
    whole = _whole(value)
    if whole is None or whole < 1:
        raise BenchError(f"{name} must be a positive integer, got {value!r}", f"e.g. {name}=1000")
    return whole


def non_negative_int(name: str, value: Any) -> int:
    """A whole number of at least 0 (``seed``), else an error naming ``name``."""
    whole = _whole(value)
    if whole is None or whole < 0:
        raise BenchError(f"{name} must be a non-negative integer, got {value!r}", f"e.g. {name}=0")
    return whole


def listed(value: Any) -> list:
    """The items of a comma-separated string, a list or tuple, or one value (none for None), blanks dropped."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else [value]
    return [i.strip() if isinstance(i, str) else i for i in items if not (isinstance(i, str) and not i.strip())]


def parse_seeds(value: Any) -> list[int]:
    """Distinct non-negative integer seeds (``--seeds`` of the grid and the sweep), in the order given."""
    items = listed(value)
    try:
        seeds = [int(s) for s in items if not isinstance(s, bool) and float(s) == int(s)]
    except (TypeError, ValueError):
        seeds = []
    if not seeds or len(seeds) != len(items) or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise BenchError(f"--seeds must be distinct non-negative integers, got {value!r}", "e.g. --seeds 0,1,2")
    return seeds


def noise_rates(value: Any, name: str = "--noise") -> list[float]:
    """Distinct fractions of misaligned bitext in [0, 1), comma-separated or a sequence (``--noise`` of the
    grid, ``--rates`` of the sweep), in the order given."""
    items = listed(value)
    try:
        rates = [float(r) for r in items if not isinstance(r, bool)]
    except (TypeError, ValueError):
        rates = []
    if not rates or len(rates) != len(items) or not all(0 <= r < 1 for r in rates) or len(set(rates)) != len(rates):
        raise BenchError(f"{name} must be distinct fractions in [0, 1), got {value!r}", f"e.g. {name} 0,0.2,0.4")
    return rates
