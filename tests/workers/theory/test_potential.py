"""Hyperbolic-entropy potential and the fine-tuning sqrt_k (THEORY.md §1-2)."""

from __future__ import annotations

import numpy as np
import pytest

from workers.theory.potential import (
    q,
    q_prime,
    q_second,
    sqrt_k_finetune,
    sqrt_k_from_weights,
)


def oracle_post_pt_weights(beta: np.ndarray, c: float, lam: float) -> tuple[np.ndarray, ...]:
    """Independent version of THEORY.md §1's oracle pretraining weights."""
    lam_u = lam * c
    if lam_u == 0.0:
        a = np.sqrt((beta + np.sqrt(beta**2 + c**2)) / 2.0)
        return a, a, c / (2.0 * a), c / (2.0 * a)
    big_a = np.arccosh(c / abs(lam_u))
    big_b = np.arcsinh(beta / c)
    th_p, th_m = (big_a + big_b) / 2.0, (big_a - big_b) / 2.0
    r = np.sqrt(abs(lam_u))
    if lam_u > 0:
        return r * np.cosh(th_p), r * np.sinh(th_p), r * np.cosh(th_m), r * np.sinh(th_m)
    return r * np.sinh(th_p), r * np.cosh(th_p), r * np.sinh(th_m), r * np.cosh(th_m)


@pytest.mark.parametrize("sqrt_k", [1e-6, 1e-2, 1.0, 30.0])
def test_derivatives_match_finite_differences(sqrt_k: float) -> None:
    z = np.linspace(-3.0, 3.0, 41) * sqrt_k
    h = 1e-5 * sqrt_k
    fd1 = (q(z + h, sqrt_k) - q(z - h, sqrt_k)) / (2 * h)
    fd2 = (q_prime(z + h, sqrt_k) - q_prime(z - h, sqrt_k)) / (2 * h)
    np.testing.assert_allclose(fd1, q_prime(z, sqrt_k), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fd2, q_second(z, sqrt_k), rtol=1e-6)


def test_potential_limits_and_no_cancellation() -> None:
    assert q(0.0, 1.0) == 0.0
    # lazy: ~ z^2 / (2 sqrt_k), with full relative accuracy at tiny z
    np.testing.assert_allclose(q(1e-9, 1.0), 0.5e-18, rtol=1e-12)
    # rich: ~ (|z|/2) ln(4|z| / (e sqrt_k))
    np.testing.assert_allclose(q(2.0, 1e-12), np.log(8.0 / (np.e * 1e-12)), rtol=1e-9)
    assert np.all(np.isfinite(q(np.array([1e3, -1e3]), 1e-12)))


@pytest.mark.parametrize("lam", [-0.99, -0.5, 0.0, 0.3, 0.99])
@pytest.mark.parametrize("convention", ["per_path_sqrt2", "per_path"])
def test_sqrt_k_finetune_matches_oracle_weights(lam: float, convention: str) -> None:
    c, gamma = 1e-3, 0.7
    beta = np.array([-2.0, -1e-4, 0.0, 1e-3, 1.0, 5.0])
    wp, vp, wm, vm = oracle_post_pt_weights(beta, c, lam)
    np.testing.assert_allclose(wp * vp - wm * vm, beta, atol=1e-12)
    np.testing.assert_allclose(sqrt_k_from_weights(wp, vp, wm, vm), 2 * c, rtol=1e-9)
    readout = gamma / np.sqrt(2.0) if convention == "per_path_sqrt2" else gamma
    w_ft = wp + wm
    v_ft = np.full_like(beta, readout)
    measured = sqrt_k_from_weights(w_ft, v_ft, w_ft, v_ft)
    np.testing.assert_allclose(
        sqrt_k_finetune(beta, c, lam, gamma, convention), measured, rtol=1e-9
    )


def test_lambda_minus_one_forgets_pretraining() -> None:
    np.testing.assert_allclose(sqrt_k_finetune(np.array([0.0, 3.0]), 1e-3, -1.0, 1e-3), 1e-6)
    with pytest.raises(ValueError, match="readout_convention"):
        sqrt_k_finetune(1.0, 1e-3, 0.0, 0.0, "bogus")
