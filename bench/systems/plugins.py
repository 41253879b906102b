"""Systems from other packages, found through the entry point group ``bench.systems``.

A package adds a system by declaring, in its ``pyproject.toml``::

    [project.entry-points."bench.systems"]
    my-system = "my_package.retrieval:my_system"

The entry point's object is a function of the run context (:class:`bench.systems.context.RunContext`) returning
a run (``{query_id: {doc_id: score}}``); it is registered as the system named by the entry point. The
decorator :func:`system` (or plain attributes ``description``, ``reads``, ``spec``,
``needs_translation`` on the function) says what it is and which run options it reads; without a
description, the first line of its docstring is used. Its recorded spec carries the distribution's
name and version, so a new release of the plugin is a new identity.

Plugins are loaded once per process, when the systems are listed or parsed (never by ``import bench``).
A plugin that cannot be loaded is left out with one warning line; a name already taken (by a built-in
system or by another plugin) is an error naming both.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, fields
from importlib import metadata
from typing import Any, Callable, Mapping

from bench.errors import BenchError
from bench.systems.options import RunOptions

log = logging.getLogger(__name__)

GROUP = "bench.systems"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")  # a system name fits in a comma-separated --systems list


@dataclass(frozen=True)
class Plugin:
    """A system found through an entry point, loaded and checked."""

    name: str
    dist: str  # the distribution (PyPI name) that declares it
    version: str
    target: str  # the entry point's ``module:attribute``
    run: Callable
    description: str
    reads: tuple[str, ...]
    spec: dict[str, Any]
    needs_translation: bool


def system(description: str | None = None, reads: tuple[str, ...] = (), spec: Mapping[str, Any] | None = None,
           needs_translation: bool = False) -> Callable[[Callable], Callable]:
    """Decorator for a plugin's system function: its description, the run options it reads
    (:class:`bench.systems.options.RunOptions` fields), its fixed spec, and whether it needs translated queries."""

    def wrap(fn: Callable) -> Callable:
        fn.description = description
        fn.reads = tuple(reads)
        fn.spec = dict(spec or {})
        fn.needs_translation = needs_translation
        return fn

    return wrap


def discover(taken: Mapping[str, str]) -> list[Plugin]:
    """Every loadable plugin system; ``taken`` maps the names already registered to who defines them.

    A broken plugin is one warning and left out; a duplicate name is a :class:`BenchError` naming both."""
    owners = dict(taken)
    found = []
    for ep in metadata.entry_points(group=GROUP):
        dist = ep.dist.name if ep.dist is not None else "(unknown package)"
        version = ep.dist.version if ep.dist is not None else "?"
        where = f"the plugin {ep.value} of the package {dist}"
        if ep.name in owners:
            raise BenchError(f"system {ep.name!r} is defined twice: by {owners[ep.name]} and by {where}",
                             "uninstall one of the two packages, or rename the entry point")
        try:
            plugin = _load(ep, dist, version)
        except Exception as exc:  # anything a third-party import can raise: the plugin is left out, bench runs on
            reason = (str(exc).strip().splitlines() or [""])[0][:160]
            log.warning("plugin system %r (%s) is left out: %s%s", ep.name, where, type(exc).__name__,
                        f": {reason}" if reason else "")
            continue
        owners[ep.name] = where
        found.append(plugin)
    return found


def _load(ep: metadata.EntryPoint, dist: str, version: str) -> Plugin:
    if not NAME.match(ep.name):
        raise ValueError(f"{ep.name!r} is not a usable system name (letters, digits, '.', '_', '+', '-')")
    fn = ep.load()
    if not callable(fn):
        raise TypeError(f"{ep.value} is not callable (type {type(fn).__name__}): it must be a function of the run "
                        "context")
    reads = tuple(getattr(fn, "reads", ()) or ())
    known = {f.name for f in fields(RunOptions)}
    unknown = [o for o in reads if o not in known]
    if unknown:
        raise ValueError(f"it reads the unknown run option {unknown[0]!r} (known: {', '.join(sorted(known))})")
    spec = getattr(fn, "spec", None) or {}
    if not isinstance(spec, Mapping):
        raise TypeError(f"its spec is a {type(spec).__name__}, not a mapping")
    doc = (getattr(fn, "__doc__", None) or "").strip().splitlines()
    description = getattr(fn, "description", None) or (doc[0] if doc else f"a system from the package {dist}")
    return Plugin(ep.name, dist, version, ep.value, fn, str(description), reads, dict(spec),
                  bool(getattr(fn, "needs_translation", False)))
