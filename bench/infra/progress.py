"""Progress bars: tqdm's, shown only where a person watches (a terminal), never in a log or under ``-q``.

Every bar of bench goes through :func:`bar`, so the rule is declared once: a bar is drawn when standard
error is a terminal and the command was not asked to be quiet (:func:`quiet`); a CI log or a redirected
stderr gets no carriage-return updates. Models' own bars (transformers' "Loading weights", the hub's
downloads) follow the same rule through their environment switch, set by :func:`quiet` and
:func:`configure` before they are imported.
"""

from __future__ import annotations

import os
import sys

from tqdm import tqdm

_state = {"quiet": False}


def shown() -> bool:
    """Whether bars are drawn: stderr is a terminal and the command is not quiet."""
    return not _state["quiet"] and sys.stderr.isatty()


def quiet(value: bool = True) -> None:
    """``-q``: no bars (errors only); also for the libraries' own bars."""
    _state["quiet"] = value
    configure()


def configure() -> None:
    """The libraries' own bars (Hugging Face's) follow :func:`shown` in this process and its children."""
    if not shown():
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"


def bar(*args, **kwargs) -> tqdm:
    """A tqdm bar (same arguments), disabled where :func:`shown` says no bar is drawn."""
    kwargs["disable"] = bool(kwargs.get("disable")) or not shown()
    return tqdm(*args, **kwargs)
