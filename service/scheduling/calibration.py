"""Compute-time estimates of ``dln_finetune`` trials, calibrated on stored results.

Pure: calibration rows (stored succeeded trials of this machine) and planned trials in,
seconds out; the store collects the rows (``service.store.calibration``).

The model is ``workers.dln.cost``'s (the one every estimate uses): a trial of
``n = round(alpha D)`` samples that runs ``steps`` GD steps costs

    seconds = c * steps * n * D

with one machine constant ``c`` fitted on the rows as total time over total work (the
fixed ``overhead_s`` of a trial is inside ``c`` here),

    c = sum_j wall_j / sum_j (steps_j n_j D_j),

which is exact per batch because a stored ``wall_time_s`` is the batch's measured time
shared by ``steps * n * D`` (``workers.dln.evaluate``); the shared work of a batch
(datasets, theory solves) is thereby included.  The steps of a planned trial are not
known before it runs; GD needs ``O(n / lr)`` steps (``TrainOptions``), so per *setting*
(every parameter but ``seed``, ``D``, ``alpha``, ``n_test``, plus the execution options
but ``max_steps`` and ``device``) they are fitted as steps per sample

    k_setting = sum_j steps_j / sum_j n_j     (the setting's rows)

and predicted as ``min(max_steps, k * n)``.  A setting with no stored result uses ``k``
of all rows, and with no rows at all the estimate falls back to the default constants
(``max_steps`` steps, ``workers.dln.cost``'s measured ``DEFAULT_SECONDS_PER_STEP_DN`` and
``DEFAULT_OVERHEAD_S``: the dispatcher's uncalibrated estimate), and says so.
Only rows of the plan's device type (cpu / cuda) calibrate ``c``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workers.dln.cost import (
    DEFAULT_MAX_STEPS,
    DEFAULT_OVERHEAD_S,
    DEFAULT_SECONDS_PER_STEP_DN,
    network_seconds,
    trial_samples,
)

# Keys that do not define a setting: they change the dataset's size or draw, or only
# cap or place the run.
_NOT_SETTING = frozenset({"seed", "D", "alpha", "n_test"})
_NOT_SETTING_EXECUTION = frozenset({"max_steps", "device", "leg_steps"})
CALIBRATED, DEFAULTS = "calibrated", "default constants"


@dataclass(frozen=True)
class CalibrationRow:
    """One stored succeeded trial: its parameters, execution options, the steps it ran,
    its ``wall_time_s`` and the device it ran on."""

    params: Mapping[str, Any]
    execution: Mapping[str, Any]
    steps: int
    wall_time_s: float
    device: str = "cpu"


@dataclass(frozen=True)
class CostEstimate:
    """Seconds of one core for the planned trials, and what the estimate rests on."""

    seconds: float
    basis: str  # CALIBRATED or DEFAULTS
    calibrated_on: int  # rows that fitted c (0: default constants)
    seconds_per_step_dn: float
    trials_with_history: int  # planned trials whose setting had stored results
    estimated_steps: int


def setting_key(params: Mapping[str, Any], execution: Mapping[str, Any]) -> str:
    """The setting a trial belongs to (module docstring), as a canonical string."""
    kept = {k: v for k, v in params.items() if k not in _NOT_SETTING}
    options = {k: v for k, v in execution.items() if k not in _NOT_SETTING_EXECUTION}
    return json.dumps([kept, options], sort_keys=True, default=str)


def _device_type(device: str) -> str:
    return "cuda" if str(device).startswith("cuda") else "cpu"


@dataclass(frozen=True)
class CalibratedModel:
    """``c`` and the steps per sample per setting, fitted on calibration rows."""

    seconds_per_step_dn: float
    steps_per_sample: Mapping[str, float]
    overall_steps_per_sample: float | None
    calibrated_on: int

    @classmethod
    def fit(cls, rows: Iterable[CalibrationRow], device: str = "cpu") -> CalibratedModel:
        """Fit on the rows of ``device``'s type (steps on every row: they do not depend
        on the machine)."""
        rows = [r for r in rows if r.steps > 0 and r.wall_time_s is not None]
        steps: dict[str, list[float]] = {}
        for row in rows:
            entry = steps.setdefault(setting_key(row.params, row.execution), [0.0, 0.0])
            entry[0] += row.steps
            entry[1] += trial_samples(row.params)
        total_steps = sum(entry[0] for entry in steps.values())
        total_n = sum(entry[1] for entry in steps.values())
        timed = [r for r in rows if _device_type(r.device) == _device_type(device)]
        work = sum(r.steps * trial_samples(r.params) * int(r.params["D"]) for r in timed)
        seconds = sum(r.wall_time_s for r in timed)
        c = seconds / work if work > 0 and seconds > 0 else None
        return cls(
            seconds_per_step_dn=c if c is not None else DEFAULT_SECONDS_PER_STEP_DN,
            steps_per_sample={key: s / n for key, (s, n) in steps.items() if n > 0},
            overall_steps_per_sample=total_steps / total_n if total_n > 0 else None,
            calibrated_on=len(timed) if c is not None else 0,
        )

    def steps(self, params: Mapping[str, Any], execution: Mapping[str, Any]) -> tuple[int, bool]:
        """(predicted steps, whether the trial's setting had stored results)."""
        cap = int(execution.get("max_steps", DEFAULT_MAX_STEPS))
        per_sample = self.steps_per_sample.get(setting_key(params, execution))
        known = per_sample is not None
        if per_sample is None:
            per_sample = self.overall_steps_per_sample
        if per_sample is None:
            return cap, False
        return max(1, min(cap, round(per_sample * trial_samples(params)))), known

    def trial_seconds(self, params: Mapping[str, Any], execution: Mapping[str, Any]) -> float:
        """``c * steps * n * D`` for one planned trial (plus the default per-trial
        overhead when nothing calibrated ``c``)."""
        steps, _ = self.steps(params, execution)
        overhead = 0.0 if self.calibrated_on else DEFAULT_OVERHEAD_S
        return network_seconds(
            trial_samples(params), int(params["D"]), steps, self.seconds_per_step_dn, overhead
        )


def estimate_cost(
    planned: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
    rows: Iterable[CalibrationRow],
) -> CostEstimate:
    """One-core seconds of the planned ``(params, execution)`` trials, with its basis."""
    device = str(planned[0][1].get("device", "cpu")) if planned else "cpu"
    model = CalibratedModel.fit(rows, device)
    seconds = 0.0
    known = total_steps = 0
    for params, execution in planned:
        steps, had_history = model.steps(params, execution)
        known += had_history
        total_steps += steps
        seconds += model.trial_seconds(params, execution)
    return CostEstimate(
        seconds=seconds,
        basis=CALIBRATED if model.calibrated_on else DEFAULTS,
        calibrated_on=model.calibrated_on,
        seconds_per_step_dn=model.seconds_per_step_dn,
        trials_with_history=known,
        estimated_steps=total_steps,
    )
