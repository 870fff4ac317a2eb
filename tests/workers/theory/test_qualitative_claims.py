"""The qualitative claims of THEORY.md §4, checked on the replica theory (§3, §5 settings)."""

from __future__ import annotations

import numpy as np
import pytest

from workers.config import InitParams, TaskStats
from workers.theory.asymptotics import generalization_curve, single_task_curve
from workers.theory.potential import sqrt_k_from_weights

REGIMES = {
    "I": InitParams(1e-3, -1.0, 1e-6),
    "II": InitParams(1e-3, 0.0, 0.0),
    "III": InitParams(1e-3, 0.0, 10.0),
    "IV": InitParams(1e-3, -0.99, 0.0),
}
ALPHAS = np.array([0.02, 0.03, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4])


def curves(task: TaskStats) -> dict[str, np.ndarray]:
    out = {}
    for name, init in REGIMES.items():
        curve = generalization_curve(task, init, ALPHAS)
        assert curve.reliable.all()
        out[name] = curve.gen_error
    return out


def test_new_sparse_features_rich_beats_lazy_pt_dependent() -> None:
    """omega = 0: I and IV below II everywhere; II the worst of all four at moderate alpha
    (0.05-0.15; beyond ~0.25 the ridge-like III, 1 - alpha, is worse still)."""
    e = curves(TaskStats(rho_pt=0.1, rho_ft=0.1, omega=0.0))
    assert np.all(e["I"][1:] < e["II"][1:]) and np.all(e["IV"][1:] < e["II"][1:])
    for i in np.flatnonzero((ALPHAS >= 0.05) & (ALPHAS <= 0.15)):
        assert e["II"][i] == max(e[name][i] for name in e)


def test_same_features_lazy_pt_dependent_wins() -> None:
    """omega = 1, rho_FT = rho_PT: II the best for alpha in [0.03, 0.25] and at most half of
    every other regime in [0.1, 0.25] (beyond, every regime but III is at 1e-4 or below)."""
    e = curves(TaskStats(rho_pt=0.1, rho_ft=0.1, omega=1.0))
    best = (ALPHAS >= 0.03) & (ALPHAS <= 0.25)
    clear = (ALPHAS >= 0.1) & (ALPHAS <= 0.25)
    for name in ("I", "III", "IV"):
        assert np.all(e["II"][best] < e[name][best])
        assert np.all(e["II"][clear] < 0.5 * e[name][clear])


def test_sparse_subset_nested_regime_wins() -> None:
    """omega = 1, rho_FT = rho_PT/10: IV best at small alpha (<= 0.05) and II >= 3x worse
    at alpha = 0.05 and 0.1 (theory: ~8x and ~100x).  From alpha ~ 0.1 on, the l1-like
    regime I recovers exactly too and is the best."""
    e = curves(TaskStats(rho_pt=0.1, rho_ft=0.01, omega=1.0))
    small = ALPHAS <= 0.05
    for name in ("I", "II", "III"):
        assert np.all(e["IV"][small] < e[name][small])
    for alpha in (0.05, 0.1):
        i = int(np.flatnonzero(ALPHAS == alpha)[0])
        assert e["II"][i] >= 3.0 * e["IV"][i]


def test_lazy_pt_independent_is_ridge_like() -> None:
    e = curves(TaskStats(rho_pt=0.1, rho_ft=0.1, omega=0.5))
    np.testing.assert_allclose(e["III"], 1.0 - ALPHAS, atol=0.02)


def test_from_scratch_lambda_no_effect_c_matters() -> None:
    """From scratch the potential has sqrt_k = 2c whatever lambda (the init invariants give
    (delta+ - delta-)^2 + 4 s^2 = 4c^2), so lambda cannot change the curve; c does."""
    c = 1e-3
    for lam in (-0.99, -0.5, 0.0, 0.99):
        w, v = np.sqrt(c * (1 + lam) / 2), np.sqrt(c * (1 - lam) / 2)
        assert sqrt_k_from_weights(w, v, w, v) == pytest.approx(2 * c)
    rich = single_task_curve(0.1, 1e-6, ALPHAS).gen_error
    lazy = single_task_curve(0.1, 1.0, ALPHAS).gen_error
    late = ALPHAS >= 0.25
    assert np.all(rich[late] < 0.5 * lazy[late])
