"""Seconds one ``dln_finetune`` network costs on one CPU core: the one formula behind
every estimate (the dispatcher's batch sizing, ``service.scheduling.cost_model``;
``sweeps plan``, ``service.scheduling.calibration``; GPU-second quotas,
``workers.workloads.DLNFinetune.cost_per_trial_s``).

Each GD step does two products of the ``n × D`` inputs with the weights of the networks
sharing them (``X @ B`` and ``X^T @ R``, ~4 n D flops per network), so::

    seconds = overhead_s + seconds_per_step_dn · steps · n · D,    n = max(1, round(α D))

``overhead_s`` is the fixed work of one trial (its share of the dataset draw, the
finite-sample theory solve, the regimes).  The defaults were measured 2026-12-02 on the
project's 2-core AMD EPYC machine, one torch thread, float64, 8 networks sharing one
dataset (``evaluate_finetune_batch`` with early stopping off): 5.9e-10 s per step·n·D at
D = 1000, n = 200 (5.7e-10 at D = 500, 8.2e-10 at D = 300), and 0.026 s per trial at one
step.  Without calibration a trial is assumed to run ``max_steps`` (an upper bound).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workers.dln.tasks import sample_count

DEFAULT_SECONDS_PER_STEP_DN = 6.0e-10
DEFAULT_OVERHEAD_S = 0.026
DEFAULT_MAX_STEPS = 20_000  # workers.dln.evaluate.TrainOptions.max_steps


def trial_samples(params: Mapping[str, Any]) -> int:
    """``n`` of a trial's parameters (``alpha``, ``D``): ``workers.dln.tasks.sample_count``."""
    return sample_count(params["alpha"], int(params["D"]))


def network_seconds(
    n: int,
    D: int,
    steps: float,
    seconds_per_step_dn: float = DEFAULT_SECONDS_PER_STEP_DN,
    overhead_s: float = DEFAULT_OVERHEAD_S,
) -> float:
    """``overhead_s + seconds_per_step_dn · steps · n · D`` (module docstring)."""
    return overhead_s + seconds_per_step_dn * float(steps) * int(n) * int(D)
