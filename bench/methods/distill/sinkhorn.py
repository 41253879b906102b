"""Batched, masked, log-domain Sinkhorn for entropic optimal transport (balanced or unbalanced).

For each problem of a batch (cost ``C`` of shape n×m, source weights ``a``, target weights ``b``) it
solves

    min_P  <P, C> + ε·KL(P | a⊗b)  [+ τ·KL(P·1 | a) + τ·KL(Pᵀ·1 | b)  if unbalanced]

with ``P·1 = a`` and ``Pᵀ·1 = b`` in the balanced case. The relative entropy to ``a⊗b`` is the
convention of POT's ``reg_type="kl"`` (and of Séjourné et al.); for balanced problems it gives the
same plan as the plain entropy ``−H(P)``. Iterations run on the dual potentials ``f, g`` with
log-sum-exp, so small ε (0.05 on costs in [0, 2]) never under- or overflows:

    f ← −λ·ε·LSE_k(log b_k + (g_k − C_jk)/ε),   g ← −λ·ε·LSE_j(log a_j + (f_j − C_jk)/ε)
    P_jk = a_j·b_k·exp((f_j + g_k − C_jk)/ε),    λ = τ/(τ+ε) (1 when balanced)

Masked entries (padding, special tokens) get zero mass: the weights are zeroed there and
renormalised to sum to one over the unmasked tokens of each problem. A problem with no unmasked
token on one side gets an all-zero plan.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def normalized_weights(mask: Tensor, weights: Tensor | None = None, dtype: torch.dtype | None = None) -> Tensor:
    """Per-row probability vectors: ``weights`` (uniform if None) zeroed where ``mask`` is False, summing to 1."""
    dtype = dtype or (weights.dtype if weights is not None else torch.get_default_dtype())
    w = mask.to(dtype)
    if weights is not None:
        weights = weights.to(dtype)
        if (weights < 0).any():
            raise ValueError("marginal weights must be non-negative")
        w = w * weights
    total = w.sum(-1, keepdim=True)
    return torch.where(total > 0, w / total.clamp_min(torch.finfo(w.dtype).tiny), torch.zeros_like(w))


def sinkhorn(cost: Tensor, a: Tensor | None = None, b: Tensor | None = None, *,
             mask_a: Tensor | None = None, mask_b: Tensor | None = None, epsilon: float = 0.05,
             iterations: int = 50, tau: float | None = None) -> Tensor:
    """The entropic transport plan of each problem in ``cost`` (B×n×m, or n×m for one problem).

    ``a`` (B×n) and ``b`` (B×m) are non-negative token weights (uniform when None, e.g. IDF otherwise);
    ``mask_a``/``mask_b`` (bool) mark the tokens that take part. ``tau`` (POT's ``reg_m``) relaxes
    both marginals by a KL penalty; None or ``inf`` solves the balanced problem. Differentiable, but
    OPTICAL calls it on a detached cost (see :func:`bench.methods.distill.optical.ot_loss`).
    """
    single = cost.dim() == 2
    if single:
        cost = cost.unsqueeze(0)
        a = None if a is None else a.unsqueeze(0)
        b = None if b is None else b.unsqueeze(0)
        mask_a = None if mask_a is None else mask_a.unsqueeze(0)
        mask_b = None if mask_b is None else mask_b.unsqueeze(0)
    if cost.dim() != 3:
        raise ValueError(f"cost must be (B, n, m) or (n, m), got shape {tuple(cost.shape)}")
    if epsilon <= 0 or iterations < 1:
        raise ValueError("epsilon must be > 0 and iterations >= 1")
    batch, n, m = cost.shape
    if mask_a is None:
        mask_a = torch.ones(batch, n, dtype=torch.bool, device=cost.device)
    if mask_b is None:
        mask_b = torch.ones(batch, m, dtype=torch.bool, device=cost.device)
    mask_a, mask_b = mask_a.bool(), mask_b.bool()
    if tau is not None and tau <= 0:
        raise ValueError("tau must be > 0 (None or inf for balanced transport)")
    lam = 1.0 if tau is None or math.isinf(tau) else tau / (tau + epsilon)
    wa, wb = normalized_weights(mask_a, a, cost.dtype), normalized_weights(mask_b, b, cost.dtype)
    # a problem without mass on one side gets a zero plan; iterate it as uniform (no ±inf potentials)
    empty = (wa.sum(-1) == 0) | (wb.sum(-1) == 0)
    if empty.any():
        wa = torch.where(empty.unsqueeze(-1), torch.full_like(wa, 1 / n), wa)
        wb = torch.where(empty.unsqueeze(-1), torch.full_like(wb, 1 / m), wb)
    log_a, log_b = _log_weights(wa), _log_weights(wb)

    # costs without mass never matter; keep them finite so that 0·C stays 0
    valid = (wa > 0).unsqueeze(-1) & (wb > 0).unsqueeze(-2)
    neg_scaled = torch.where(valid, cost, torch.zeros_like(cost)) / -epsilon
    step = -lam * epsilon
    f = torch.zeros(batch, n, dtype=cost.dtype, device=cost.device)
    g = torch.zeros(batch, m, dtype=cost.dtype, device=cost.device)
    for _ in range(iterations):
        f = step * torch.logsumexp(neg_scaled + (log_b + g / epsilon).unsqueeze(-2), dim=-1)
        g = step * torch.logsumexp(neg_scaled + (log_a + f / epsilon).unsqueeze(-1), dim=-2)
    plan = torch.exp(neg_scaled + (log_a + f / epsilon).unsqueeze(-1) + (log_b + g / epsilon).unsqueeze(-2))
    if empty.any():
        plan = plan * (~empty).to(plan.dtype).view(-1, 1, 1)
    return plan.squeeze(0) if single else plan


def _log_weights(w: Tensor) -> Tensor:
    return torch.where(w > 0, torch.log(w.clamp_min(torch.finfo(w.dtype).tiny)), torch.full_like(w, -math.inf))


def marginal_errors(plan: Tensor, a: Tensor, b: Tensor) -> tuple[float, float]:
    """Largest absolute deviation of the plan's row and column sums from ``a`` and ``b``."""
    return (float((plan.sum(-1) - a).abs().max()), float((plan.sum(-2) - b).abs().max()))
