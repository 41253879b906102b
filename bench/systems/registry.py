"""The systems' registry: what a system is (:class:`System`), the names, and the plugins of other packages.

A built-in system is a declaration (:mod:`bench.systems.builtin`): its stages as data
(:mod:`bench.systems.stages`), from which everything else about it is derived — how it runs, the run
options it reads, its spec, what it builds (its needs), whether it learns from the bitext or depends on a
seed. A plugin is a plain function of the run context (:mod:`bench.systems.plugins`), registered with
what its decorator says. Plugins are loaded once, when the systems are first listed or parsed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from bench.errors import BenchError
from bench.infra.registry import Registry
from bench.methods.retrieve.ranking import Run
from bench.systems import plugins
from bench.systems.context import RunContext
from bench.systems.options import RunOptions

log = logging.getLogger(__name__)

# The families of systems, in the order of the report's tables (a system's own place among its family:
# its declaration's); a ceiling (human translations of the queries) is never a competitor
FAMILIES = ("lexical", "translation", "zero-shot", "distilled", "fusion", "plugin", "ceiling")

# A system that reads one of these options trains a model on the run's seed (plugins are judged by this;
# a declared system says it itself, through its stages)
TRAINING_OPTIONS = ("distill_steps", "mt_steps", "mt_size")


@dataclass(frozen=True)
class System:
    """A named retrieval pipeline: ``run(ctx) -> run``, its fixed ``spec`` (its identity before options),
    the run options it ``reads``, the systems it ``uses`` (whose runs it is built from).

    ``stages``: a built-in system's declaration (a stage object of :mod:`bench.systems.stages`, which
    ran ``run`` and derives ``spec``, ``reads``, ``uses`` and the needs); None for a plugin.
    ``ci``: in the ``ci`` profile (the regression check of MAP)."""

    name: str
    description: str
    run: Callable[[RunContext], Run]
    spec: dict[str, Any]
    needs_translation: bool = False  # oracle systems: only on collections with translated queries
    uses: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    plugin: str | None = None  # the distribution that adds it through the bench.systems entry points
    stages: Any = None
    ci: bool = False

    def spec_for(self, options: RunOptions) -> dict[str, Any]:
        """The spec of this system under ``options``: its defaults plus the options it used.

        A teacher that defaults to the encoder follows an ``encoder`` option."""
        used = options.used(self.reads)
        spec = {**self.spec, **used}
        if "teacher" in self.spec and "encoder" in used and "teacher" not in used:
            spec["teacher"] = used["encoder"]
        return spec

    @property
    def family(self) -> str:
        """Its kind in the report's tables (:data:`FAMILIES`): derived from its stages; a plugin's is
        ``plugin`` (or ``ceiling`` when it needs the queries' human translations)."""
        if self.stages is not None:
            return self.stages.family
        return "ceiling" if self.needs_translation else "plugin"

    @property
    def ceiling(self) -> bool:
        return self.family == "ceiling"

    def variant(self, seed: int, options: RunOptions) -> tuple[int, float]:
        """The (seed, bitext noise) that this system's run depends on, which name its run directory.

        The noise counts for a system that learns from the bitext; the seed for one that trains a
        model or learns from noised bitext (the corruption is seeded). Every other system keeps its
        plain name whatever the seed: its run is the same."""
        if self.stages is not None:
            learns, trains = self.stages.learns_from_bitext(options), self.stages.trains(options)
        else:
            learns, trains = "bitext_noise" in self.reads, any(o in self.reads for o in TRAINING_OPTIONS)
        noise = float(options.bitext_noise) if learns else 0.0
        return (int(seed) if trains or noise else 0), noise

    def learns_from_bitext(self, options: RunOptions | None = None) -> bool:
        """Whether noise in the bitext changes this system's run (under ``options``)."""
        return self.variant(0, replace(RunOptions.from_mapping(options), bitext_noise=0.5))[1] > 0

    def needs(self, job) -> list:
        """The cached artifacts this system's run builds (:mod:`bench.systems.needs`); a plugin's: none
        (it builds what it needs in its own run)."""
        return [] if self.stages is None else self.stages.needs(job)


SYSTEMS: Registry[System] = Registry("system")
_plugins: list[str] | None = None  # names of the plugin systems registered (None: not loaded yet)


def declare(name: str, description: str, stages, *, ci: bool = False) -> System:
    """Register the built-in system ``name`` made of ``stages`` (everything else derives from them)."""
    system = System(name, description, stages.run, {"system": name, **stages.spec}, stages.needs_translation,
                    stages.uses, stages.reads, None, stages, ci)
    return SYSTEMS.register(name, system)


def load_plugins(reload: bool = False) -> list[str]:
    """Register the plugin systems (:mod:`bench.systems.plugins`) once; ``reload`` forgets them and looks again."""
    global _plugins
    if reload and _plugins is not None:
        for name in _plugins:
            SYSTEMS.remove(name)
        _plugins = None
    if _plugins is None:
        found = plugins.discover({n: "bench (a built-in system)" for n in SYSTEMS})
        for p in found:
            spec = {"system": p.name, **p.spec, "plugin": f"{p.dist}=={p.version}"}
            SYSTEMS.register(p.name, System(p.name, p.description, p.run, spec, p.needs_translation, (), p.reads,
                                            p.dist))
        _plugins = [p.name for p in found]
    return list(_plugins)


def get_system(name: str) -> System:
    if name not in SYSTEMS:
        load_plugins()
    return SYSTEMS.get(name)


def all_systems() -> list[System]:
    """Every system, built-in ones first (in their declared order: the order of the tables), then the plugins'."""
    load_plugins()
    return [SYSTEMS.get(n) for n in SYSTEMS]


def ci_systems() -> list[System]:
    """The ``ci`` profile: the built-in systems declared in it, in their declared order."""
    return [s for s in all_systems() if s.ci]


def table_order() -> list[str]:
    """The systems' order in the report's tables: by family (:data:`FAMILIES`), then as declared."""
    systems = all_systems()
    return [s.name for _, s in sorted(enumerate(systems), key=lambda x: (FAMILIES.index(x[1].family), x[0]))]


def place(name: str) -> int:
    """A system's place in the tables (:func:`table_order`; an unknown one: last), recorded in its manifests."""
    order = table_order()
    return order.index(name) if name in order else len(order)


def parse_systems(value: str | Sequence[str | System] | None) -> list[System] | None:
    """The systems named in a comma-separated list or a sequence of names (None when no list was given;
    an empty list is an error)."""
    if value is None:
        return None
    load_plugins()
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [s if isinstance(s, System) else str(s).strip() for s in items]
    names = [s for s in names if s]
    if not names:
        raise BenchError(f"--systems {value!r} names no system",
                         "e.g. --systems bm25,mdense (bench systems lists them)")
    return [n if isinstance(n, System) else get_system(n) for n in dict.fromkeys(names)]


def default_systems(has_translations: bool, doc_lang: str = "en", mt_model: bool = False) -> list[System]:
    """Every system (plugins' too) that applies: less the oracles where the collection has no translated
    queries and, unless an ``mt_model`` is given, the systems that translate into English with a model
    bench trains where the documents are not English."""
    chosen = []
    for s in all_systems():
        english_only = s.stages is not None and s.stages.english_documents_only
        if (doc_lang == "en" or mt_model or not english_only) and (has_translations or not s.needs_translation):
            chosen.append(s)
    return chosen
