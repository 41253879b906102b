"""Strict reading of the files people write: what bench reads is what the file shows.

- Text (:func:`utf8_text`): UTF-8 without a byte-order mark; other bytes are an error naming line and column.
- YAML (:func:`load_yaml`): a repeated key is an error (plain YAML keeps the last one), and so is a number
  not written plainly (YAML 1.1 reads ``1_0`` as 10, ``1:30`` as 90, ``0x1f`` as 31; ``017`` is 17 here, as
  in YAML 1.2); ``.nan`` and ``.inf`` are kept, for the reader to refuse where it can say which value it is.
  Each mapping knows the line of each of its keys (:func:`where`).
- Numbers in text files (:func:`plain_number`): Python's ``int`` and ``float`` also read ``1_0`` (as 10),
  digits of other scripts (``١``), ``inf``, ``nan`` and ``1e400`` (as inf); here each is an error.

Every error is a one-line :class:`BenchError` naming the file (and the line where it is known).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import yaml

from bench.errors import BenchError

PLAIN = {int: re.compile(r"[+-]?[0-9]+"), float: re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")}
PLAIN_FORM = {int: "a plain integer (ASCII digits, an optional sign)",
              float: "a plain number (ASCII digits, an optional sign, point and exponent)"}


def plain_number(text: str, kind: type[int] | type[float] = float) -> int | float:
    """``text`` as an int or a finite float, written plainly (:data:`PLAIN`); a ValueError says why not
    (``is not a number``, ``is not a finite number``, ``is not a plain number (...)``)."""
    try:
        value = kind(text)
    except ValueError:
        raise ValueError("is not an integer" if kind is int else "is not a number") from None
    if kind is float and not math.isfinite(value):
        raise ValueError("is not a finite number")
    if not PLAIN[kind].fullmatch(text):
        raise ValueError(f"is not {PLAIN_FORM[kind]}")
    return value


def utf8_text(path: Path, data: bytes) -> str:
    """``data`` (the bytes of ``path``) as UTF-8 text, a byte-order mark dropped; bytes that are not UTF-8
    are an error naming the line and column."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise BenchError(f"{path}:{line}: not UTF-8 (byte {data[exc.start]:#04x} at column {column})",
                         "save the file as UTF-8") from None


class LinedDict(dict):
    """A mapping read from YAML, with the line (1-based) of each of its keys in ``lines``."""

    def __init__(self, items: dict, lines: dict):
        super().__init__(items)
        self.lines = lines


def where(path: Path, mapping: dict, key) -> str:
    """``path:line`` of ``key`` in ``mapping`` where the line is known (a mapping read by :func:`load_yaml`),
    else ``path``."""
    line = getattr(mapping, "lines", {}).get(key)
    return f"{path}:{line}" if line else str(path)


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a repeated key and a number not written plainly, and records key lines."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> LinedDict:
    lines: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *anchor``: its keys may be overridden
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = lines.get(key)
        except TypeError:  # an unhashable key: construct_mapping refuses it
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r} (first on line {first})",
                                                    key_node.start_mark)
        lines[key] = key_node.start_mark.line + 1
    return LinedDict(loader.construct_mapping(node, deep=deep), lines)


def _number(kind: type[int] | type[float]):
    def construct(loader: _StrictLoader, node: yaml.ScalarNode) -> int | float:
        text = loader.construct_scalar(node)
        if kind is float and text.lstrip("+-").lower() in (".nan", ".inf"):
            return loader.construct_yaml_float(node)  # the reader refuses it, saying which value it is
        if not PLAIN[kind].fullmatch(text):
            raise yaml.constructor.ConstructorError(None, None, f"{text} is not {PLAIN_FORM[kind]}", node.start_mark)
        return kind(text)

    return construct


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_StrictLoader.add_constructor("tag:yaml.org,2002:int", _number(int))
_StrictLoader.add_constructor("tag:yaml.org,2002:float", _number(float))


def load_yaml(text: str, path: Path, hint: str, invalid: str = "not valid YAML"):
    """The YAML document ``text`` (read from ``path``), read strictly (see the module docstring); what
    cannot be read is an error ``path:line: <invalid>: <the problem>``."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
        raise BenchError(f"{path}{at}: {invalid}: {problem}", hint) from None
