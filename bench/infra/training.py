"""The training mechanics every trainer here shares; nothing in it knows what is being trained.

A trainer brings its model, optimizer and the loss of one step (its own batch, its own forward pass);
:class:`Loop` runs the steps: learning rate from a schedule, zero_grad, backward, gradient clipping,
optimizer step, a record per step in ``loop.curve``, a progress bar, and the trainer's periodic hooks
(:class:`Every`: held-out evaluation, saving a partial state). A step budget ends the loop, or an
optional time budget (``loop.stopped_by`` says which).

Also here: the two learning-rate schedules (:func:`warmup_then_decay`, :func:`warmup_times_decay`), a
seeded step → batch plan (:class:`BatchPlan`), resumable training state written atomically with the
RNG states of torch, Python and numpy (:meth:`Loop.save`, :meth:`Loop.resume`), and a curve as CSV and
PNG (:func:`write_curve`, :func:`read_curve`, :func:`curve_png`).

torch, tqdm and matplotlib are imported where they are used: importing this module loads none of them.
"""

from __future__ import annotations

import csv
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from bench.infra.store import atomic_file

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


# --- learning-rate schedules (factors of the base learning rate) -----------------------------------------


def warmup_then_decay(step: int, steps: int, warmup: float) -> float:
    """Linear warm-up over the first ``warmup`` fraction of ``steps``, then linear decay to zero at ``steps``."""
    w = int(round(warmup * steps))
    if step < w:
        return (step + 1) / w
    return max(0.0, (steps - step) / max(1, steps - w))


def warmup_times_decay(step: int, warmup: int, progress: float) -> float:
    """Linear warm-up over ``warmup`` steps, times a linear decay to zero as ``progress`` goes to 1.

    The decay runs over the whole training (from step 0), not only after the warm-up.
    """
    return min((step + 1) / warmup, 1.0) * max(0.0, 1.0 - progress)


# --- data order ------------------------------------------------------------------------------------------


class BatchPlan:
    """The row indices of every step: a pure function of the lengths, batch size, bucket and seed.

    Each epoch is a seeded permutation cut into chunks of ``bucket`` batches; inside a chunk the
    rows are sorted by length before being cut into batches (less padding, the slow part of a CPU
    step), and the epoch's batches are then shuffled. The last batch of an epoch may be smaller.
    A resumed training asks for step ``s`` and gets the batch an uninterrupted one had.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, bucket: int = 1):
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size, self.seed, self.bucket = batch_size, seed, max(1, bucket)
        n, chunk = len(self.lengths), batch_size * self.bucket
        self.per_epoch = sum(-(-min(chunk, n - s) // batch_size) for s in range(0, n, chunk))
        self._epoch: tuple[int, list[list[int]]] | None = None

    def rows(self, step: int) -> list[int]:
        epoch, i = divmod(step, self.per_epoch)
        if self._epoch is None or self._epoch[0] != epoch:
            self._epoch = (epoch, self._batches(epoch))
        return self._epoch[1][i]

    def _batches(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, epoch])
        perm = rng.permutation(len(self.lengths))
        chunk, bs = self.batch_size * self.bucket, self.batch_size
        batches = []
        for start in range(0, len(perm), chunk):
            part = perm[start:start + chunk]
            if self.bucket > 1:
                part = part[np.argsort(-self.lengths[part], kind="stable")]
            batches += [part[i:i + bs].tolist() for i in range(0, len(part), bs)]
        return [batches[i] for i in rng.permutation(len(batches))]


# --- random state ----------------------------------------------------------------------------------------


def seed_all(seed: int) -> None:
    """Seed Python's, numpy's global and torch's random number generators."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """The states of torch's, Python's and numpy's global generators (loadable with ``weights_only=True``)."""
    import torch

    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch_rng": torch.get_rng_state(), "python_rng": random.getstate(),
            "numpy_rng": (name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss),
                          float(gauss))}


def set_rng_state(state: dict) -> None:
    import torch

    torch.set_rng_state(state["torch_rng"])
    random.setstate(state["python_rng"])
    name, keys, pos, has_gauss, gauss = state["numpy_rng"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))


STATE_FILE = "state.pt"  # a resumable training's partial state, in its work directory


# --- the step loop ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Every:
    """A hook of :meth:`Loop.run`: ``fn(step, record)`` after every ``steps``-th step (never if ``steps`` < 1).

    At the step that ends the training it is called only if ``at_end`` (an evaluation wants that point;
    a partial state does not, the trainer writes the finished one).
    """

    steps: int
    fn: Callable[[int, dict], Any]
    at_end: bool = False

    def due(self, step: int, last: bool) -> bool:
        if last:
            return self.at_end
        return self.steps > 0 and step % self.steps == 0


class Loop:
    """Steps of an optimizer until ``steps`` (or ``max_minutes`` of training, when given).

    ``lr(step)`` is the learning rate of the step (0-based), set on every parameter group before the
    optimizer steps; ``max_grad_norm`` > 0 clips the gradient norm of ``params``. ``loop.step`` counts
    the steps done, ``loop.curve`` holds one record per step: ``{"step" (1-based), "loss", <the loss
    function's parts>, "lr"}``. The progress bar shows a moving average of the loss and the record's
    ``show`` fields.
    """

    def __init__(self, optimizer, params: Sequence[torch.nn.Parameter], *, steps: int, lr: Callable[[int], float],
                 max_grad_norm: float = 0.0, max_minutes: float | None = None, desc: str = "training",
                 progress: bool = True, mininterval: float = 1.0, show: Sequence[str] = ()):
        self.optimizer, self.params, self.steps, self.lr = optimizer, list(params), steps, lr
        self.max_grad_norm, self.max_minutes = max_grad_norm, max_minutes
        self.desc, self.progress, self.mininterval, self.show = desc, progress, mininterval, tuple(show)
        self.step, self.curve = 0, []
        self.minutes = 0.0  # training time of this session at the end of the latest step
        self.seconds = 0.0  # the whole of the latest run(), its hooks included
        # training seconds of the processes before a resume (None: a state saved without them, so unknown)
        self.seconds_before: float | None = 0.0
        self.stopped_by: str | None = None  # "max_steps" | "max_minutes" once run() returns

    def run(self, loss: Callable[[int], tuple[torch.Tensor, dict]], hooks: Sequence[Every] = (),
            callback: Callable[[int, dict], Any] | None = None) -> None:
        """Train from ``loop.step`` on. ``loss(step)`` returns the step's loss tensor and a dict of floats
        to record with it; ``hooks`` then ``callback(step, record)`` are called after every step."""
        import torch
        from bench.infra import progress

        began = time.monotonic()
        running = None
        with progress.bar(total=self.steps, initial=self.step, desc=self.desc, unit="step", disable=not self.progress,
                  mininterval=self.mininterval) as bar:
            while self.step < self.steps:
                total, parts = loss(self.step)
                lr = self.lr(self.step)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                self.optimizer.zero_grad(set_to_none=True)
                total.backward()
                if self.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
                self.optimizer.step()
                self.step += 1
                record = {"step": self.step, "loss": total.item(), **parts, "lr": lr}
                self.curve.append(record)
                running = record["loss"] if running is None else 0.9 * running + 0.1 * record["loss"]
                bar.set_postfix(loss=f"{running:.4f}", **{k: record[k] for k in self.show})
                bar.update(1)
                self.minutes = (time.monotonic() - began) / 60
                last = self.step >= self.steps or (self.max_minutes is not None and self.minutes >= self.max_minutes)
                for hook in hooks:
                    if hook.due(self.step, last):
                        hook.fn(self.step, record)
                if callback is not None:
                    callback(self.step, record)
                if last:
                    break
        self.seconds = time.monotonic() - began
        self.stopped_by = "max_steps" if self.step >= self.steps else "max_minutes"

    # -- a partial state, to resume from --

    def save(self, path: Path, key: str, **payload) -> None:
        """Write step, curve, optimizer state, RNG states and the trainer's ``payload`` (tensors, plain
        data) to ``path`` atomically; ``key`` names the training it belongs to."""
        trained = None if self.seconds_before is None else self.seconds_before + self.minutes * 60
        save_state(path, {"key": key, "step": self.step, "curve": self.curve, "seconds_trained": trained,
                          "optimizer": self.optimizer.state_dict(), **payload})

    def resume(self, path: Path, key: str) -> dict | None:
        """Restore step, curve, optimizer and RNG states from a state :meth:`save` wrote for ``key``;
        return the state (the trainer restores its weights from its payload), or None: start afresh."""
        state = load_state(path, key)
        if state is None:
            return None
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.curve = int(state["step"]), list(state["curve"])
        trained = state.get("seconds_trained")
        self.seconds_before = float(trained) if trained is not None else None
        set_rng_state(state)
        return state

    @property
    def seconds_total(self) -> float | None:
        """Training seconds over every process that trained this run (None where a resumed state did not say)."""
        return None if self.seconds_before is None else self.seconds_before + self.seconds


def save_state(path: Path, state: dict) -> None:
    """``state`` and the RNG states (:func:`rng_state`), torch.save'd via :func:`bench.infra.store.atomic_file`."""
    import torch

    with atomic_file(Path(path)) as tmp:
        torch.save({**state, **rng_state()}, tmp)
    log.debug("saved training state at step %s", state.get("step"))


def load_state(path: Path, key: str) -> dict | None:
    """The state at ``path`` if it exists, is readable and belongs to ``key``; else None."""
    import torch

    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, weights_only=True)
    except Exception as exc:  # a state we cannot read is only lost time: start over
        log.warning("ignoring unreadable training state %s: %s", path, exc)
        return None
    return state if state.get("key") == key else None


# --- curves ----------------------------------------------------------------------------------------------


def write_curve(curve: Sequence[dict], path: Path, fields: Sequence[str] | None = None) -> None:
    """The records as CSV: the columns ``fields`` (others ignored), or the first record's keys."""
    fields = list(fields) if fields is not None else list(curve[0]) if curve else []
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(curve)


def read_curve(path: Path, ints: Sequence[str] = ("step",)) -> list[dict]:
    """A curve written by :func:`write_curve`: ``ints`` columns as int, the others as float."""
    with open(path, newline="") as f:
        return [{k: (int(v) if k in ints else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]


@dataclass(frozen=True)
class Panel:
    """One plot of a curve: record fields against the step.

    ``series``: (field, legend label or None); ``smooth``: draw the first series light and a moving
    mean of it (a window of 1/20 of the curve) on top.
    """

    ylabel: str
    series: tuple[tuple[str, str | None], ...]
    smooth: bool = False
    marker: str | None = None


def curve_png(curve: Sequence[dict], panels: Sequence[Panel], title: str | None = None,
              figsize: tuple[float, float] = (6, 3.5)) -> bytes:
    """The curve's panels side by side, as PNG bytes (no timestamp: the same curve gives the same bytes)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = np.array([r["step"] for r in curve])
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for j, (name, label) in enumerate(panel.series):
            values = np.array([r[name] for r in curve])
            style = {"color": "#9ecae1", "linewidth": 0.8} if panel.smooth and j == 0 else {}
            ax.plot(steps, values, label=label, marker=panel.marker, **style)
            window = max(1, len(values) // 20)
            if panel.smooth and j == 0 and len(values) >= window > 1:
                mean = np.convolve(values, np.ones(window) / window, mode="valid")
                ax.plot(steps[window - 1:], mean, color="#1f77b4", label=f"mean of {window}")
        ax.set_xlabel("step")
        ax.set_ylabel(panel.ylabel)
        if title and len(panels) == 1:
            ax.set_title(title)
        if any(label for _, label in panel.series):
            ax.legend()
    if title and len(panels) > 1:
        fig.suptitle(title)
    if len(panels) > 1:
        fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()
