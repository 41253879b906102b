"""Training an OPTICAL (or sentence-distilled) student on bitext, as a cached, resumable artifact.

The checkpoint lives in ``BENCH_HOME/checkpoints/<fingerprint>``, keyed by the configuration, the
bitext fingerprint and the fingerprints of teacher and initial student, and is built atomically
(:func:`bench.infra.store.cached_build`): only a finished training gets the completion marker. While it
trains, a partial state (trainable weights, optimizer, step, RNG states, loss curve) is
saved every ``save_every`` steps to ``BENCH_HOME/checkpoints-work/<fingerprint>/state.pt``; a later
call with the same inputs resumes from it and ends with the same weights as an uninterrupted run
(the data order is a pure function of seed and step, the learning rate one of the step, and the torch
RNG that drives dropout is saved). The loop, schedule, plan, state and curve are :mod:`bench.infra.training`'s;
this module holds what is OPTICAL's own: the student set-up, the loss of a step, the checkpoint.

The frozen teacher's outputs come from a cache built once for the sentences the plan visits
(:mod:`bench.methods.distill.teacher_cache`; ``teacher_cache=False`` runs the teacher in every step instead:
the same loss to float tolerance, so the cache is not part of the checkpoint's key). With
``freeze_layers=k`` > 0 the student's embedding block and lowest k layers run without dropout (eval
mode) and their outputs come from a cache too, so a step runs only the layers above
(:mod:`bench.methods.distill.prefix_cache`; ``prefix_cache=False`` runs them in every step: the same loss
to float tolerance, not in the key either). Training runs on
:func:`bench.infra.devices.resolve`'s device (bf16 autocast for the student's forward pass on CUDA only; the
losses and Sinkhorn in float32); what is saved (partial state, checkpoint) is on CPU tensors, so a
GPU-trained student loads on a CPU.

Checkpoint layout: ``student/`` (a transformers model + tokenizer directory), ``projection.pt`` when
teacher and student widths differ, ``optical.json`` (configuration, fingerprints, timings),
``loss.csv`` and ``loss.png``.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from bench.infra import batching, devices

from bench.data import models
from bench.methods.distill.optical import MARGINALS, PLANS, center_states, idf_table, ot_loss, tokenize
from bench.methods.distill.sentence import mean_pool, sentence_loss
from bench.methods.distill.prefix_cache import frozen_prefix
from bench.methods.distill.teacher_cache import Teacher
from bench.methods.distill.state_cache import forward
from bench.errors import BenchError
from bench.infra.rates import expected, resumed_at, timed
from bench.infra.store import artifact_dir, bench_home, cached_build, fingerprint, is_complete, raise_if_probing
from bench.infra.training import (STATE_FILE, BatchPlan, Every, Loop, Panel, curve_png, seed_all, warmup_then_decay,
                                  write_curve)

log = logging.getLogger(__name__)

TRAIN_VERSION = 1  # bump when a change to this module changes what training produces
KIND = "checkpoints"
CURVE_FIELDS = ("step", "loss", "ot", "sentence", "anchor", "lr")
LOSS_PANEL = Panel("loss", (("loss", "loss"),), smooth=True)


@dataclass(frozen=True)
class OpticalConfig:
    """Everything that determines a trained student besides the bitext and the two models' weights.

    The default is plain OPTICAL with the multilingual encoder's own English side as the teacher;
    for the MiniLM teacher use ``teacher="all-minilm-l6-v2", teacher_prefix=""``.
    """

    teacher: str = "multilingual-e5-small"  # model spec (bench.data.models); its weights' fingerprint keys too
    student: str = "multilingual-e5-small"
    teacher_prefix: str = "query: "
    student_prefix: str = "query: "
    epsilon: float = 0.05
    iterations: int = 50
    marginals: str = "uniform"  # "uniform" | "idf" (over the bitext, per side)
    tau: float | None = None  # KL relaxation of the marginals (unbalanced OT); None = balanced
    plan: str = "sinkhorn"  # "sinkhorn" (the OT plan) | "maxsim" (each student token to its nearest teacher token)
    w_ot: float = 1.0
    w_sent: float = 0.0
    anchor: float = 0.0  # weight of ||θ − θ₀||² over trainable weights (keeps the student near its start)
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup: float = 0.1  # fraction of the steps with a linearly rising learning rate, then linear decay
    max_grad_norm: float = 1.0
    batch_size: int = 32
    bucket: int = 16  # batches per length-sorted chunk of an epoch (1: plain random batches)
    steps: int = 450  # the step budget; with ``epochs`` set, its cap
    epochs: float | None = None  # the budget in passes over the bitext (see :func:`budgeted`); None: ``steps``
    max_length: int = 128
    freeze_embeddings: bool = True  # word embeddings only
    freeze_layers: int = 0  # also freeze the embedding block and the lowest N transformer layers (faster, near θ₀)
    # OT cost and loss on states centred by the batch's mean teacher token state: mE5's token states
    # share one dominant direction (1 − cos 0.266 ± 0.064), which flattens the plan and the cost
    center: bool = False
    seed: int = 0
    noise: float = 0.0  # misaligned fraction of the bitext (applied by bench.data.bitext; recorded here)

    def with_steps(self, steps: int) -> "OpticalConfig":
        """This config trained for ``steps`` steps: a step count given replaces the budget in epochs."""
        return replace(self, steps=steps, epochs=None)

    def __post_init__(self):
        if self.marginals not in MARGINALS:
            raise BenchError(f"unknown marginals {self.marginals!r}", f"use one of {', '.join(MARGINALS)}")
        if self.plan not in PLANS:
            raise BenchError(f"unknown plan {self.plan!r}", f"use one of {', '.join(PLANS)}")
        if self.w_ot < 0 or self.w_sent < 0 or self.w_ot + self.w_sent == 0:
            raise BenchError("loss weights must be >= 0 and not both 0", "set w_ot and/or w_sent")
        if self.epsilon <= 0 or self.iterations < 1 or (self.tau is not None and self.tau <= 0):
            raise BenchError("epsilon and tau must be > 0, iterations >= 1", "check the OPTICAL configuration")
        if self.epochs is not None and self.epochs <= 0:
            raise BenchError("epochs must be > 0", "check the OPTICAL configuration")
        if self.freeze_layers < 0:
            raise BenchError("freeze_layers must be >= 0", "check the OPTICAL configuration")
        if min(self.steps, self.batch_size, self.bucket) < 1 or not (0 <= self.warmup < 1 and 0 <= self.noise < 1):
            raise BenchError("steps, batch_size and bucket must be >= 1, warmup and noise in [0, 1)",
                             "check the configuration")


@dataclass
class Net:
    """A model with its tokenizer and fingerprint: what training needs of teacher and student."""

    model: Any  # transformers PreTrainedModel returning last_hidden_state
    tokenizer: Any  # a fast tokenizer (offsets are used to mask the prefix)
    fingerprint: str
    conventions: models.Conventions | None = None

    @classmethod
    def from_ref(cls, ref: models.ModelRef) -> "Net":
        model, tokenizer = models.load(ref)
        return cls(model, tokenizer, ref.fingerprint, ref.conventions)

    @classmethod
    def resolve(cls, spec: str) -> "Net":
        return cls.from_ref(models.resolve(spec))


# Options added after checkpoints were first cached: they enter the key only when they differ from
# their default, so the existing checkpoints keep their fingerprints.
_KEYED_WHEN_SET = {"center": False, "plan": "sinkhorn", "epochs": None}


def budgeted(config: OpticalConfig, pairs: int) -> OpticalConfig:
    """``config`` with its budget in steps: ``epochs`` passes over ``pairs`` bitext pairs at its batch size,
    ``ceil(epochs * ceil(pairs / batch_size))`` steps, at most ``steps``. The result has ``epochs`` None, so
    a student trained for an epoch budget is the one trained for the same number of steps (one key)."""
    if config.epochs is None:
        return config
    steps = math.ceil(config.epochs * math.ceil(pairs / config.batch_size))
    return replace(config, steps=max(1, min(config.steps, steps)), epochs=None)


def checkpoint_key(config: OpticalConfig, bitext_fingerprint: str, teacher_fp: str, student_fp: str) -> dict:
    keyed = {k: v for k, v in asdict(config).items() if _KEYED_WHEN_SET.get(k, object()) != v}
    key = {"artifact": "optical", "version": TRAIN_VERSION, "config": keyed,
           "bitext": bitext_fingerprint, "teacher": teacher_fp, "student": student_fp}
    if config.freeze_layers:
        # since issue 21 the frozen layers run without dropout (bench.methods.distill.prefix_cache): a student
        # trained before, with dropout there, is another student; freeze_layers=0 keeps its key
        key["frozen_dropout"] = False
    return key


def checkpoint_dir(config: OpticalConfig, bitext_fingerprint: str, teacher_fp: str, student_fp: str) -> Path:
    """Where the checkpoint for these inputs lives (complete or not: see :func:`bench.infra.store.is_complete`)."""
    return artifact_dir(KIND, checkpoint_key(config, bitext_fingerprint, teacher_fp, student_fp))


def train(config: OpticalConfig, bitext_pairs: Sequence[tuple[str, str]], bitext_fingerprint: str,
          teacher: Net, student_init: Net, *, save_every: int = 50, progress: bool = True,
          callback: Callable[[int, dict], None] | None = None, plot: bool = True, teacher_cache: bool = True,
          prefix_cache: bool = True, device=None) -> Path:
    """Train (or reuse) the student for ``config`` on ``(foreign, english)`` pairs; return the checkpoint dir.

    ``callback(step, record)`` is called after every step with its loss record. Neither
    ``teacher.model`` nor ``student_init.model`` is modified: the student trains on a copy.
    ``device``: a spec for :func:`bench.infra.devices.resolve` (default ``BENCH_DEVICE``, else auto).
    ``teacher_cache`` and ``prefix_cache`` (with ``freeze_layers`` > 0) read the frozen parts' outputs
    from caches; False computes them in every step (the same loss to float tolerance: for comparisons).
    """
    if not bitext_pairs:
        raise BenchError("no bitext to train on", "check the pair's bitext (bench fetch, bitext TSV)")
    config = budgeted(config, len(bitext_pairs))
    key = checkpoint_key(config, bitext_fingerprint, teacher.fingerprint, student_init.fingerprint)
    work = bench_home() / f"{KIND}-work" / fingerprint(key)

    def build(tmp: Path) -> None:
        run = TrainingRun(config, bitext_pairs, teacher, student_init, work, fingerprint(key),
                          teacher_cache=teacher_cache, prefix_cache=prefix_cache, device=device)
        run.fit(tmp, save_every=save_every, progress=progress, callback=callback, plot=plot)

    path = cached_build(KIND, key, timed("student", config.steps, build))
    shutil.rmtree(work, ignore_errors=True)
    return path


def train_specs(config: OpticalConfig, bitext_pairs: Sequence[tuple[str, str]], bitext_fingerprint: str,
                **kwargs) -> Path:
    """:func:`train` with teacher and student resolved from the config's model specs (bench.data.models).

    A finished checkpoint is returned without loading either model.
    """
    config = budgeted(config, len(bitext_pairs))
    teacher, student = models.resolve(config.teacher), models.resolve(config.student)
    path = checkpoint_dir(config, bitext_fingerprint, teacher.fingerprint, student.fingerprint)
    if is_complete(path):
        return path
    raise_if_probing(f"{KIND} {path.name}")  # a plan asks whether it is built: not the models loaded
    log.warning("no finished %s student for this bitext: training one now (%d steps of %d pairs%s; cached "
                "afterwards)", "OT" if config.w_ot else "sentence-distilled", config.steps, config.batch_size,
                expected("student", config.steps))
    return train(config, bitext_pairs, bitext_fingerprint, Net.from_ref(teacher), Net.from_ref(student), **kwargs)


# --- the training run ----------------------------------------------------------------------------------


def frozen_prefixes(model, layers: int) -> tuple[str, ...]:
    """Parameter-name prefixes of the embedding block and the lowest ``layers`` transformer layers.

    Nothing below the first trainable layer needs a gradient, so autograd stops there: the backward
    pass, the slow half of a CPU step, gets shorter.
    """
    names = [n for n, _ in model.named_parameters()]
    stack = sorted({m.group(1) for n in names if (m := re.match(r"(.*\blayers?)\.\d+\.", n))})
    if len(stack) != 1:
        raise BenchError("cannot find the transformer layers of the student to freeze",
                         "use freeze_layers=0 with this model")
    total = len({n.split(".")[len(stack[0].split("."))] for n in names if n.startswith(stack[0] + ".")})
    if layers >= total:
        raise BenchError(f"the recipe freezes the student's lowest {layers} layers and this student has {total}: "
                         "nothing would be trained", f"distil a student of more than {layers} layers (--encoder), "
                         f"or a config with freeze_layers below {total}")
    embeddings = tuple(sorted({n.rsplit(".", 2)[0] + "." for n in names if "embeddings." in n
                               and not n.startswith(stack[0])}))
    return embeddings + tuple(f"{stack[0]}.{i}." for i in range(layers))


class TrainingRun:
    """One training: models, tokens, optimizer; :meth:`fit` runs or resumes it into a directory.

    :func:`train` is the way to train; a benchmark may drive :meth:`loss` steps itself (``benchmarks/train_step.py``).
    """

    def __init__(self, config: OpticalConfig, pairs, teacher: Net, student_init: Net, work: Path, key_fp: str, *,
                 teacher_cache: bool = True, prefix_cache: bool = True, device=None):
        self.config, self.teacher, self.student_init = config, teacher, student_init
        self.work, self.key_fp = work, key_fp
        self.device = devices.resolve(device) if not isinstance(device, torch.device) else device
        self.autocast = devices.bf16_autocast(self.device)
        c = config
        torch.set_num_threads(batching.threads())
        foreign, english = [f for f, _ in pairs], [e for _, e in pairs]
        self.n = len(pairs)
        self.t_tok = tokenize(teacher.tokenizer, english, c.teacher_prefix, c.max_length)
        self.s_tok = tokenize(student_init.tokenizer, foreign, c.student_prefix, c.max_length)
        lengths = [len(t) + len(f) for t, f in zip(self.t_tok.ids, self.s_tok.ids)]
        self.plan = BatchPlan(lengths, c.batch_size, c.seed, c.bucket)
        self.t_idf = self.s_idf = None
        if c.marginals == "idf":
            self.t_idf = idf_table(self.t_tok, teacher.model.config.vocab_size)
            self.s_idf = idf_table(self.s_tok, student_init.model.config.vocab_size)
        visited = {i for step in range(c.steps) for i in self.plan.rows(step)}
        self.teacher_side = Teacher(teacher.model, teacher.tokenizer, teacher.fingerprint, english, self.t_tok,
                                    visited, prefix=c.teacher_prefix, max_length=c.max_length, device=self.device,
                                    cached=teacher_cache)
        seed_all(c.seed)  # after the teacher's states (no random numbers drawn there): the student's set-up is seeded

        self.student = copy.deepcopy(student_init.model).to(self.device)
        self.student.train()
        for p in self.student.parameters():
            p.requires_grad_(True)
        if c.freeze_embeddings:
            self.student.get_input_embeddings().weight.requires_grad_(False)
        if c.freeze_layers:
            frozen = frozen_prefixes(self.student, c.freeze_layers)
            for n, p in self.student.named_parameters():
                if n.startswith(frozen):
                    p.requires_grad_(False)
            for name in frozen:  # no dropout below the first trainable layer: a fixed output, cached or not
                self.student.get_submodule(name.rstrip(".")).eval()
        d_s, d_t = self.student.config.hidden_size, teacher.model.config.hidden_size
        self.projection = torch.nn.Linear(d_s, d_t, bias=False).to(self.device) if d_s != d_t else None
        self.trainable = {n: p for n, p in self.student.named_parameters() if p.requires_grad}
        params = list(self.trainable.values()) + (list(self.projection.parameters()) if self.projection else [])
        self.start = {n: p.detach().clone() for n, p in self.trainable.items()} if c.anchor > 0 else {}
        groups = [{"params": [p for p in params if p.dim() >= 2]},  # no weight decay on biases and LayerNorms
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        self.optimizer = torch.optim.AdamW(groups, lr=c.lr, weight_decay=c.weight_decay)
        self.params = params
        self.frozen_prefix = None  # the frozen layers' outputs read from a cache (no random numbers drawn there)
        if c.freeze_layers and prefix_cache:
            self.frozen_prefix = frozen_prefix(self.student, student_init.tokenizer, student_init.fingerprint, foreign,
                                               self.s_tok, visited, layers=c.freeze_layers, prefix=c.student_prefix,
                                               max_length=c.max_length, device=self.device)

    # -- one step --

    def loss(self, rows: list[int]) -> tuple[torch.Tensor, dict]:
        c = self.config
        tb, sb = (_to(self.t_tok.batch(rows, self.t_idf), self.device),
                  _to(self.s_tok.batch(rows, self.s_idf), self.device))
        t_states, t_pooled = self.teacher_side(rows, tb)
        if self.frozen_prefix is not None:
            s_states = self.frozen_prefix(rows, sb)
        else:
            s_states = forward(self.student, sb["input_ids"], sb["attention_mask"])
        if self.projection is not None:
            s_states = self.projection(s_states)
        total = s_states.new_zeros(())
        parts = {"ot": 0.0, "sentence": 0.0, "anchor": 0.0}
        if c.w_ot > 0:
            t_ot, s_ot = center_states(t_states, s_states, tb["keep"]) if c.center else (t_states, s_states)
            per_pair, _ = ot_loss(t_ot, s_ot, tb["keep"], sb["keep"], teacher_weights=tb.get("weights"),
                                  student_weights=sb.get("weights"), epsilon=c.epsilon, iterations=c.iterations,
                                  tau=c.tau, plan=c.plan)
            ot = per_pair.mean()
            total = total + c.w_ot * ot
            parts["ot"] = ot.item()
        if c.w_sent > 0:
            sent = sentence_loss(mean_pool(s_states, sb["attention_mask"]), t_pooled).mean()
            total = total + c.w_sent * sent
            parts["sentence"] = sent.item()
        if c.anchor > 0:
            drift = sum(((p - self.start[n]) ** 2).sum() for n, p in self.trainable.items())
            total = total + c.anchor * drift
            parts["anchor"] = drift.item()
        return total, parts

    def fit(self, out: Path, *, save_every: int, progress: bool, callback, plot: bool) -> None:
        c = self.config
        loop = Loop(self.optimizer, self.params, steps=c.steps,
                    lr=lambda step: c.lr * warmup_then_decay(step, c.steps, c.warmup),
                    max_grad_norm=c.max_grad_norm, desc=f"training {self.describe()}", progress=progress)
        state = loop.resume(self.work / STATE_FILE, self.key_fp)
        if state is not None:
            self._restore(state)
            resumed_at(loop.step)  # this process's rate counts the steps it trains
        log.info("training %s student on %s (%s): %d pairs, %d steps of %d, %d trainable weights%s", self.describe(),
                 self.device, "bf16 autocast" if self.autocast else "fp32", self.n, c.steps, c.batch_size,
                 sum(p.numel() for p in self.params), f", resuming at step {loop.step}" if state is not None else "")
        # the optimizer's state is saved on the CPU: the payload's "optimizer" replaces the loop's own
        save = Every(save_every, lambda step, record: loop.save(self.work / STATE_FILE, self.key_fp, **self._payload(),
                                                                optimizer=_cpu(self.optimizer.state_dict())))
        loop.run(lambda step: self.loss(self.plan.rows(step)), hooks=[save], callback=callback)
        self._write(out, loop, state is not None, plot)

    def describe(self) -> str:
        c = self.config
        return "sdistill" if c.w_ot == 0 else "optical"

    # -- partial state: what the loop's state does not hold --

    def _payload(self) -> dict:
        return {"trainable": {n: p.detach().cpu().clone() for n, p in self.trainable.items()},
                "projection": _cpu(self.projection.state_dict()) if self.projection is not None else None,
                # dropout on CUDA draws from the device's generator (the loop saves the CPU one)
                "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None}

    def _restore(self, state: dict) -> None:
        with torch.no_grad():
            for n, value in state["trainable"].items():
                self.trainable[n].copy_(value)
        if self.projection is not None:
            self.projection.load_state_dict(state["projection"])
        if self.device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)

    # -- the finished checkpoint --

    def _write(self, out: Path, loop: Loop, resumed: bool, plot: bool) -> None:
        c, seconds = self.config, loop.seconds
        self.student.eval().cpu()
        self.student.save_pretrained(out / "student")
        self.student_init.tokenizer.save_pretrained(out / "student")
        if self.projection is not None:
            torch.save({"weight": self.projection.weight.detach().cpu().clone()}, out / "projection.pt")
        write_curve(loop.curve, out / "loss.csv", CURVE_FIELDS)
        if plot:
            (out / "loss.png").write_bytes(curve_png(loop.curve, [LOSS_PANEL], self.describe()))
        conventions = self.student_init.conventions or models.Conventions(query_prefix=c.student_prefix)
        execution = devices.describe(self.device)
        meta = {
            "system": self.describe(), "config": asdict(c), "teacher_fingerprint": self.teacher.fingerprint,
            "student_init_fingerprint": self.student_init.fingerprint, "pairs": self.n, "steps": loop.step,
            "final_loss": loop.curve[-1]["loss"] if loop.curve else None,
            "seconds_last_session": round(seconds, 1), "resumed": resumed,
            "seconds": round(loop.seconds_total, 1) if loop.seconds_total is not None else None,
            "projection": self.projection is not None, "conventions": asdict(conventions),
            "device": execution["device"], "precision": execution["dtype"], "threads": execution.get("threads"),
            **devices.peak_memory(self.device),
            "teacher_cache": self.teacher_side.path.name if self.teacher_side.path is not None else None,
            "prefix_cache": self.frozen_prefix.path.name if self.frozen_prefix is not None else None,
            "versions": {"torch": torch.__version__, "transformers": _version("transformers")},
        }
        (out / "optical.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        log.info("trained %s student in %.0f s (final loss %.4f)", self.describe(), seconds, meta["final_loss"] or 0.0)


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def _cpu(obj):
    """``obj`` (a state dict: nested dicts, lists, tensors) with every tensor copied to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu(v) for v in obj)
    return obj


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)
