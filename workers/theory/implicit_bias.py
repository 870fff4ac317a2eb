"""Finite-sample implicit-bias prediction: argmin Q_k(beta) s.t. X beta = y (THEORY.md §2).

The primal is solved through its smooth, convex dual.  With multiplier mu in R^n and
t = X^T mu, stationarity q_k'(beta_i) = t_i gives

    beta_i(mu) = (sqrt_k_i / 2) sinh(2 t_i)

(THEORY.md writes the same map with nu = -mu), and mu minimizes

    F(mu) = sum_i (sqrt_k_i / 2) sinh(t_i)^2 - y^T mu,
    grad F = X beta(mu) - y,   hess F = X diag(sqrt(k + 4 beta^2)) X^T.

F is the convex conjugate of Q_k composed with X^T, so damped Newton with an Armijo line
search converges globally.  Two things keep both ends of sqrt_k (1e-12 .. 1e6) working:
``sinh(t)^2`` instead of ``cosh(2t) - 1`` (no cancellation in the lazy end, where
t ~ 1e-6) and a cap on the per-step change of t (the rich end needs t ~ 15, and an
uncapped first Newton step from mu = 0 overshoots by ~1/sqrt_k, which would cost dozens
of halvings in the line search).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike

# |t| beyond this would overflow sinh(t)^2; the optimum never gets close (|t| ~ 20 at
# sqrt_k = 1e-12).
_T_CLIP = 300.0
# Largest change of any t_i in one Newton step: sinh grows by e^(2*1.5) ~ 20x at most.
_MAX_DT = 1.5
_ARMIJO = 1e-4


@dataclass(frozen=True)
class ImplicitBiasSolution:
    """Result of :func:`solve_implicit_bias`.

    ``residual`` is max_i |(X beta - y)_i|; ``converged`` says it reached the tolerance.
    """

    beta: np.ndarray
    residual: float
    iterations: int
    converged: bool


def _beta_of_t(t: np.ndarray, sqrt_k: np.ndarray) -> np.ndarray:
    return 0.5 * sqrt_k * np.sinh(2.0 * np.clip(t, -_T_CLIP, _T_CLIP))


def _dual_objective(t: np.ndarray, mu: np.ndarray, y: np.ndarray, sqrt_k: np.ndarray) -> float:
    tc = np.clip(t, -_T_CLIP, _T_CLIP)
    return float(np.sum(0.5 * sqrt_k * np.sinh(tc) ** 2) - y @ mu)


def _newton_direction(X: np.ndarray, curvature: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    hess = (X * curvature) @ X.T
    try:
        factor = scipy.linalg.cho_factor(hess, lower=True, check_finite=False)
        return scipy.linalg.cho_solve(factor, rhs, check_finite=False)
    except np.linalg.LinAlgError:
        # Curvatures span ~24 orders of magnitude in the rich end; a relative ridge keeps
        # the system solvable and the direction a descent direction.
        ridge = 1e-12 * float(np.trace(hess)) / hess.shape[0] + 1e-300
        hess[np.diag_indices_from(hess)] += ridge
        return scipy.linalg.solve(hess, rhs, assume_a="pos", check_finite=False)


def solve_implicit_bias(
    X: ArrayLike,
    y: ArrayLike,
    sqrt_k: ArrayLike,
    *,
    tol: float = 1e-12,
    max_iter: int = 200,
) -> ImplicitBiasSolution:
    """beta_hat = argmin_{X beta = y} sum_i q_{k_i}(beta_i) (THEORY.md §2, "Finite-sample").

    ``X`` is (n, D), ``y`` (n,), ``sqrt_k`` scalar or (D,) (measured from the post-re-init
    weights for a fine-tuning run).  Damped Newton on the dual (module docstring) until
    max |X beta - y| <= tol * max(1, max|y|).  With n >= D the constraint pins beta down
    (when consistent), so the least-squares solution is returned directly.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float).reshape(-1)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X must be (n, D) with n = len(y), got X {X.shape} and y {y.shape}")
    n, D = X.shape
    sk = np.broadcast_to(np.asarray(sqrt_k, dtype=float), (D,)).copy()
    if not np.all(np.isfinite(sk)) or np.any(sk <= 0.0):
        raise ValueError("sqrt_k must be finite and > 0 on every coordinate")
    scale = max(1.0, float(np.max(np.abs(y)))) if n else 1.0
    target = tol * scale

    if n >= D:
        beta = np.linalg.lstsq(X, y, rcond=None)[0]
        residual = float(np.max(np.abs(X @ beta - y))) if n else 0.0
        return ImplicitBiasSolution(beta, residual, 0, residual <= target)

    mu = np.zeros(n)
    t = np.zeros(D)
    beta = np.zeros(D)
    grad = -y
    residual = float(np.max(np.abs(grad)))
    objective = _dual_objective(t, mu, y, sk)
    iterations = 0
    while residual > target and iterations < max_iter:
        iterations += 1
        curvature = np.hypot(sk, 2.0 * beta)
        step = _newton_direction(X, curvature, -grad)
        dt = X.T @ step
        largest = float(np.max(np.abs(dt)))
        if largest > _MAX_DT:
            step, dt = step * (_MAX_DT / largest), dt * (_MAX_DT / largest)
        slope = float(grad @ step)
        accepted = False
        a = 1.0
        for _ in range(60):
            t_new = t + a * dt
            mu_new = mu + a * step
            f_new = _dual_objective(t_new, mu_new, y, sk)
            beta_new = _beta_of_t(t_new, sk)
            grad_new = X @ beta_new - y
            res_new = float(np.max(np.abs(grad_new)))
            # Close to the optimum F changes below its rounding error; a residual that
            # still shrinks is then the better acceptance test.
            slack = 1e-13 * (abs(objective) + 1.0)
            if f_new <= objective + _ARMIJO * a * slope + slack or res_new < 0.5 * residual:
                accepted = True
                break
            a *= 0.5
        if not accepted:
            break
        mu, t, beta, grad, residual, objective = mu_new, t_new, beta_new, grad_new, res_new, f_new
    return ImplicitBiasSolution(beta, residual, iterations, residual <= target)
