"""The distillation recipes bench reports, and the one way a pair's student gets trained.

``OPTICAL`` and ``SDISTILL`` are fixed here, chosen on the tuning collections only (AfriQA ha-en dev
and yo-en train; the search is recorded in ``benchmarks/results/optical_tuning/<pair>.csv``, produced
by ``benchmarks/optical_tune.py``). Both share the data and the step budget, so ``sdistill`` is the
ablation of the OT term.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

from bench.data.bitext import Bitext
from bench.methods.distill.trainer import OpticalConfig, train_specs

# Shared by both recipes: the step budget (batch 32) and the learning rate schedule. 300 steps, not the
# first study's 150: doubling the budget of the chosen OT recipe raised all four tuning MAPs (ha-en-dev
# mean/MaxSim .4497/.4904 -> .4645/.4972, yo-en-train .4207/.4954 -> .4310/.4961; rows "@300" of the
# tuning CSVs), and sw-en trains in about 15-30 minutes on 2 cores, inside the 45-minute limit.
_BUDGET = dict(steps=300, batch_size=32, lr=5e-5, warmup=0.1)

SDISTILL = OpticalConfig(w_ot=0.0, w_sent=1.0, **_BUDGET)
# "ot-center+sent" of the tuning study: the best OT-based variant by mean MAP over ha-en-dev and
# yo-en-train, mean pooling and MaxSim. The plan is sharp (ε = 0.005, not the prototype's 0.05, under
# which it is nearly uniform) and cost and loss are taken on states centred by the batch's mean teacher
# token state: mE5's token states share one dominant direction, so raw 1 − cos hardly separates tokens
# and the OT term pulled every student token toward it (uncentred, OT cost the student MAP).
OPTICAL = OpticalConfig(w_ot=1.0, w_sent=1.0, epsilon=0.005, iterations=100, center=True, **_BUDGET)

RECIPES = {"optical": OPTICAL, "sdistill": SDISTILL}


def for_pair(config: OpticalConfig, pair) -> OpticalConfig:
    """The recipe oriented for ``pair``: the student always encodes the foreign side.

    For foreign queries over English documents both sides are trained with the query prefix; for
    English queries over foreign documents (``en-sw``) the student learns the passage side.
    """
    if pair.doc_lang != "en" and pair.query_lang == "en":
        return replace(config, teacher_prefix="passage: ", student_prefix="passage: ")
    return config


def trained_student(pair, config: OpticalConfig, *, noise: float = 0.0, seed: int = 0,
                    progress: bool = True) -> tuple[Path, Bitext]:
    """The checkpoint of ``config`` trained on ``pair``'s bitext (trained now if not cached), and that bitext."""
    from bench.data.bitext import load_bitext

    config = replace(for_pair(config, pair), noise=noise, seed=seed)
    bitext = load_bitext(pair, noise=noise, seed=seed)
    return train_specs(config, bitext.pairs, bitext.fingerprint, progress=progress), bitext


def describe(config: OpticalConfig) -> dict:
    """The recipe as a run manifest records it (only what differs from the trainer's defaults)."""
    base = asdict(OpticalConfig())
    return {k: v for k, v in asdict(config).items() if v != base[k]}


def training_summary(checkpoint: Path) -> dict:
    """What a run manifest records of how its student was trained (from the checkpoint's optical.json)."""
    meta = json.loads((Path(checkpoint) / "optical.json").read_text())
    keys = ("pairs", "steps", "final_loss", "seconds_last_session", "resumed", "peak_rss_mb", "peak_cuda_mb", "device")
    return {k: meta.get(k) for k in keys}
