"""Tests of the PT initialization, oracle/trained pretraining and the FT start (THEORY.md §1)."""

from __future__ import annotations

import numpy as np
import pytest

from workers.config import InitParams, TaskStats
from workers.dln.pretrain import (
    finetune_start,
    oracle_pretrained_weights,
    pt_init_weights,
    trained_pretrained_weights,
)
from workers.dln.simulate import GDOptions
from workers.dln.tasks import make_dataset

BETAS = np.array([3.0, -3.0, 1.0, -0.5, 0.0, 1e-9, -1e-3, 250.0])


@pytest.mark.parametrize("lam", [-1.0, -0.99, -0.5, 0.0, 1e-300, 0.3, 1.0])
@pytest.mark.parametrize("c", [1e-6, 1e-3, 1.0, 50.0])
def test_oracle_reproduces_beta_and_invariants(c: float, lam: float) -> None:
    weights = oracle_pretrained_weights(BETAS, c, lam)
    delta_plus, delta_minus, s = weights.invariants()
    # Rounding the weights alone perturbs products by ~eps*(c + |beta|): that is the
    # floor of any float64 reconstruction, so tolerances are relative to it.
    scale = c + np.abs(BETAS)
    assert np.all(np.abs(weights.beta - BETAS) <= 1e-10 * scale)
    assert np.all(np.abs(delta_plus - lam * c) <= 1e-10 * scale)
    assert np.all(np.abs(delta_minus - lam * c) <= 1e-10 * scale)
    assert np.all(np.abs(s - c) <= 1e-10 * scale)


def test_oracle_extreme_ratio_is_finite_and_sqrt_k_matches_formula() -> None:
    c, lam, gamma = 1e-6, -0.5, 0.3
    weights = oracle_pretrained_weights(np.array([3.0, 0.0]), c, lam)
    assert np.all(np.isfinite([weights.w_plus, weights.v_plus, weights.w_minus, weights.v_minus]))
    start = finetune_start(weights.w_plus, weights.w_minus, InitParams(c, lam, gamma))
    dp, dm, s = start.invariants()
    sqrt_k = np.hypot(dp - dm, 2 * s)
    # THEORY.md §2: sqrt_k_FT = 2c(1+l)(1 + sqrt(1 + (b/c)^2)) + gamma^2.
    expected = 2 * c * (1 + lam) * (1 + np.sqrt(1 + (np.array([3.0, 0.0]) / c) ** 2)) + gamma**2
    np.testing.assert_allclose(sqrt_k, expected, rtol=1e-9)


def test_pt_init_invariants() -> None:
    weights = pt_init_weights(2e-3, -0.4, 5)
    dp, dm, s = weights.invariants()
    np.testing.assert_allclose(dp, -0.4 * 2e-3, rtol=1e-12)
    np.testing.assert_allclose(s, 2e-3, rtol=1e-12)
    np.testing.assert_array_equal(weights.beta, 0.0)


@pytest.mark.parametrize("convention", ["per_path_sqrt2", "per_path"])
def test_finetune_start(convention: str) -> None:
    init = InitParams(1e-3, 0.2, 0.5, readout_convention=convention)
    pt = oracle_pretrained_weights(BETAS, 1e-3, 0.2)
    start = finetune_start(pt.w_plus, pt.w_minus, init)
    np.testing.assert_allclose(start.w_plus, pt.w_plus + pt.w_minus)
    np.testing.assert_array_equal(start.w_plus, start.w_minus)
    np.testing.assert_array_equal(start.v_plus, init.readout_scale)
    np.testing.assert_array_equal(start.beta, 0.0)


def test_trained_pretraining_follows_the_pt_implicit_bias() -> None:
    from workers.theory.implicit_bias import solve_implicit_bias

    task = TaskStats(rho_pt=0.1, rho_ft=0.1, omega=0.5)
    data = make_dataset(task, D=100, alpha=0.3, seed=0, alpha_pt=0.4, with_pt_data=True)
    c, lam = 0.3, 0.5
    options = GDOptions(lr=0.05, max_steps=60_000, loss_threshold=1e-14, stall_tol=0.0)
    result = trained_pretrained_weights(data.X_pt, data.y_pt, c, lam, options)
    assert result.stop_reason == "loss_threshold"
    theory = solve_implicit_bias(data.X_pt, data.y_pt, 2 * c)
    norm = np.linalg.norm(theory.beta)
    assert np.linalg.norm(result.beta - theory.beta) / norm < 2e-3
    # Not a trivial agreement: the l2 interpolator is far from both.
    pinv = np.linalg.pinv(data.X_pt) @ data.y_pt
    assert np.linalg.norm(pinv - theory.beta) / norm > 5e-2
    dp, dm, s = result.weights.invariants()
    assert np.max(np.abs(dp - lam * c)) < 1e-2 * c
    assert np.max(np.abs(s - c)) < 1e-2 * c
