"""A pair by reference, resolved one way everywhere: a :class:`~bench.data.pairs.Pair`, a built-in pair's
name, or the path of a pair file (YAML/TOML, :mod:`bench.data.collection.local`).

The CLI (``--pair``, ``--pair-file``), the Python API, the grid and its workers (which get the reference,
a plain string, and resolve it where they run) all call :func:`resolve_pair`; a pair file is loaded once
per process and version of the pair file and of the files it names (a changed qrels file is another pair).
"""

from __future__ import annotations

from pathlib import Path

from bench.data.collection.local import load_pair_file
from bench.data.pairs import PAIRS, Pair, get_pair

PAIR_FILE_SUFFIXES = (".yaml", ".yml", ".toml")

_LOADED: dict[tuple, tuple[Pair, tuple]] = {}  # per pair file version: the pair, its files' stamps


def resolve_pair(pair: str | Path | Pair) -> Pair:
    """The pair ``pair`` names: a :class:`Pair` as it is, a built-in pair by name (an unknown name is an
    error with the closest names), a pair file by path."""
    if isinstance(pair, Pair):
        return pair
    text = str(pair)
    path = Path(text)
    if not isinstance(pair, Path) and (text in PAIRS or not (text.endswith(PAIR_FILE_SUFFIXES) or path.is_file())):
        return get_pair(text)
    if not path.is_file():
        return load_pair_file(path)  # the one error for a missing pair file
    stamp = (str(path.resolve()), *_stat(path))
    known = _LOADED.get(stamp)
    if known is None or _files_stamp(known[0]) != known[1]:  # the pair file, or a file it names, changed
        loaded = load_pair_file(path)
        known = _LOADED[stamp] = (loaded, _files_stamp(loaded))
    return known[0]


def _stat(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError:
        return (None,)
    return st.st_size, st.st_mtime_ns


def _files_stamp(pair: Pair) -> tuple:
    return tuple(sorted((key, *_stat(Path(file))) for key, file in pair.files.items()))


def pair_ref(given: str | Path | Pair) -> str:
    """How another process resolves the pair ``given`` names: a built-in pair's name, else the absolute path
    of its pair file (a :class:`Pair` object: its name, for use in this process)."""
    if isinstance(given, Pair):
        return given.name
    if not isinstance(given, Path) and str(given) in PAIRS:
        return str(given)
    return str(Path(str(given)).resolve())
