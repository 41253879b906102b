"""The identity of a run: everything that determines it, recorded in its manifest, compared before it runs again.

:func:`run_identity` is what determines the run of a system on a pair: the system's spec and the run
options (the bitext noise as the run's variant has it), the depth, the measures (canonical), the seed
and noise rate the run depends on, the collection's fingerprint (its files: queries, documents and
qrels), the bitext's (its files and cleaning, for a system that learns from it), the fingerprints of
the models it uses and bench's version. The runner records it in the manifest (``identity``), and
:func:`reusable` is the one rule by which ``bench run``, ``bench grid``, the sweep and :func:`bench.run`
skip a run: a stored run is reused only when its recorded identity equals the one asked for (and it
verifies: :func:`bench.results.runs.load_run`); a run whose identity differs, or that predates
identities, is run again and replaced atomically; ``--force`` runs it again whatever is stored. So a
changed qrels file, a changed option or a new model is never answered by a stale run.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

from bench.data.bitext import source_key
from bench.data.pairs import Pair
from bench.errors import BenchError
from bench.infra.store import NotBuilt, probing
from bench.results.runs import StoredRun, load_run, run_dir
from bench.results.scoring import parse_measures
from bench.systems import Job, System
from bench.systems.options import RunOptions

log = logging.getLogger(__name__)

IDENTITY = "identity"  # the manifest's field
PARTS = {  # the parts of an identity, in words (what a message says differs)
    "system": "the system", "spec": "the system's spec", "options": "the run options", "depth": "the depth",
    "measures": "the measures", "variant": "the seed or noise rate", "collection": "the collection's files",
    "bitext": "the bitext", "models": "the models", "mt_model": "the MT model", "bench": "bench's version",
}
ENCODER_ROLES = ("encoder", "teacher")  # a system's spec and options name its encoders under these keys


def run_identity(pair: Pair, system: System, options: RunOptions, *, depth: int, seed: int,
                 measures: Sequence[str] | None = None, collection=None) -> dict[str, Any]:
    """What determines the run of ``system`` on ``pair`` under these settings, as plain JSON values
    (``collection``: the pair's, when it is loaded already)."""
    options = RunOptions.from_mapping(options)
    variant_seed, noise = system.variant(seed, options)
    options = replace(options, bitext_noise=noise)  # noise a system does not learn from changes nothing of it
    collection = collection if collection is not None else pair.collection()
    identity = {
        "system": system.name,
        "spec": system.spec_for(options),
        "options": options.as_dict(),
        "depth": int(depth),
        "measures": sorted(str(m) for m in parse_measures(list(measures or pair.measures))),
        "variant": {"seed": variant_seed, "bitext_noise": noise},
        "collection": collection.fingerprint_key(),
        "bitext": source_key(pair) if system.learns_from_bitext(options) else None,
        "models": _models(pair, system, options, variant_seed),
        "mt_model": _mt_model(system, options),
        "bench": metadata.version("bench"),
    }
    return json.loads(json.dumps(identity, sort_keys=True, default=str))


def planned_identity(pair: Pair, system: System, options: RunOptions, **settings) -> dict[str, Any] | None:
    """:func:`run_identity` while a run is planned: nothing is built or fetched for it (:func:`probing`); None
    where a model it names is not there yet (converted or downloaded by the run), so no run stored can have it."""
    try:
        with probing():
            return run_identity(pair, system, options, **settings)
    except (NotBuilt, BenchError) as exc:
        log.debug("no identity for %s on %s yet: %s", system.name, pair.name, exc)
        return None


def _models(pair: Pair, system: System, options: RunOptions, seed: int) -> dict[str, str]:
    """spec -> fingerprint of the encoders the system uses: those its needs convert or download, and those
    its spec or options name (a local directory needs nothing built, so only they name it)."""
    from bench.data import models

    job = Job(pair, pair.name, options, seed)
    specs = {n.identity[0] for n in system.needs(job) if n.kind == "model"}
    spec = system.spec_for(options)
    specs |= {spec[role] for role in ENCODER_ROLES if isinstance(spec.get(role), str)}
    specs |= {getattr(options, role) for role in ENCODER_ROLES if role in system.reads and getattr(options, role)}
    return {s: models.resolve(s).fingerprint for s in sorted(specs)}


def _mt_model(system: System, options: RunOptions) -> dict | None:
    """The translation model given as an option (``mt_model``) to a system that reads it, with its fingerprint."""
    if not options.mt_model or "mt_model" not in system.reads:
        return None
    from bench.methods.translate import nmt

    return nmt.resolve(options.mt_model).describe()


@dataclass(frozen=True)
class Verdict:
    """What a stored run is worth to a run of ``identity``: ``stored`` when it has that identity (reuse it),
    else why not (``why``; None where nothing is stored)."""

    path: Path
    stored: StoredRun | None = None
    why: str | None = None


def stored_verdict(runs_root: Path, pair: str, identity: dict, *, archived: bool = False) -> Verdict:
    """The stored run of the cell ``identity`` names, under ``runs_root``, judged against ``identity``;
    ``archived``: ``runs_root`` is an archive (:mod:`bench.results.archive`: runs kept without their ranking)."""
    variant = identity["variant"]
    path = run_dir(Path(runs_root), pair, identity["system"], variant["seed"], variant["bitext_noise"])
    what = "the archived run" if archived else "the stored run"
    if not path.exists():
        return Verdict(path)
    try:
        stored = load_run(path, ranking=not archived)
    except BenchError as exc:
        return Verdict(path, why=f"{what} is refused ({exc.message})")
    if stored is None:
        return Verdict(path, why=f"{what} is incomplete")
    recorded = stored.manifest.get(IDENTITY)
    if not isinstance(recorded, dict):
        return Verdict(path, why=f"{what} predates run identities")
    asked, recorded = comparable(identity), comparable(recorded)
    differs = [PARTS.get(k, k) for k in sorted(set(asked) | set(recorded)) if asked.get(k) != recorded.get(k)]
    if differs:
        return Verdict(path, why=f"{what} was made with other inputs ({', '.join(differs)})")
    return Verdict(path, stored)


def comparable(identity: dict) -> dict:
    """An identity as two are compared: its run options at their defaults left out. A run recorded before an
    option existed was made as the option's default makes it (a new option's default keeps what bench did), so
    it keeps its identity when the option is added (``mt_size``: every run before it was made at ``base``)."""
    options = identity.get("options")
    if not isinstance(options, dict):
        return identity
    defaults = RunOptions().as_dict()
    return {**identity, "options": {k: v for k, v in options.items() if k not in defaults or v != defaults[k]}}


def reusable(runs_root: Path, pair: str, identity: dict, *, force: bool = False,
             level: int = logging.WARNING) -> StoredRun | None:
    """The stored run to reuse for a run of ``identity`` (None: run it), saying so in one line (at ``level``),
    or why a stored run is run again (a warning). ``force``: none is reused."""
    if force:
        return None
    verdict = stored_verdict(runs_root, pair, identity)
    label = f"{pair}/{verdict.path.name}"
    if verdict.stored is not None:
        log.log(level, "%s: reusing the stored run (identical inputs); --force recomputes", label)
    elif verdict.why is not None:
        log.warning("%s: %s: running it again", label, verdict.why)
    return verdict.stored


def archived(archive: Path, pair: str, identity: dict, *, level: int = logging.WARNING) -> StoredRun | None:
    """The archived run to take for a run of ``identity`` (None: run it), by the rule of :func:`reusable`, saying
    so in one line (at ``level``), or why an archived run is not taken (a warning)."""
    verdict = stored_verdict(archive, pair, identity, archived=True)
    label = f"{pair}/{verdict.path.name}"
    if verdict.stored is not None:
        log.log(level, "%s: taking the archived run in %s (identical inputs)", label, archive)
    elif verdict.why is not None:
        log.warning("%s: %s: running it", label, verdict.why)
    return verdict.stored
