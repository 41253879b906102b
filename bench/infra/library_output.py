"""What the libraries bench calls print on their own: kept out of the terminal unless ``--debug``.

Java (Lucene, Anserini) writes to the process's file descriptors 1 and 2 directly (Anserini's log4j logs
errors to standard output, a Java stack trace is many lines), transformers draws its "Loading weights"
bars, Ray's workers print their logs through the driver. None of it is bench's one line per error, so:

- :func:`captured` runs a block with descriptors 1 and 2 sent to memory files, and adds what was printed
  to a :class:`Captured` (which a caller reads to name the cause of a failure, such as a full disk) and to
  bench's log at DEBUG;
- :func:`quiet_transformers` keeps transformers' own bars ("Loading weights") from being drawn;
- :func:`shown` says whether the libraries' output is shown: under ``--debug`` (:func:`show`, set by the
  command line), where what a block captured is printed as it was meant to be when the block ends, the
  libraries' bars are drawn, and Ray's workers print through the driver.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from typing import Iterator

log = logging.getLogger(__name__)

KEEP_CHARS = 64_000  # what a Captured keeps of long output: its end, where a failure's cause is

_state = {"shown": False}
_saved: list[tuple[int, int]] = []  # copies of descriptors 1 and 2 made by the captured blocks running now


def terminal_stderr() -> int:
    """Where standard error goes outside the captured blocks: for a line that must be seen even while one
    runs (a stop's, printed by a watchdog thread)."""
    saved = list(_saved)
    return saved[0][1] if saved else 2


def show(value: bool = True) -> None:
    """``--debug``: the libraries' output is shown (what is captured printed too, bars drawn where bars are)."""
    _state["shown"] = value


def shown() -> bool:
    return _state["shown"]


@dataclass
class Captured:
    """What the libraries printed during the :func:`captured` blocks given this object (the last
    :data:`KEEP_CHARS` characters)."""

    text: str = ""

    def add(self, text: str) -> None:
        self.text = (self.text + text)[-KEEP_CHARS:]


@contextlib.contextmanager
def captured(into: Captured, what: str = "library") -> Iterator[None]:
    """Run the block with file descriptors 1 and 2 sent to memory files; what was printed is added to
    ``into`` and logged at DEBUG (as ``what`` output), or, under :func:`shown`, printed where it was meant to
    go once the block ends. Where the descriptors cannot be redirected the block runs as it is."""
    try:
        sinks = (_memory_file(), _memory_file())
        saved = (os.dup(1), os.dup(2))
    except OSError as exc:  # no descriptor to spare, or none to redirect: print as it is
        log.debug("cannot capture the output of %s: %s", what, exc)
        yield
        return
    for stream in (sys.stdout, sys.stderr):  # Python's pending text goes where it was meant to
        with contextlib.suppress(Exception):
            stream.flush()
    _saved.append(saved)
    for fd, sink in zip((1, 2), sinks):
        os.dup2(sink, fd)
    try:
        yield
    finally:
        _saved.remove(saved)
        printed = []
        for fd, sink, original in zip((1, 2), sinks, saved):
            os.dup2(original, fd)
            os.close(original)
            os.lseek(sink, 0, os.SEEK_SET)
            with os.fdopen(sink, "rb") as f:
                data = f.read()
            if data and shown():
                with contextlib.suppress(OSError):
                    os.write(fd, data)
            printed.append(data.decode("utf-8", errors="replace"))
        text = "".join(printed)
        if text:
            into.add(text)
            if not shown():
                log.debug("%s output: %s", what, text.rstrip())


def _memory_file() -> int:
    """A file descriptor of an anonymous file: in memory where the system has memfd (so a full disk does not
    lose what is printed about it), else in the temporary directory."""
    if hasattr(os, "memfd_create"):
        with contextlib.suppress(OSError):
            return os.memfd_create("bench-library-output")
    return os.dup(tempfile.TemporaryFile().fileno())


def quiet_transformers() -> None:
    """transformers' own bars (its "Loading weights" for every model loaded) are not drawn, unless :func:`shown`;
    its downloads' bars are the hub's, drawn by :mod:`bench.infra.progress`'s rule. Call it before a model is
    loaded (it imports transformers)."""
    from transformers.utils import logging as transformers_logging

    set_hook = getattr(transformers_logging, "set_tqdm_hook", None)
    if set_hook is not None:
        set_hook(None if shown() else _no_bar)
    elif not shown():  # transformers before 5: its switch turns the hub's bars off too
        transformers_logging.disable_progress_bar()


def _no_bar(factory, args, kwargs):
    return factory(*args, **{**kwargs, "disable": True})
