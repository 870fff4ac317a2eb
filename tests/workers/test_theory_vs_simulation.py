"""Replica theory (THEORY.md §3) against batched GD simulation (THEORY.md §5).

At D = 1000, averaged over seeds 0..13 (THEORY.md §5's protocol: 14 seeds per alpha),
the replica E_gen(alpha) must lie inside the simulation's 95% interval (mean +- 1.96
SEM) at three alphas in two regimes:

- II (c = 1e-3, lambda = 0, gamma = 0) on the reference task of THEORY.md §3
  (rho_PT = rho_FT = 0.1, omega = 0.5), alphas across its error drop;
- III (gamma = 10, lazy) on a dense FT task unrelated to PT (rho_FT = 0.9, omega = 0),
  where E_gen ~ 1 - alpha.

Each of the six checks has a 5% false-alarm rate by construction (a fixed seed set makes
the outcome deterministic).  The alphas keep E_gen above ~1e-2, where the train-MSE
stopping rule (1e-4) does not floor the simulated error (THEORY.md §5).
"""

from __future__ import annotations

import numpy as np
import pytest

from workers.config import InitParams, TaskStats
from workers.dln.evaluate import FinetuneTrial, TrainOptions, evaluate_finetune_batch
from workers.theory.asymptotics import generalization_curve

REGIMES = {
    "II": (
        TaskStats(rho_pt=0.1, rho_ft=0.1, omega=0.5),
        InitParams(c_pt=1e-3, lambda_pt=0.0, gamma_ft=0.0),
        (0.1, 0.2, 0.3),
    ),
    "III": (
        TaskStats(rho_pt=0.1, rho_ft=0.9, omega=0.0),
        InitParams(c_pt=1e-3, lambda_pt=0.0, gamma_ft=10.0),
        (0.1, 0.25, 0.4),
    ),
}
SEEDS = range(14)
D = 1000


@pytest.mark.slow
def test_replica_theory_inside_simulation_interval() -> None:
    import torch

    torch.set_num_threads(1)
    trials = [
        FinetuneTrial(task=task, init=init, D=D, alpha=alpha, seed=seed, n_test=1)
        for task, init, alphas in REGIMES.values()
        for alpha in alphas
        for seed in SEEDS
    ]
    # One call: all 84 networks, batched per dataset.
    outcomes = iter(evaluate_finetune_batch(trials, TrainOptions(max_steps=60_000)))
    failures = []
    for name, (task, init, alphas) in REGIMES.items():
        curve = generalization_curve(task, init, np.array(alphas))
        assert curve.reliable.all(), name
        for alpha, theory in zip(alphas, curve.gen_error, strict=True):
            runs = [next(outcomes) for _ in SEEDS]
            assert all(r.stop_reason == "loss_threshold" for r in runs), (name, alpha)
            errors = np.array([r.gen_error_sim for r in runs])
            mean, sem = errors.mean(), errors.std(ddof=1) / np.sqrt(errors.size)
            assert mean > 1e-2, (name, alpha)  # above the stopping-rule floor
            line = f"{name} alpha={alpha}: theory {theory:.4g}, sim {mean:.4g} +- {sem:.2g}"
            print(line)  # visible with -s: the agreement table
            if abs(theory - mean) > 1.96 * sem:
                failures.append(line)
    assert not failures, failures
