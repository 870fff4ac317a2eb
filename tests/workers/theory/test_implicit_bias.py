"""Finite-sample implicit bias: argmin Q_k s.t. X beta = y (THEORY.md §2)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from workers.theory.implicit_bias import solve_implicit_bias
from workers.theory.potential import q_prime


def instance(seed: int, D: int, n: int, support: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D)) / np.sqrt(D)
    beta = np.zeros(D)
    beta[:support] = rng.normal(size=support)
    return X, X @ beta


def basis_pursuit(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    D = X.shape[1]
    res = linprog(np.ones(2 * D), A_eq=np.hstack([X, -X]), b_eq=y, bounds=(0, None), method="highs")
    assert res.status == 0
    return res.x[:D] - res.x[D:]


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_lazy_limit_is_min_l2_interpolator() -> None:
    X, y = instance(0, 60, 30, 5)
    sol = solve_implicit_bias(X, y, 1e6)
    assert sol.converged
    assert rel(sol.beta, np.linalg.pinv(X) @ y) < 1e-3


# seed 0, support 4: BP recovers the truth; seed 2, support 20 > n/2: it cannot, BP is a
# different (still unique) vertex, and the rich limit still converges to it.
@pytest.mark.parametrize(("seed", "support"), [(0, 4), (2, 20)])
def test_rich_limit_approaches_basis_pursuit(seed: int, support: int) -> None:
    X, y = instance(seed, 60, 30, support)
    target = basis_pursuit(X, y)
    distances = []
    for sqrt_k in (1e-3, 1e-6, 1e-9, 1e-12):
        sol = solve_implicit_bias(X, y, sqrt_k)
        assert sol.converged and sol.residual < 1e-10
        distances.append(rel(sol.beta, target))
    assert distances[-1] <= 5e-2
    assert all(b < a for a, b in zip(distances, distances[1:], strict=False))


@pytest.mark.parametrize("sqrt_k", [1e-12, 1e-4, 1.0, 1e6])
def test_feasible_and_kkt(sqrt_k: float) -> None:
    X, y = instance(1, 80, 40, 8)
    rng = np.random.default_rng(3)
    sk = sqrt_k * np.exp(rng.uniform(-1, 1, size=80))  # per-coordinate scales
    sol = solve_implicit_bias(X, y, sk)
    assert sol.converged and np.max(np.abs(X @ sol.beta - y)) < 1e-10
    # KKT: q'(beta) lies in the row space of X.
    grad = q_prime(sol.beta, sk)
    coef = np.linalg.lstsq(X.T, grad, rcond=None)[0]
    assert np.linalg.norm(X.T @ coef - grad) <= 1e-7 * max(np.linalg.norm(grad), 1.0)


def test_overdetermined_and_bad_input() -> None:
    X, y = instance(4, 10, 20, 3)
    sol = solve_implicit_bias(X, y, 1.0)
    assert sol.converged and sol.iterations == 0
    with pytest.raises(ValueError, match="sqrt_k"):
        solve_implicit_bias(X, y, 0.0)
