"""Regime diagnostics and labels (THEORY.md §4)."""

from __future__ import annotations

import numpy as np
import pytest

from workers.config import InitParams, TaskStats
from workers.theory import regimes
from workers.theory.potential import entropy_h, sqrt_k_finetune
from workers.theory.regimes import (
    CLASSIFIER_VERSION,
    classify,
    empirical_regime,
    l_order,
    measured_reuse,
    pretraining_dependence,
    theory_regime,
)

FIGURE_SETTINGS = {
    "II": InitParams(1e-3, 0.0, 0.0),
    "IV": InitParams(1e-3, -0.99, 0.0),
    "I": InitParams(1e-3, -1.0, 1e-6),
    "III": InitParams(1e-3, 0.0, 10.0),
}


def test_version_and_thresholds_are_constants() -> None:
    assert CLASSIFIER_VERSION == "regimes-v2"
    assert regimes.I_L_MAX == 1.25 and regimes.III_L_MIN == 1.75  # regimes-v1, kept
    assert regimes.L_CUT == 1.5 and regimes.P_CUT == 0.5


@pytest.mark.parametrize("omega", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("expected", list(FIGURE_SETTINGS))
def test_regime_figure_corners(omega: float, expected: str) -> None:
    task = TaskStats(rho_pt=0.1, rho_ft=0.1, omega=omega)
    assert theory_regime(task, FIGURE_SETTINGS[expected]).label == expected


def test_l_order_limits_and_definition() -> None:
    assert l_order(0.0, 1.0) == pytest.approx(2.0)
    assert l_order(1e-9, 1.0) == pytest.approx(2.0, abs=1e-9)
    assert 1.0 <= l_order(1e300, 1e-12) < 1.01
    assert 1.0 < l_order(1e3, 1e-12) < 1.05
    u = np.array([0.1, 1.0, 10.0])
    h = 1 - np.sqrt(1 + u**2) + u * np.arcsinh(u)
    np.testing.assert_allclose(l_order(u / 2, 1.0), u * np.arcsinh(u) / h, rtol=1e-12)
    np.testing.assert_allclose(entropy_h(u), h, rtol=1e-12)


def test_bounds_on_random_grid() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    c = 10 ** rng.uniform(-6, 1, n)
    lam = rng.uniform(-1, 1, n)
    gamma = 10 ** rng.uniform(-6, 1.5, n) * (rng.random(n) > 0.2)
    beta_pt = 10 ** rng.uniform(-4, 1, n) * rng.choice([-1, 1], n)
    beta_ft = 10 ** rng.uniform(-6, 2, n)
    sk = np.array(
        [
            sqrt_k_finetune(b, ci, li, gi)
            for b, ci, li, gi in zip(beta_pt, c, lam, gamma, strict=True)
        ]
    )
    ok = sk > 0
    ell = l_order(beta_ft[ok], sk[ok])
    pd = np.array(
        [
            pretraining_dependence(b, ci, li, s, e)
            for b, ci, li, s, e in zip(beta_pt[ok], c[ok], lam[ok], sk[ok], ell, strict=True)
        ]
    )
    eps = 1e-9
    assert np.all((ell >= 1 - eps) & (ell <= 2 + eps))
    assert np.all((pd >= -1 - eps) & (pd <= eps))
    assert np.all((ell + pd >= 1 - eps) & (ell + pd <= 2 + eps))


def test_classify_corners() -> None:
    assert classify(1.0, 0.0) == "I"
    assert classify(2.0, -1.0) == "II"
    assert classify(2.0, 0.0) == "III"
    assert classify(1.5, -0.4) == "IV"


def test_empirical_regime_matches_theory_on_oracle_quantities() -> None:
    rng = np.random.default_rng(1)
    D = 500
    beta_pt = np.where(np.arange(D) < 50, 1.0, 0.0)
    beta_ft = np.where(np.arange(D) < 50, rng.normal(0, np.sqrt(10), D), 0.0)
    beta_ft += 1e-9 * rng.normal(size=D)  # numerical dust off the support
    for expected, init in FIGURE_SETTINGS.items():
        sk = sqrt_k_finetune(beta_pt, init.c_pt, init.lambda_pt, init.gamma_ft)
        point = empirical_regime(beta_ft=beta_ft, beta_pt=beta_pt, sqrt_k=sk, init=init)
        assert point.label == expected
    stats = measured_reuse(beta_ft, beta_pt)
    assert stats.reuse == 1.0 and stats.sparsity == pytest.approx(0.1)
