"""A finished student checkpoint (what :func:`bench.methods.distill.trainer.train` writes) loaded back.

Everything in it is saved on CPU tensors, whichever device trained it, so it loads on a CPU.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bench.data import models
from bench.errors import BenchError
from bench.infra.store import is_complete

POOLER_MODELS = {"bert", "roberta", "xlm-roberta", "camembert"}  # their unused pooler is not saved: skip it


@dataclass
class Student:
    """A trained student loaded back: model, tokenizer, optional projection, and its optical.json."""

    model: Any
    tokenizer: Any
    projection: torch.nn.Linear | None
    meta: dict = field(default_factory=dict)


def load_student(path: Path) -> Student:
    """Load a finished checkpoint (a directory from :func:`bench.methods.distill.train`) in eval mode, on the CPU."""
    from transformers import AutoModel, AutoTokenizer

    from bench.infra.library_output import quiet_transformers

    quiet_transformers()  # no "Loading weights" bar
    path = Path(path)
    if not is_complete(path):
        raise BenchError(f"{path} is not a finished OPTICAL checkpoint", "train it again (bench train optical)")
    config = json.loads((path / "student" / "config.json").read_text())
    extra = {"add_pooling_layer": False} if config.get("model_type") in POOLER_MODELS else {}
    model = AutoModel.from_pretrained(path / "student", **extra).eval()
    tokenizer = AutoTokenizer.from_pretrained(path / "student")
    projection = None
    if (path / "projection.pt").exists():
        weight = torch.load(path / "projection.pt", weights_only=True, map_location="cpu")["weight"]
        projection = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        projection.weight.data.copy_(weight)
        projection.eval()
    return Student(model, tokenizer, projection, json.loads((path / "optical.json").read_text()))


def student_ref(path: Path) -> models.ModelRef:
    """The trained student as a :class:`bench.data.models.ModelRef`, usable by the dense retriever.

    Only for students without a projection (teacher and student of the same width).
    """
    return models.distilled_student(Path(path))
