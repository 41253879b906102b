"""The needs of a run: the cached artifacts its systems build, as tasks of the grid.

Each :class:`Need` is one artifact: its kind and an identity that determines it (cells with one need
share one build), the needs it is built from (``after``), and a build (a module-level function of
:mod:`bench.systems.builders` and plain arguments, so a need pickles: Ray sends it to a worker) that
calls the same cached builder with the same settings as the system's own run, so that a cell run after
its needs finds everything cached. Which needs a system has is derived from its declaration, stage by
stage (:mod:`bench.systems.stages`); a system bench does not declare (a plugin) needs nothing here: it
builds what it needs in its own run. Downloads (the collection, the bitext's corpora) are not needs:
the grid fetches them while it validates, before any task starts.

:func:`combine` merges the needs of many cells: one need per identity; the encodings of one model on
one pair become one (both scorings' files; split into shards when asked); students that would fill one
teacher cache are built one after the other.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable

from bench.systems import builders as nb

__all__ = ["Need", "combine", "Key"]

Key = tuple  # (kind, identity)


@dataclass(frozen=True)
class Need:
    """One cached artifact to build: ``fn(*args)`` builds it (or finds it) and returns its directory
    where it has one. ``fn`` is a module-level function and ``args`` plain data, so a need pickles
    (Ray sends it to a worker). ``gpu``: a training or an encoding (a GPU task where there are GPUs)."""

    kind: str
    identity: tuple
    label: str
    fn: Callable[..., Path | None]
    args: tuple = ()
    after: tuple[Key, ...] = ()
    gpu: bool = False
    shares: tuple | None = None  # needs with the same value fill one inner cache: built one after the other
    rate: str | None = None  # the name its build's speed is recorded under (bench.infra.rates), where not its kind

    @property
    def rate_name(self) -> str:
        return self.rate or self.kind

    @property
    def key(self) -> Key:
        return (self.kind, self.identity)

    def build(self) -> Path | None:
        return self.fn(*self.args)


# --- combining the needs of many cells ------------------------------------------------------------------


def combine(needs: Iterable[Need], shards: int = 1) -> list[Need]:
    """One need per key, in first-seen order: the encodings of one model on one pair merged (every
    scoring's files), a document encoding split into ``shards`` shard needs and their assembly (which
    keeps the key); students that share a teacher cache ordered one after the other."""
    merged: dict[Key, Need] = {}
    for need in needs:
        known = merged.get(need.key)
        merged[need.key] = need if known is None else _merge(known, need)
    out: list[Need] = []
    for need in merged.values():
        out += _shard(need, shards) if need.kind == "doc-encoding" and shards > 1 else [need]
    last: dict[tuple, Key] = {}
    for i, need in enumerate(out):
        if need.shares is not None:
            if need.shares in last:
                out[i] = replace(need, after=(*need.after, last[need.shares]))
            last[need.shares] = need.key
    return out


def _merge(a: Need, b: Need) -> Need:
    """Two needs with one key: the encodings' files of both, the dependencies of both."""
    after = tuple(dict.fromkeys((*a.after, *b.after)))
    if a.kind in ("doc-encoding", "query-encoding"):
        spec = replace(a.args[0], modes=a.args[0].modes | b.args[0].modes)
        return replace(a, args=(spec, *a.args[1:]), after=after)
    return replace(a, after=after)


def _shard(need: Need, shards: int) -> list[Need]:
    """A document encoding as a plan (lengths, the MaxSim decision), ``shards`` shards and their assembly."""
    spec: Any = need.args[0]
    plan = Need("doc-plan", need.identity, f"batch plan of the {need.label}", nb.build_doc_plan, (spec,), need.after)
    parts = [Need("doc-shard", (*need.identity, i, shards), f"shard {i + 1}/{shards} of the {need.label}",
                  nb.build_shard, (spec, i, shards), (plan.key,), gpu=True) for i in range(shards)]
    return [plan, *parts, replace(need, args=(spec, shards), after=tuple(p.key for p in parts), gpu=False,
                                  label=f"{need.label} ({shards} shards assembled)")]
