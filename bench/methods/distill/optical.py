"""OPTICAL's objective (DESIGN.md §4): token states of a bitext pair aligned by an entropic OT plan.

For an English sentence e (teacher states ``T``, n×d, frozen) and its foreign translation f (student
states ``S``, m×d), the cost is ``C[j,k] = 1 − cos(T[j], S[k])``, the plan ``P`` the entropic
transport plan between the (masked, weighted) teacher and student tokens, and the loss
``<P, C>_F``. ``P`` is computed on the detached cost and held constant: by the envelope theorem
``∂/∂C min_P (<P,C> + ε·KL(P|a⊗b) + ...) = P*``, so this is the exact gradient of the entropic OT
cost, and no gradient flows through the Sinkhorn iterations.

This module also prepares the tokens: which ones take part in the plan (not special, not the
``query: `` prefix) and, for weighted marginals, their IDF over the bitext.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from bench.methods.distill.sinkhorn import normalized_weights, sinkhorn

MARGINALS = ("uniform", "idf")
# "sinkhorn": the entropic OT plan; "maxsim": each student token's mass on its nearest teacher token, the
# assignment MaxSim scoring makes (a query token's best document token), so the loss is aimed at MaxSim
PLANS = ("sinkhorn", "maxsim")


def cosine_cost(teacher_states: Tensor, student_states: Tensor) -> Tensor:
    """``1 − cos`` between every teacher token (B×n×d) and every student token (B×m×d): B×n×m."""
    t = torch.nn.functional.normalize(teacher_states, dim=-1)
    s = torch.nn.functional.normalize(student_states, dim=-1)
    return 1.0 - t @ s.transpose(-1, -2)


def center_states(teacher_states: Tensor, student_states: Tensor, teacher_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Both sides minus the mean teacher token state of the batch (over unmasked tokens; no gradient).

    One shared, fixed origin keeps the two sides comparable; it removes the direction every mE5 token
    state shares, so ``1 − cos`` measures what distinguishes tokens rather than what they have in common.
    """
    weights = teacher_mask.unsqueeze(-1).to(teacher_states.dtype)
    origin = ((teacher_states.detach() * weights).sum((0, 1)) / weights.sum().clamp_min(1.0))
    return teacher_states - origin, student_states - origin


def maxsim_plan(cost: Tensor, teacher_mask: Tensor, student_mask: Tensor,
                student_weights: Tensor | None = None) -> Tensor:
    """Each student token's weight placed on its lowest-cost teacher token (B×n×m).

    The student's marginal is kept (uniform, or ``student_weights`` renormalised over its unmasked
    tokens); the teacher's is whatever the assignment makes it. ``<P, C>`` is then the weighted mean of
    ``1 − max_j cos(T[j], S[k])`` over student tokens ``k``: MaxSim's score, turned into a cost. A pair
    with no unmasked token on either side gets an all-zero plan.
    """
    b = normalized_weights(student_mask, student_weights, cost.dtype)
    b = b * teacher_mask.any(-1, keepdim=True)
    nearest = cost.masked_fill(~teacher_mask.unsqueeze(-1), math.inf).argmin(-2, keepdim=True)
    return torch.zeros_like(cost).scatter_(-2, nearest, b.unsqueeze(-2))


def ot_loss(teacher_states: Tensor, student_states: Tensor, teacher_mask: Tensor, student_mask: Tensor, *,
            teacher_weights: Tensor | None = None, student_weights: Tensor | None = None,
            epsilon: float = 0.05, iterations: int = 50, tau: float | None = None,
            plan: str = "sinkhorn") -> tuple[Tensor, Tensor]:
    """Per pair ``<P, C>_F`` (B,) and the plan ``P`` (B×n×m, detached).

    Masked tokens (False in the masks) carry no mass; weights (e.g. IDF) are renormalised over the
    unmasked tokens, uniform when None. ``tau`` relaxes the marginals (unbalanced transport).
    ``plan="maxsim"`` replaces the OT plan by :func:`maxsim_plan` (``epsilon``, ``iterations``, ``tau``
    and the teacher's weights then play no part).
    """
    if plan not in PLANS:
        raise ValueError(f"unknown plan {plan!r}: use one of {', '.join(PLANS)}")
    cost = cosine_cost(teacher_states.detach(), student_states)
    with torch.no_grad():
        if plan == "maxsim":
            transport = maxsim_plan(cost.detach(), teacher_mask, student_mask, student_weights)
        else:
            transport = sinkhorn(cost.detach(), teacher_weights, student_weights, mask_a=teacher_mask,
                                 mask_b=student_mask, epsilon=epsilon, iterations=iterations, tau=tau)
    valid = teacher_mask.unsqueeze(-1) & student_mask.unsqueeze(-2)
    return (transport * torch.where(valid, cost, torch.zeros_like(cost))).sum((-2, -1)), transport


# --- tokens --------------------------------------------------------------------------------------------


@dataclass
class Tokenized:
    """One side of the bitext, tokenized once: ids, and which tokens take part in the plan."""

    ids: list[list[int]]
    keep: list[np.ndarray]  # bool per token: not special, not prefix
    pad_id: int

    def batch(self, rows: Sequence[int], idf: np.ndarray | None = None) -> dict[str, Tensor]:
        """Padded ``input_ids``, ``attention_mask``, ``keep`` (bool) and, with an IDF table, ``weights``."""
        width = max(len(self.ids[i]) for i in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        keep = torch.zeros((len(rows), width), dtype=torch.bool)
        for j, i in enumerate(rows):
            n = len(self.ids[i])
            ids[j, :n] = torch.tensor(self.ids[i])
            attention[j, :n] = 1
            keep[j, :n] = torch.from_numpy(self.keep[i])
        out = {"input_ids": ids, "attention_mask": attention, "keep": keep}
        if idf is not None:
            out["weights"] = torch.from_numpy(idf).float()[ids] * keep
        return out


def tokenize(tokenizer, texts: Sequence[str], prefix: str, max_length: int) -> Tokenized:
    """Tokenize ``prefix + text``; special tokens and the prefix's own tokens are marked not kept.

    Prefix tokens are those starting before the end of the stripped prefix (``query:``), found from
    the fast tokenizer's character offsets, as the dense retriever does for MaxSim.
    """
    prefix_chars = len(prefix.rstrip())
    enc = tokenizer([prefix + t for t in texts], truncation=True, max_length=max_length,
                    return_attention_mask=False, return_token_type_ids=False,
                    return_special_tokens_mask=True, return_offsets_mapping=prefix_chars > 0)
    keep = []
    for i, special in enumerate(enc["special_tokens_mask"]):
        k = np.asarray(special, dtype=np.int8) == 0
        if prefix_chars:
            starts = np.array([s for s, _ in enc["offset_mapping"][i]], dtype=np.int64)
            k &= starts >= prefix_chars
        keep.append(k)
    pad = tokenizer.pad_token_id
    return Tokenized([list(x) for x in enc["input_ids"]], keep, 0 if pad is None else int(pad))


def idf_table(side: Tokenized, vocab_size: int) -> np.ndarray:
    """Smoothed IDF of every token id over the side's sentences: ``log((N+1)/(df+1)) + 1`` (kept tokens only)."""
    df: Counter = Counter()
    for ids, keep in zip(side.ids, side.keep):
        df.update(set(np.asarray(ids)[keep].tolist()))
    n = len(side.ids)
    table = np.full(vocab_size, math.log(n + 1) + 1.0, dtype=np.float64)
    for token, count in df.items():
        table[token] = math.log((n + 1) / (count + 1)) + 1.0
    return table
