"""The run context: what a system (a function ``fn(ctx) -> run``) gets to work with.

A :class:`RunContext` carries the pair, its loaded collection, the depth, the seed, the validated
:class:`~bench.systems.options.RunOptions` and a dict of artifacts the system reports for its run's
manifest. Built-in systems (:mod:`bench.systems`) and plugin systems (:mod:`bench.systems.plugins`) take the
same context; nothing below the systems layer takes one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from bench.data.collection import Collection, Query
from bench.errors import BenchError
from bench.systems.options import RunOptions
from bench.data.pairs import Pair
from bench.methods.retrieve.ranking import Run


@dataclass
class RunContext:
    pair: Pair
    collection: Collection
    depth: int = 1000
    seed: int = 0
    options: RunOptions = field(default_factory=RunOptions)
    artifacts: dict[str, Any] = field(default_factory=dict)  # what a system reports for its manifest
    # runs made by this `bench run` that a later system is built from (``System.uses``), by system and
    # options: a hybrid reuses its components' runs instead of computing them again
    finished: dict[tuple[str, tuple], tuple[Run, dict]] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.options = RunOptions.from_mapping(self.options)  # a plain dict (tests, scripts) is validated too

    def _finished_key(self, system: str) -> tuple[str, tuple]:
        return system, self.options.key()

    def remember(self, system: str, run: Run) -> None:
        """Record ``system``'s run under this context's options (call before its artifacts are consumed)."""
        self.finished[self._finished_key(system)] = (run, copy.deepcopy(self.artifacts))

    def recall(self, system: str) -> tuple[Run, dict] | None:
        """The run and artifacts of ``system`` under this context's options, if this invocation made it."""
        return self.finished.get(self._finished_key(system))

    def foreign_queries(self) -> list[tuple[str, str]]:
        return [(q.query_id, q.text) for q in self.collection.queries]

    def translated_queries(self) -> list[tuple[str, str]]:
        """The human English translation of each query (oracle systems); an error if there is none."""
        queries: list[Query] = self.collection.queries
        missing = [q.query_id for q in queries if not q.translation]
        if missing:
            raise BenchError(
                f"{self.pair.name} has no human English translation for {len(missing)} queries "
                f"(e.g. {missing[0]})",
                "oracle systems need a collection with translated queries, such as AfriQA",
            )
        return [(q.query_id, q.translation) for q in queries]
