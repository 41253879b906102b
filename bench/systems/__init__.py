"""The systems layer: one declaration per system (DESIGN.md §3), the registry, plugins, run options.

A system turns a collection into a run: ``{query_id: {doc_id: score}}`` (the ir_measures run dict).
bench's own systems are declared in :mod:`bench.systems.builtin` as stages
(:mod:`bench.systems.stages`); other packages add systems through the ``bench.systems`` entry point
group (:mod:`bench.systems.plugins`), loaded once, when the systems are first listed or parsed.
Nothing below this layer takes a run context: the functions the stages call get plain arguments.
"""

from bench.systems import builtin  # noqa: F401  (registers bench's own systems)
from bench.systems.context import RunContext
from bench.systems.registry import (FAMILIES, SYSTEMS, System, all_systems, ci_systems, default_systems, get_system,
                                    load_plugins, parse_systems, place, table_order)
from bench.systems.stages import DEFAULT_ENCODER, Job

__all__ = ["RunContext", "System", "SYSTEMS", "Job", "DEFAULT_ENCODER", "get_system", "parse_systems",
           "default_systems", "all_systems", "ci_systems", "load_plugins", "place", "table_order", "FAMILIES"]
