"""Seconds a trial takes on one CPU core, as the dispatcher sizes batches (pure: no
database, no Ray).

``dln_finetune``: the formula of ``workers.dln.cost`` (the one every estimate uses),
with ``steps = step_fraction · max_steps``::

    t = overhead_s + seconds_per_step_dn · step_fraction · max_steps · n · D

``step_fraction`` is the fraction of ``max_steps`` trials actually run before they stop
early (1 without results: an upper bound).  Other workloads: their own
``cost_per_trial_s`` (``workers/workloads.py``: 0.02 s per ``dln_theory`` trial, about
1e-4 s per step for the nonlinear nets).

Calibration online, from the dispatcher's finished ``dln_finetune`` batches
(:class:`CostSample`: wall time, steps, D, n, max_steps)::

    seconds_per_step_dn = max(Σ wall − N · overhead_s, Σ work / 100 · default) / Σ steps·D·n
    step_fraction       = Σ steps / Σ max_steps

Both are ratios of sums, so they do not depend on how a batch's wall time was divided
among its trials.  A :class:`Calibration` keeps the sums, so :func:`calibrate` can extend
one batch by batch.  ``sweeps plan`` fits the same formula on stored results, with steps
per setting (``service.scheduling.calibration``).  Not modelled: float32 (about 2.4×
faster per step on CPU), GPUs, and the shape's effect on efficiency beyond the default's
measurement; calibration absorbs them on average.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from workers.dln.cost import (
    DEFAULT_MAX_STEPS,
    DEFAULT_OVERHEAD_S,
    DEFAULT_SECONDS_PER_STEP_DN,
    network_seconds,
    trial_samples,
)


@dataclass(frozen=True)
class CostSample:
    """One finished ``dln_finetune`` trial as the calibration sees it."""

    wall_time_s: float
    steps: int
    D: int
    n: int
    max_steps: int | None = None


@dataclass(frozen=True)
class Calibration:
    """Coefficients of the ``dln_finetune`` formula and the sums they were fitted from.

    ``basis`` says where they come from: ``"default"`` (the measured constants above) or
    ``"calibrated"`` (fitted from ``samples`` finished trials).
    """

    seconds_per_step_dn: float = DEFAULT_SECONDS_PER_STEP_DN
    step_fraction: float = 1.0
    overhead_s: float = DEFAULT_OVERHEAD_S
    samples: int = 0
    total_seconds: float = 0.0
    total_work: float = 0.0
    total_steps: float = 0.0
    total_max_steps: float = 0.0

    @property
    def basis(self) -> str:
        return "calibrated" if self.samples else "default"


DEFAULT_CALIBRATION = Calibration()


def calibrate(samples: Iterable[CostSample], base: Calibration | None = None) -> Calibration:
    """``base`` (default: none) extended by ``samples``; coefficients refitted from the sums.

    Samples with no work (zero steps, D or n) or a non-finite wall time are skipped;
    with none left the base is returned unchanged.
    """
    base = base or DEFAULT_CALIBRATION
    seconds, work, steps, max_steps, count = (
        base.total_seconds,
        base.total_work,
        base.total_steps,
        base.total_max_steps,
        base.samples,
    )
    added = 0
    for sample in samples:
        sample_work = float(sample.steps) * sample.D * sample.n
        wall = float(sample.wall_time_s)
        if sample_work <= 0 or not math.isfinite(wall) or wall < 0:
            continue
        seconds += wall
        work += sample_work
        if sample.max_steps:
            steps += sample.steps
            max_steps += sample.max_steps
        count += 1
        added += 1
    if not added:
        return base
    floor = work * DEFAULT_SECONDS_PER_STEP_DN / 100
    slope = max(seconds - count * base.overhead_s, floor) / work
    fraction = min(1.0, steps / max_steps) if max_steps else base.step_fraction
    return replace(
        base,
        seconds_per_step_dn=slope,
        step_fraction=fraction,
        samples=count,
        total_seconds=seconds,
        total_work=work,
        total_steps=steps,
        total_max_steps=max_steps,
    )


def cost_sample(
    params: Mapping[str, Any], execution: Mapping[str, Any], wall_time_s: float, steps: int
) -> CostSample:
    """The sample of one finished ``dln_finetune`` trial (its params and execution)."""
    return CostSample(
        wall_time_s=wall_time_s,
        steps=int(steps),
        D=int(params["D"]),
        n=trial_samples(params),
        max_steps=int(execution.get("max_steps", DEFAULT_MAX_STEPS)),
    )


def estimate_trial_seconds(
    workload: str,
    params: Mapping[str, Any],
    execution: Mapping[str, Any],
    calibration: Calibration | None = None,
) -> float:
    """Estimated single-core seconds of one trial in one batch (formula in the module
    docstring); a trial run in legs (``leg_steps``) runs at most one leg per batch."""
    if workload == "dln_finetune":
        coefficients = calibration or DEFAULT_CALIBRATION
        steps = int(execution.get("max_steps", DEFAULT_MAX_STEPS)) * coefficients.step_fraction
        if execution.get("leg_steps"):
            steps = min(steps, int(execution["leg_steps"]))
        return network_seconds(
            trial_samples(params),
            int(params["D"]),
            steps,
            coefficients.seconds_per_step_dn,
            coefficients.overhead_s,
        )
    from workers.workloads import WORKLOADS

    return float(WORKLOADS[workload].cost_per_trial_s(dict(params), dict(execution)))
