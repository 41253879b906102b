"""The sentence-level distillation term: the student's pooled foreign sentence should point where the
teacher's pooled English sentence points. Alone it is the ``sdistill`` ablation; OPTICAL can weight it in.

Pooling is the one the dense retriever uses at search time (mean over every non-padding token,
prefix and special tokens included), so training optimises the vectors that retrieval compares.
"""

from __future__ import annotations

import torch
from torch import Tensor


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean of the token states (B×L×d) over the tokens where ``attention_mask`` is 1 (B×d)."""
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1)


def sentence_loss(student_pooled: Tensor, teacher_pooled: Tensor) -> Tensor:
    """Per pair ``1 − cos(student, teacher)`` (B,); the teacher side carries no gradient."""
    return 1.0 - torch.nn.functional.cosine_similarity(student_pooled, teacher_pooled.detach(), dim=-1)
