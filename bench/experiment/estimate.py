"""How long a plan's builds and trainings will take, before any of them starts (a run's, or a grid's: each
artifact once, however many cells and pairs need it, its items counted on the pair it is built from).

Each need a plan lists (:mod:`bench.systems.needs`: the Lucene index, a corpus encoding, the MT model,
a student, the NMT translations, ...) costs its items (documents, training steps, queries, bitext
pairs) at the rate this machine measured when it last built one (:mod:`bench.infra.rates`), else at
the stage's default rate (said: "default rate, not measured here"). A need that is built already
costs nothing: whether it is is asked of its own builder under :func:`bench.infra.store.probing`, which
builds and fetches nothing; a need built from one that must be built is built too. Retrieval and
scoring are not estimated (minutes, where the builds are hours).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence

from bench.data.pairs import Pair
from bench.infra import rates
from bench.infra.store import NotBuilt, probing
from bench.systems.needs import Key, Need

log = logging.getLogger(__name__)

TRAININGS = ("student", "mt-model")  # the needs that train a model (the long ones on a CPU)


@dataclass(frozen=True)
class Stage:
    """How a kind of need is counted (``one``/``many``: its item in words) and its ``default`` rate (items
    per second) where this machine measured none: roughly what 2 CPU cores do."""

    one: str
    many: str
    default: float


STAGES = {  # by the name a need's rate is recorded under (its kind, unless it names another: Need.rate)
    "model": Stage("model", "models", 1 / 30),  # a packaged model converted once
    "lucene-index": Stage("document", "documents", 1000.0),
    "doc-encoding": Stage("document", "documents", 10.0),  # mE5-small: 7-21 passages a second on 2 cores
    "query-encoding": Stage("query", "queries", 30.0),
    "ibm1-table": Stage("bitext pair", "bitext pairs", 1000.0),
    "mt-states": Stage("bitext pair", "bitext pairs", 30.0),
    # fp32 on a 2-core AVX2 CPU alone (measured: 2.4 s a step beside a one-thread process, cold_run_sw-en.txt)
    "mt-model": Stage("step", "steps", 1 / 1.8),
    # --mt-size small: 0.45x base's training on sw-en, in 1.25x its steps (0.65 s a step), 0.6-0.7x on small bitexts
    "mt-model small": Stage("step", "steps", 1 / 0.8),
    "nmt-translations": Stage("query", "queries", 2.0),
    "student": Stage("step", "steps", 1 / 4.0),  # 300 steps in 15-25 minutes on 2 cores
}


@dataclass(frozen=True)
class Cost:
    """One need's estimate: built already (``cached``: no cost), else ``items`` at ``per_second``
    (``measured`` here, or the stage's default); ``items`` None: not estimated (``why``)."""

    need: Need
    cached: bool
    items: int | None = None
    per_second: float | None = None
    measured: bool = False
    why: str | None = None

    @property
    def seconds(self) -> float:
        return 0.0 if self.cached or self.items is None or not self.per_second else self.items / self.per_second

    def line(self) -> str:
        verb = "train" if self.need.kind in TRAININGS else "build"
        if self.cached:
            return f"    built  {self.need.label}: no cost"
        if self.items is None:
            return f"    {verb}  {self.need.label}: not estimated ({self.why})"
        stage = STAGES[self.need.rate_name]
        source = "measured here" if self.measured else "default rate, not measured here"
        return (f"    {verb}  {self.need.label}: {self.items:,} {stage.one if self.items == 1 else stage.many} at "
                f"{rate(self.per_second, stage)} ({source}), about {duration(self.seconds)}")


@dataclass(frozen=True)
class Estimate:
    costs: tuple[Cost, ...]

    @property
    def seconds(self) -> float:
        return sum(c.seconds for c in self.costs)

    def lines(self) -> list[str]:
        """The needs with their costs, then the total."""
        if not self.costs:
            return ["  nothing to build or train"]
        trainings = sum(1 for c in self.costs if c.need.kind in TRAININGS)
        cached = sum(1 for c in self.costs if c.cached)
        lines = [f"  artifacts the runs need, each built once: {len(self.costs)}, {trainings} of them trainings"
                 + (f"; {cached} built already (under BENCH_HOME)" if cached else "")]
        lines += [c.line() for c in self.costs]
        unknown = sum(1 for c in self.costs if not c.cached and c.items is None)
        lines.append(f"  estimated time to build and train: about {duration(self.seconds)}"
                     + (f" and {unknown} not estimated" if unknown else "") + " (retrieval and scoring not included)")
        return lines


def rate(per_second: float, stage: Stage) -> str:
    """``1,000 documents a second``, or ``4.0 s a step`` below one and a half a second (so never ``1 steps``)."""
    if per_second >= 1.5:
        return f"{per_second:,.0f} {stage.many} a second"
    return f"{1 / per_second:,.1f} s a {stage.one}"


def duration(seconds: float) -> str:
    """``40 s``, ``12 min``, ``3 h 05 min``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def estimate(needs: Sequence[Need], pairs: Mapping[Key, Pair]) -> Estimate:
    """The cost of building ``needs`` (the needs of a plan, each once, in the order it builds them), each
    counted on its pair in ``pairs`` (by the need's key: the pair whose documents, queries or bitext it
    processes; a need of many pairs, such as an index of their shared documents, on any one of them)."""
    by_key = {n.key: n for n in needs}
    status: dict[Key, bool] = {}

    def built(need: Need) -> bool:
        if need.key not in status:
            status[need.key] = all(built(by_key[k]) for k in need.after if k in by_key) and _probe(need)
        return status[need.key]

    counts: dict[str, Counts] = {}

    def cost(need: Need) -> Cost:
        pair = pairs[need.key]
        return _cost(need, counts.setdefault(pair.name, Counts(pair)))

    return Estimate(tuple(Cost(n, True) if built(n) else cost(n) for n in needs))


def _cost(need: Need, counts: "Counts") -> Cost:
    stage = STAGES.get(need.rate_name)
    if stage is None:
        return Cost(need, False, why=f"no rate for a {need.rate_name}")
    items, why = counts.items(need)
    measured = rates.measured(need.rate_name)
    per_second = measured.per_second if measured is not None else stage.default
    return Cost(need, False, items, per_second, measured is not None, why)


def _probe(need: Need) -> bool:
    """Whether ``need`` is built already: its builder asked under :func:`probing` (nothing is built)."""
    with probing(), _quiet():
        try:
            need.build()
        except NotBuilt:
            return False
        except Exception as exc:  # anything a builder raises before it would build: not built, as far as we know
            log.debug("probing %s: %s: %s", need.label, type(exc).__name__, exc)
            return False
    return True


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """What a builder says before it builds (training now, ...) is not said while it is only asked."""
    before = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(before)


class Counts:
    """The items each need processes, counted once per estimate: documents and queries (declared by the
    pair where it declares them), bitext pairs (the bitext read where it is fetched), training steps."""

    def __init__(self, pair: Pair):
        self.pair = pair
        self._known: dict[str, tuple[int | None, str | None]] = {}

    def items(self, need: Need) -> tuple[int | None, str | None]:
        how: dict[str, Callable[[], tuple[int | None, str | None]]] = {
            "model": lambda: (1, None),
            "lucene-index": self.documents, "doc-encoding": self.documents,
            "query-encoding": self.queries, "nmt-translations": self.queries,
            "ibm1-table": self.bitext, "mt-states": self.bitext,
            # the configs of build_mt(ref, config, ...) and build_student(ref, config, ...)
            "mt-model": lambda: (_mt_steps(need.args[1]), None),
            "student": lambda: self.student_steps(need.args[1]),
        }
        return how[need.kind]()

    def student_steps(self, config) -> tuple[int | None, str | None]:
        """A student's steps: its budget in epochs over the pair's bitext (at most its ``steps``), else ``steps``."""
        from bench.methods.distill.trainer import budgeted

        if config.epochs is None:
            return int(config.steps), None
        pairs, why = self.bitext()
        return (None, why) if pairs is None else (budgeted(config, pairs).steps, None)

    def _once(self, name: str, count: Callable[[], int], unknown: str) -> tuple[int | None, str | None]:
        if name not in self._known:
            try:
                with probing(), _quiet():
                    self._known[name] = (count(), None)
            except Exception as exc:  # not fetched yet, or unreadable: the run will say so, not the estimate
                log.debug("counting %s: %s: %s", name, type(exc).__name__, exc)
                self._known[name] = (None, unknown)
        return self._known[name]

    def documents(self) -> tuple[int | None, str | None]:
        pair = self.pair
        return self._once("documents", lambda: pair.expected_docs or pair.collection().docs_count,
                          "the documents are not fetched yet")

    def queries(self) -> tuple[int | None, str | None]:
        pair = self.pair
        return self._once("queries", lambda: pair.expected_queries or len(pair.collection().queries),
                          "the queries are not fetched yet")

    def bitext(self) -> tuple[int | None, str | None]:
        from bench.data.bitext import load_bitext

        return self._once("bitext", lambda: len(load_bitext(self.pair)), "the bitext is not fetched yet")


def _mt_steps(config: dict) -> int:
    from bench.methods.translate.mt_config import MtConfig

    return MtConfig.from_dict(config).max_steps
