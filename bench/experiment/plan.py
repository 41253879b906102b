"""What a run will do, settled before anything runs: the pair, the systems, the options, the measures.

``bench run`` and the Python API (:mod:`bench.api`) both resolve a pair (a name, a pair file or a
:class:`~bench.data.pairs.Pair`), choose the systems (named ones, the ``ci`` profile's, or every system that
applies to the pair), and check the options against them, so a typo fails in one line before hours of
training, never after.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Iterable, Sequence

from bench.errors import BenchError
from bench.results.scoring import parse_measures
from bench.systems.options import RunOptions, flag, unread
from bench.data.pairs import PAIRS, Pair, get_pair
from bench.results.runs import MANIFEST_FILE, run_dir
from bench.systems import System, ci_systems, default_systems, get_system, parse_systems

PAIR_FILE_SUFFIXES = (".yaml", ".yml", ".toml")


def resolve_pair(pair: str | Path | Pair) -> Pair:
    """A :class:`Pair`, a built-in pair's name, or the path of a pair file."""
    if isinstance(pair, Pair):
        return pair
    text = str(pair)
    if isinstance(pair, Path) or (text not in PAIRS and (text.endswith(PAIR_FILE_SUFFIXES) or Path(text).is_file())):
        from bench.data.collection.local import load_pair_file

        return load_pair_file(Path(text))
    return get_pair(text)


def choose_systems(pair: Pair, names: str | Sequence[str] | None, options: RunOptions) -> list[System]:
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
        close = difflib.get_close_matches(spec, list(models.PACKAGED), n=1, cutoff=0.8)
        raise BenchError(f"option {name}: {exc.message}", f"did you mean {close[0]}?" if close else exc.hint) from None


def measure_names(value: str | Sequence[str] | None) -> list[str] | None:
    """ir_measures names (comma-separated or a sequence), parsed by ir_measures, in their canonical
    form (``ndcg@10`` is refused, ``nDCG@10`` kept); None when none were given."""
    if value is None:
        return None
    items = re.split(r",(?![^()]*\))", value) if isinstance(value, str) else list(value)  # AP(rel=2,judged_only=True)
    names = [str(m).strip() for m in items if str(m).strip()]
    if not names:
        raise BenchError(f"--measures {value!r} names no measure", "e.g. --measures AP,nDCG@10")
    return list(dict.fromkeys(str(m) for m in parse_measures(names)))


def check_baseline(baseline: str | None, systems: Iterable[str], runs_root: Path, pair: Pair) -> None:
    """The report's baseline must be one of this run's systems or have a stored run of the pair."""
    if baseline is None:
        return
    names = list(systems)
    if baseline in names or (run_dir(Path(runs_root), pair.name, baseline) / MANIFEST_FILE).is_file():
        return
    close = difflib.get_close_matches(baseline, names, n=1, cutoff=0.5)
    raise BenchError(f"baseline {baseline!r} is not among the chosen systems and has no run under "
                     f"{Path(runs_root) / pair.name}",
                     f"did you mean {close[0]}?" if close else "choose one of: " + ", ".join(names))
