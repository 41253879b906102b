"""The experiment grid: pairs × systems × seeds × noise rates, planned and checked before anything runs.

A :class:`GridSpec` is what was asked for (flags of ``bench grid`` or a YAML file, :func:`load_grid_file`).
:func:`plan_grid` checks it as ``bench run`` checks a run (pairs, systems, options, measures, the
pairs' inputs; downloads fetched now) and expands it into a :class:`GridPlan`:

- **cells**: one per pair, system and the (seed, noise rate) its run depends on
  (:meth:`bench.systems.System.variant`): the noise rates multiply the systems that read ``bitext_noise``,
  the seeds those that train or learn from noised bitext; every other system runs once (the plan's
  notes say which). A cell writes ``runs/<pair>/<run_name>/`` like ``bench run``; one whose stored run
  ``bench run`` would reuse (the same identity: :mod:`bench.experiment.identity`) is done already and
  left out, unless the grid is forced.
- **needs**: every artifact the cells build (:mod:`bench.systems.needs`), one task per artifact, deduplicated
  across cells (and pairs: one Lucene index for pairs over one corpus), in dependency order, so no artifact is
  built twice even without the store's locks; :attr:`GridPlan.estimate` says what building them will take.

:meth:`GridPlan.tasks` is the order the tasks run in one at a time (each cell right after the needs
it is the first to use); Ray runs the same tasks, a task as soon as its needs are built. Nothing here
imports Ray (:mod:`bench.experiment.grid_exec` runs a plan).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

from bench.data.pair_ref import pair_ref, resolve_pair
from bench.errors import BenchError, did_you_mean
from bench.experiment.plan import (RunPlan, check_options, choose_systems, listed, measure_names, noise_rates,
                                   parse_seeds)
from bench.systems.needs import Key, Need, combine
from bench.systems.options import RunOptions
from bench.data.pairs import Pair
from bench.experiment.identity import planned_identity, reusable
from bench.experiment.runner import check_inputs, check_sizes
from bench.results.runs import run_name
from bench.systems import Job, System

log = logging.getLogger(__name__)


@dataclass
class GridSpec:
    """What a grid is asked to run (the keys of a grid file; ``bench grid`` has a flag for each)."""

    pairs: list[str] = field(default_factory=list)  # built-in pair names (or pair files' paths)
    pair_files: list[Path] = field(default_factory=list)
    systems: list[str] | None = None  # None: every system that applies to each pair
    seeds: list[int] = field(default_factory=lambda: [0])
    noise: list[float] = field(default_factory=lambda: [0.0])
    options: dict[str, Any] = field(default_factory=dict)  # run options (bench.systems.options.RunOptions), all cells
    depth: int = 1000
    measures: list[str] | None = None
    shards: int = 1  # document encodings split into this many shard tasks
    ray: str | None = None  # None: in-process; "local", "auto" or a cluster's address
    max_parallel: int | None = None  # CPUs of a local Ray (default: the machine's)
    retries: int = 1  # times Ray runs a task again whose worker died
    runs: Path = Path("runs")
    reports: Path = Path("reports")
    no_report: bool = False


GRID_KEYS = tuple(f.name for f in fields(GridSpec))


def _positive(name: str, value, minimum: int = 1) -> int:
    whole = ((isinstance(value, int) and not isinstance(value, bool))
             or (isinstance(value, str) and value.strip().isdigit()))
    if not whole or int(value) < minimum:
        raise BenchError(f"--{name.replace('_', '-')} must be an integer of at least {minimum}, got {value!r}")
    return int(value)


def grid_spec(values: dict[str, Any], base: Path | None = None) -> GridSpec:
    """A checked :class:`GridSpec` from plain values (None: the default); an unknown key is an error
    naming the closest key; paths are relative to ``base`` (a grid file's folder)."""
    unknown = [k for k in values if k not in GRID_KEYS]
    if unknown:
        raise BenchError(f"unknown grid key {unknown[0]!r}",
                         did_you_mean(unknown[0], GRID_KEYS, "known keys: " + ", ".join(GRID_KEYS)))
    v = {k: x for k, x in values.items() if x is not None}
    here = base or Path(".")
    spec = GridSpec()
    spec.pairs = [str(p) for p in listed(v.get("pairs"))]
    spec.pair_files = [(here / str(p)).resolve() for p in listed(v.get("pair_files"))]
    if "systems" in v:
        spec.systems = [str(s) for s in listed(v["systems"])]
        if not spec.systems:
            raise BenchError(f"--systems {v['systems']!r} names no system", "e.g. --systems bm25,bm25-psq")
    if "seeds" in v:
        spec.seeds = parse_seeds(v["seeds"])
    if "noise" in v:
        spec.noise = noise_rates(v["noise"])
    options = v.get("options", {})
    if not isinstance(options, dict):
        raise BenchError(f"grid key options must be a mapping of run options, got {options!r}",
                         "e.g. options: {encoder: X}")
    if "bitext_noise" in options:
        raise BenchError("the grid's noise rates are its `noise` key (--noise), not the option bitext_noise",
                         "e.g. noise: [0, 0.2]")
    spec.options = dict(options)
    RunOptions.from_mapping(spec.options)  # an unknown or bad option fails here, in one line
    for name, minimum in (("depth", 1), ("shards", 1), ("max_parallel", 1), ("retries", 0)):
        if name in v:
            setattr(spec, name, _positive(name, v[name], minimum))
    if "measures" in v:
        spec.measures = [str(m) for m in listed(v["measures"])]
    if "ray" in v:
        spec.ray = str(v["ray"]).strip() or None
    for name in ("runs", "reports"):
        if name in v:
            setattr(spec, name, here / str(v[name]) if base else Path(str(v[name])))
    spec.no_report = bool(v.get("no_report", False))
    if not spec.pairs and not spec.pair_files:
        raise BenchError("a grid needs pairs", "e.g. --pairs sw-en,ha-en,yo-en (or pair_files: in a grid file)")
    return spec


def load_grid_file(path: Path) -> dict[str, Any]:
    """The values of a YAML grid file (the keys of :class:`GridSpec`; checked by :func:`grid_spec`)."""
    from bench.infra.strict import load_yaml, utf8_text

    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise BenchError(f"cannot read grid file {path}: {exc.strerror}", "check the path") from exc
    data = load_yaml(utf8_text(path, raw), path, "fix the grid file")  # a repeated key is an error, not the last
    if not isinstance(data, dict):
        raise BenchError(f"{path}: expected a mapping of grid keys to values", "keys: " + ", ".join(GRID_KEYS))
    try:
        grid_spec(data, Path(path).parent)
    except BenchError as exc:
        raise BenchError(f"{path}: {exc.message}", exc.hint) from None
    return data


# --- the plan --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One run: a system on a pair under the seed and noise rate its run depends on."""

    pair: str
    ref: str  # what a worker resolves the pair by: a built-in name or a pair file's absolute path
    system: System
    seed: int
    noise: float
    options: RunOptions  # the grid's, with this cell's bitext_noise
    run: str  # the run directory's name (bench.results.runs.run_name)
    needs: tuple[Key, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.pair, self.run)

    @property
    def label(self) -> str:
        return f"{self.pair} {self.run}"

    def plan(self, runs: Path, depth: int, measures: Sequence[str] | None) -> RunPlan:
        """The cell as a run plan of its one system (checked with the whole grid by :func:`plan_grid`, which
        decided that it runs: by the rule that reuses a stored run, so the plan does not ask again)."""
        return RunPlan(resolve_pair(self.ref), self.ref, (self.system,), self.options, depth, self.seed,
                       tuple(measures) if measures else None, Path(runs), force=True)


@dataclass
class GridPlan:
    spec: GridSpec
    pairs: list[str]
    cells: list[Cell]  # to run
    done: list[Cell]  # complete already
    needs: list[Need]  # to build, in dependency order
    notes: list[str]
    measures: list[str] | None = None
    artifacts: list[Need] = field(default_factory=list)  # the needs' artifacts, each once (a sharded one whole)
    built_on: dict[Key, Pair] = field(default_factory=dict)  # the pair each artifact is counted on (its first cell's)

    @cached_property
    def estimate(self):
        """How long building the artifacts takes (:class:`bench.experiment.estimate.Estimate`, as ``bench run
        --dry-run`` says it: each artifact once, however many cells and pairs need it; a built one costs nothing)."""
        from bench.experiment.estimate import estimate

        return estimate(self.artifacts, self.built_on)

    def tasks(self) -> list[Need | Cell]:
        """Every task in the order it runs one at a time: each cell after the needs it is the first to use."""
        index = {n.key: i for i, n in enumerate(self.needs)}
        by_key = {n.key: n for n in self.needs}
        out, seen = [], set()
        for cell in self.cells:
            wanted, stack = set(), list(cell.needs)
            while stack:
                key = stack.pop()
                if key not in wanted:
                    wanted.add(key)
                    stack.extend(by_key[key].after)
            for key in sorted(wanted - seen, key=index.__getitem__):
                out.append(by_key[key])
                seen.add(key)
            out.append(cell)
        return out


def resolve_pairs(spec: GridSpec) -> list[tuple[Pair, str]]:
    """(pair, reference) of each pair of the grid; a pair named twice is an error."""
    found = []
    for item in [*spec.pairs, *spec.pair_files]:
        found.append((resolve_pair(item), pair_ref(item)))
    names = [p.name for p, _ in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise BenchError(f"pair {twice[0]} is named twice in the grid", "name each pair once")
    return found


def plan_grid(spec: GridSpec, force: bool = False) -> GridPlan:
    """Check everything and expand the grid (loads each pair's collection and fetches its downloads). A cell
    whose stored run would be reused by ``bench run`` is done (:func:`_is_done`); ``force``: none is."""
    measures = measure_names(spec.measures)
    options = RunOptions.from_mapping(spec.options)
    pairs = resolve_pairs(spec)
    chosen = {pair.name: choose_systems(pair, spec.systems, options) for pair, _ in pairs}
    every = list({s.name: s for systems in chosen.values() for s in systems}.values())
    if max(spec.noise) > 0 and not any(s.learns_from_bitext(options) for s in every):
        raise BenchError(f"--noise {','.join(f'{r:g}' for r in spec.noise)}: no chosen system reads bitext_noise",
                         "choose a system that learns from the bitext (bm25-psq, optical, ...), or drop --noise")
    check_options(replace(options, bitext_noise=max(spec.noise)), every)
    for pair, _ in pairs:
        _check_pair(pair, chosen[pair.name], replace(options, bitext_noise=max(spec.noise)))
    cells, done = [], []
    for pair, ref in pairs:
        collection = pair.collection()
        for cell in _cells(pair, ref, chosen[pair.name], spec, options):
            (done if not force and _is_done(cell, pair, spec, measures, collection) else cells).append(cell)
    cell_needs, wanted, built_on = [], [], {}
    for cell in cells:
        pair = next(p for p, _ in pairs if p.name == cell.pair)
        own = cell.system.needs(Job(pair, cell.ref, cell.options, cell.seed))
        cell_needs.append(replace(cell, needs=tuple(dict.fromkeys(n.key for n in own))))
        wanted += own
        built_on.update({n.key: pair for n in own if n.key not in built_on})
    needs = _in_order(combine(wanted, spec.shards))
    artifacts = needs if spec.shards == 1 else _in_order(combine(wanted))
    notes = _notes(every, spec, options) + ([f"{len(done)} cell(s) have a stored run with identical inputs: "
                                             "reused (--force runs them again)"] if done else [])
    return GridPlan(spec, [p.name for p, _ in pairs], cell_needs, done, needs, notes, measures, artifacts, built_on)


def _check_pair(pair: Pair, systems: list[System], options: RunOptions) -> None:
    """What ``bench run`` checks when it starts, done for every pair before any task: the collection's
    sizes and inputs, translations for the oracles; and the downloads the needs read, fetched now."""
    from bench.data.pairs import remote_files
    from bench.methods.retrieve.prebuilt import fetch_corpus
    from bench.infra.downloads import fetch

    collection = pair.collection()
    check_sizes(pair, collection)
    check_inputs(pair, collection, systems, options)
    oracles = [s.name for s in systems if s.needs_translation]
    if oracles and not all(q.translation for q in collection.queries):
        raise BenchError(f"{', '.join(oracles)} need human translations of the queries, and {pair.name} has none",
                         "drop them or that pair (bench pairs lists the collections)")
    fetch_corpus(pair.dataset_id)
    if any(s.learns_from_bitext(options) for s in systems) and not pair.files:
        for remote in remote_files(pair):  # the bitext and FLORES: never fetched by two tasks at once
            fetch(remote)


def _cells(pair: Pair, ref: str, systems: Sequence[System], spec: GridSpec, options: RunOptions) -> list[Cell]:
    out: dict[str, Cell] = {}
    for system in systems:
        rates = spec.noise if system.learns_from_bitext(options) else [0.0]
        for rate in rates:
            cell_options = replace(options, bitext_noise=float(rate))
            for seed in spec.seeds:
                cell_seed, cell_noise = system.variant(seed, cell_options)
                name = run_name(system.name, cell_seed, cell_noise)
                out.setdefault(name, Cell(pair.name, ref, system, cell_seed, cell_noise, cell_options, name))
    return list(out.values())


def _is_done(cell: Cell, pair: Pair, spec: GridSpec, measures: list[str] | None, collection) -> bool:
    """Whether the cell's stored run is reused: the rule of every run (:func:`bench.experiment.identity.reusable`),
    its identity asked without building anything."""
    identity = planned_identity(pair, cell.system, cell.options, depth=spec.depth, seed=cell.seed, measures=measures,
                                collection=collection)
    return identity is not None and reusable(spec.runs, cell.pair, identity, level=logging.INFO) is not None


def _in_order(needs: list[Need]) -> list[Need]:
    """Dependencies first, otherwise in first-seen order."""
    by_key = {n.key: n for n in needs}
    out, state = [], {}

    def visit(need: Need) -> None:
        if state.get(need.key) == "done":
            return
        if state.get(need.key) == "visiting":
            raise RuntimeError(f"needs depend on each other: {need.label}")
        state[need.key] = "visiting"
        for key in need.after:
            if key in by_key:
                visit(by_key[key])
        state[need.key] = "done"
        out.append(need)

    for need in needs:
        visit(need)
    return out


def _notes(systems: Sequence[System], spec: GridSpec, options: RunOptions) -> list[str]:
    """What the seeds and noise rates do to each system (once per system)."""
    notes = []
    for system in systems:
        rates = spec.noise if system.learns_from_bitext(options) else [0.0]
        per_rate = {r: len({system.variant(s, replace(options, bitext_noise=r))[0] for s in spec.seeds}) for r in rates}
        if len(rates) == 1 and per_rate[rates[0]] == 1:
            if len(spec.seeds) > 1 or len(spec.noise) > 1:
                notes.append(f"{system.name}: one run per pair (its run depends on no seed or noise rate)")
            continue
        seeds = ",".join(map(str, spec.seeds))
        parts = [f"noise {r:g}: " + ("one run" if n == 1 else f"seeds {seeds}") for r, n in per_rate.items()]
        notes.append(f"{system.name}: {'; '.join(parts)}")
    return notes
