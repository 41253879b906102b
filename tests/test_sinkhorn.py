"""Log-domain Sinkhorn against POT, marginals, masks, unbalanced transport, permutation recovery."""

from __future__ import annotations

import numpy as np
import ot
import pytest
import torch

from bench.methods.distill.sinkhorn import marginal_errors, normalized_weights, sinkhorn

EPS = 0.1
ITERS = 2000  # enough for float64 convergence on these small problems


@pytest.fixture(autouse=True)
def one_thread():
    """Thousands of tiny ops: thread hand-offs would dominate on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _problem(rng, n, m):
    cost = rng.random((n, m))
    a, b = rng.random(n) + 0.1, rng.random(m) + 0.1
    return cost, a / a.sum(), b / b.sum()


@pytest.mark.parametrize("n,m,eps", [(5, 7, 0.1), (12, 9, 0.05), (1, 4, 0.2)])
def test_balanced_plan_agrees_with_pot(n, m, eps):
    rng = np.random.default_rng(n * 100 + m)
    cost, a, b = _problem(rng, n, m)
    plan = sinkhorn(torch.tensor(cost), torch.tensor(a), torch.tensor(b), epsilon=eps, iterations=ITERS).numpy()
    expected = ot.sinkhorn(a, b, cost, eps, method="sinkhorn_log", numItermax=100_000, stopThr=1e-15)
    np.testing.assert_allclose(plan, expected, atol=1e-5, rtol=0)
    assert np.abs(plan - expected).max() < 1e-10


@pytest.mark.parametrize("tau", [0.05, 0.5, 5.0])
def test_unbalanced_plan_agrees_with_pot(tau):
    rng = np.random.default_rng(7)
    cost, a, b = _problem(rng, 6, 8)
    plan = sinkhorn(torch.tensor(cost), torch.tensor(a), torch.tensor(b), epsilon=EPS, iterations=ITERS,
                    tau=tau).numpy()
    expected = ot.sinkhorn_unbalanced(a, b, cost, EPS, tau, reg_type="kl", numItermax=100_000, stopThr=1e-15)
    np.testing.assert_allclose(plan, expected, atol=1e-5, rtol=0)
    assert plan.sum() < 1.0  # mass is destroyed where transport is costly
    assert abs(plan.sum() - expected.sum()) < 1e-8


def test_unbalanced_tends_to_balanced_as_tau_grows():
    rng = np.random.default_rng(3)
    cost, a, b = (torch.tensor(x) for x in _problem(rng, 5, 6))
    balanced = sinkhorn(cost, a, b, epsilon=EPS, iterations=ITERS)
    assert torch.equal(sinkhorn(cost, a, b, epsilon=EPS, iterations=ITERS, tau=float("inf")), balanced)
    errors = [float((sinkhorn(cost, a, b, epsilon=EPS, iterations=ITERS, tau=t) - balanced).abs().max())
              for t in (1.0, 10.0, 100.0)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-3


def test_marginals_satisfied_uniform_and_weighted():
    rng = np.random.default_rng(0)
    cost = torch.tensor(rng.random((4, 10, 13)))
    plan = sinkhorn(cost, epsilon=EPS, iterations=ITERS)
    assert marginal_errors(plan, torch.full((4, 10), 0.1, dtype=torch.float64),
                           torch.full((4, 13), 1 / 13, dtype=torch.float64)) < (1e-6, 1e-6)
    # weights need not be normalised (e.g. IDF): the plan's marginals are the normalised weights
    a, b = torch.tensor(rng.random((4, 10)) * 5), torch.tensor(rng.random((4, 13)) * 3)
    plan = sinkhorn(cost, a, b, epsilon=EPS, iterations=ITERS)
    err_a, err_b = marginal_errors(plan, a / a.sum(-1, keepdim=True), b / b.sum(-1, keepdim=True))
    assert err_a < 1e-6 and err_b < 1e-6


def test_masked_batch_equals_each_problem_solved_alone():
    """Padding and masked tokens get no mass; the unmasked block is POT's plan of the sub-problem."""
    rng = np.random.default_rng(1)
    shapes = [(3, 5), (7, 2), (6, 6)]
    n, m = 8, 7
    cost = torch.tensor(rng.random((len(shapes), n, m)))
    mask_a = torch.zeros(len(shapes), n, dtype=torch.bool)
    mask_b = torch.zeros(len(shapes), m, dtype=torch.bool)
    for i, (r, c) in enumerate(shapes):
        mask_a[i, :r] = True
        mask_b[i, :c] = True
    mask_a[2, 0] = False  # a masked token inside the sentence (e.g. a special or prefix token)
    weights_b = torch.tensor(rng.random((len(shapes), m)) + 0.5)
    plan = sinkhorn(cost, None, weights_b, mask_a=mask_a, mask_b=mask_b, epsilon=EPS, iterations=ITERS)
    for i in range(len(shapes)):
        rows, cols = mask_a[i].numpy(), mask_b[i].numpy()
        assert plan[i][~mask_a[i]].abs().max() == 0 and plan[i][:, ~mask_b[i]].abs().max() == 0
        a = np.full(rows.sum(), 1 / rows.sum())
        b = weights_b[i].numpy()[cols]
        b = b / b.sum()
        expected = ot.sinkhorn(a, b, cost[i].numpy()[np.ix_(rows, cols)], EPS, method="sinkhorn_log",
                               numItermax=100_000, stopThr=1e-15)
        np.testing.assert_allclose(plan[i].numpy()[np.ix_(rows, cols)], expected, atol=1e-8, rtol=0)
        assert abs(float(plan[i].sum()) - 1.0) < 1e-6


def test_fully_masked_side_gives_zero_plan_without_nan():
    cost = torch.rand(3, 3, 4)
    mask_a = torch.tensor([[True, True, False], [False, False, False], [True, True, True]])
    weights_b = torch.tensor([[1.0, 1.0, 1.0, 1.0]] * 2 + [[0.0, 0.0, 0.0, 0.0]])  # no mass at all
    for tau in (1.0, None):
        plan = sinkhorn(cost, None, weights_b, mask_a=mask_a, epsilon=0.05, iterations=20, tau=tau)
        assert torch.isfinite(plan).all()
        assert float(plan[1:].abs().sum()) == 0.0
        assert float(plan[0, 2].abs().sum()) == 0.0
    assert abs(float(plan[0].sum()) - 1.0) < 1e-5  # balanced: the one real problem carries all its mass


def test_permutation_alignment_recovered():
    """Student tokens that are a shuffled copy of the teacher tokens are aligned one to one."""
    gen = torch.Generator().manual_seed(0)
    batch, n, d = 3, 12, 64
    teacher = torch.nn.functional.normalize(torch.randn(batch, n, d, generator=gen), dim=-1)
    perms = torch.stack([torch.randperm(n, generator=gen) for _ in range(batch)])
    student = torch.stack([teacher[i, perms[i]] for i in range(batch)])  # student[k] = teacher[perm[k]]
    student = student + 0.05 * torch.randn(student.shape, generator=gen)
    cost = 1 - teacher @ torch.nn.functional.normalize(student, dim=-1).transpose(1, 2)
    plan = sinkhorn(cost, epsilon=0.05, iterations=50)
    inverse = torch.argsort(perms, dim=1)  # teacher token j sits at student position inverse[j]
    assert torch.equal(plan.argmax(-1), inverse)
    assert float(plan.max(-1).values.min()) > 0.9 / n  # nearly all of each row's mass on its match


def test_single_problem_and_float32():
    cost = torch.rand(5, 6)
    plan = sinkhorn(cost, epsilon=0.05, iterations=200)
    assert plan.shape == (5, 6) and plan.dtype == torch.float32
    assert marginal_errors(plan, torch.full((5,), 0.2), torch.full((6,), 1 / 6)) < (1e-5, 1e-5)


def test_small_epsilon_does_not_overflow():
    cost = torch.rand(2, 30, 40, dtype=torch.float32) * 2  # cosine distances lie in [0, 2]
    plan = sinkhorn(cost, epsilon=1e-3, iterations=50)
    assert torch.isfinite(plan).all() and abs(float(plan[0].sum()) - 1) < 1e-3


def test_normalized_weights_and_validation():
    mask = torch.tensor([[True, False, True], [False, False, False]])
    w = normalized_weights(mask, torch.tensor([[1.0, 5.0, 3.0], [1.0, 1.0, 1.0]]))
    assert torch.allclose(w, torch.tensor([[0.25, 0.0, 0.75], [0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError):
        normalized_weights(mask, torch.tensor([[-1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]))
    with pytest.raises(ValueError):
        sinkhorn(torch.rand(3, 3), epsilon=0.0)
    with pytest.raises(ValueError):
        sinkhorn(torch.rand(3, 3), tau=-1.0)
