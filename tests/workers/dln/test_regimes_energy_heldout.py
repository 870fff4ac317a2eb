"""The empirical beta_FT read from the FT function's energy (``dln-finetune-3``,
``workers.theory.regimes.empirical_regime``'s ``law``) on held-apart task statistics:
trained networks' ``regimes-v2`` labels against the theory's, through the report's own
counting.

Which configurations were used for what:

- **Designing the change:** one setting only, the regime figure's II knobs (c_PT = 1e-3,
  λ_PT = 0, γ_FT = 0) on its sparse subset (ω = 1, ρ_FT = 0.01), D = 1000, seed 0,
  α = 0.05, 0.1 and 0.2: 99% of the solution's energy on the 10 teacher coordinates, read
  as a lazy II by the plain mean over 75-97 "used" coordinates.  The estimator (the
  beta^2-weighted magnitude with its Gaussian-law factor) was chosen from that diagnosis,
  not fitted: it has no free constant.
- **Held apart (this test):** ``HELD_APART_SEED``'s draw below, made once and not
  redrawn; ``test_regimes_v2_heldout.py``'s points (drawn before this change, ω = 0.5,
  ρ_FT = 0.1) pass with it too.  Ranges: ω cycling through 0, 0.5, 1 (a random choice
  first drew no 0.5; changed before any label was computed), ρ_FT log-uniform in [0.025,
  0.1] with ρ_PT = 0.1 (so a sparse subset, the same features and new features all
  occur), c_PT log-uniform in [1e−4, 1], λ_PT uniform in [−0.999, 0.9] for even points
  and 1 + λ_PT log-uniform in [10^−3.5, 0.1] for odd ones, γ_FT log-uniform in [1e−3, 10]
  or 0 with probability 0.3, α uniform in [0.2, 0.45]; D = 400, 5 seeds,
  ``teacher_norm: exact``, lr 0.3, at most 20,000 steps (a config with a seed at
  max_steps is not converged and, as in the report, not counted).

Measured once: 35 clear trials, 35 agree; the plain mean of ``dln-finetune-2`` on the
same networks (``representative_law`` returning None) gets 30/35, 5 wrong.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.workers.dln.test_regimes_v2_heldout import draw_init_and_alpha, held_apart_report
from workers.config import InitParams, TaskStats
from workers.dln.evaluate import FinetuneTrial

HELD_APART_SEED = 16180
N_POINTS = 8
SEEDS = 5
D = 400

pytestmark = pytest.mark.slow


def held_apart_points() -> list[tuple[TaskStats, InitParams, float]]:
    """(task, init, α) per point, drawn once from ``HELD_APART_SEED``."""
    rng = np.random.default_rng(HELD_APART_SEED)
    points = []
    for i in range(N_POINTS):
        omega = (0.0, 0.5, 1.0)[i % 3]
        rho_ft = float(10 ** rng.uniform(np.log10(0.025), -1))
        c_pt, lambda_pt, gamma_ft, alpha = draw_init_and_alpha(rng, i)
        task = TaskStats(rho_pt=0.1, rho_ft=rho_ft, omega=omega, teacher_norm="exact")
        points.append((task, InitParams(c_pt, lambda_pt, gamma_ft), alpha))
    return points


def test_points_vary_the_task_statistics() -> None:
    points = held_apart_points()
    assert {task.omega for task, _, _ in points} == {0.0, 0.5, 1.0}
    assert all(0.025 <= task.rho_ft <= 0.1 for task, _, _ in points)


def test_energy_read_labels_match_the_theory_on_held_apart_task_statistics() -> None:
    torch.set_num_threads(1)
    trials, params = [], []
    for task, init, alpha in held_apart_points():
        for seed in range(SEEDS):
            trials.append(
                FinetuneTrial(task=task, init=init, D=D, alpha=alpha, seed=seed, n_test=100)
            )
            params.append(
                {
                    "omega": task.omega,
                    "rho_ft": task.rho_ft,
                    "c_pt": init.c_pt,
                    "lambda_pt": init.lambda_pt,
                    "gamma_ft": init.gamma_ft,
                    "alpha": alpha,
                }
            )
    _, report = held_apart_report(trials, params, "energy")
    clear = [(r.params, r.regime_theory, r.regime_empirical) for r in report.rows if r.regime_clear]
    # Not vacuous: at least half the configs are clear of every threshold and converged.
    assert report.regime_clear_trials is not None
    assert report.regime_clear_trials >= SEEDS * N_POINTS // 2, clear
    # The bar: >= 90% of clear trials agree, the rest boundary, none wrong.
    assert report.regime_clear_agreement_rate >= 0.9, clear
    assert report.regime_clear_wrong == 0, clear
