"""The one error type the CLI turns into a single line (message + what to do), and the one way a hint
suggests the name a user probably meant."""

import difflib
from typing import Iterable


class BenchError(Exception):
    """An expected failure with a message and a hint for the user.

    The CLI prints ``error: <message> (<hint>)`` on one line and exits non-zero; the traceback is
    shown only with ``--debug``.
    """

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


def did_you_mean(name: str, known: Iterable[str], otherwise: str, *, cutoff: float = 0.6, most: int = 1) -> str:
    """A hint for a mistyped ``name``: the closest of ``known`` (up to ``most``, by difflib's ratio of at least
    ``cutoff``), else ``otherwise``."""
    close = difflib.get_close_matches(name, list(known), n=most, cutoff=cutoff)
    return "did you mean " + " or ".join(close) + "?" if close else otherwise
