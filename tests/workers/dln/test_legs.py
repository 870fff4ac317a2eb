"""A dln_finetune trial run in legs (execution ``leg_steps``) equals one run straight
through: same steps, same stop reason, the same numbers to 1e-12 in float64.

This goes through the workload the dispatcher calls (``WORKLOADS["dln_finetune"].run``
on ``ClaimedTrial`` records), so the state crosses as the blob the store keeps
(``GDState.to_bytes``), as it does between two batches.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from api_schemas.spec import SweepSpec
from service.expand import expand_spec
from service.settings import LimitSettings
from workers.dln.gd_types import GDState
from workers.records import ClaimedTrial, TrialOutcome
from workers.workloads import WORKLOADS

torch.set_num_threads(1)

# Regime I (λ = −1, γ = 1e−6: rich and slow), regime IV and a lazy setting that stops
# on the loss threshold; lr 0.3 so that the first two need thousands of steps.
SETTINGS = {"lambda_pt": [-1.0, -0.99, 0.0], "gamma_ft": [1e-6, 0.0, 0.0]}
TOTAL = 4000


def planned(leg_steps: int | None, seeds: int = 2) -> list:
    spec = SweepSpec.model_validate(
        {
            "name": "legs",
            "workload": "dln_finetune",
            "params": {
                "D": 100,
                "alpha": 0.3,
                "rho_pt": 0.1,
                "rho_ft": 0.1,
                "omega": 0.0,
                "c_pt": 1e-3,
                "n_test": 200,
            },
            "zip": [SETTINGS],
            "seeds": seeds,
            "execution": {"lr": 0.3, "max_steps": TOTAL, "leg_steps": leg_steps},
        }
    )
    return expand_spec(spec, LimitSettings())


def claims(leg_steps: int | None) -> list[ClaimedTrial]:
    return [
        ClaimedTrial(i, 1, "dln_finetune", t.params, t.seed, t.execution, t.batch_key, t.group_key)
        for i, t in enumerate(planned(leg_steps))
    ]


def run_in_legs(trials: list[ClaimedTrial]) -> tuple[dict[int, TrialOutcome], dict[int, int]]:
    """Run batches the way the dispatcher does: a continuing trial goes into the next
    batch with its saved state, until every trial has a result."""
    workload = WORKLOADS["dln_finetune"]
    results: dict[int, TrialOutcome] = {}
    legs = dict.fromkeys((t.trial_id for t in trials), 0)
    pending = list(trials)
    while pending:
        output = workload.run(pending, {})
        after = []
        for trial, outcome in zip(pending, output.outcomes, strict=True):
            legs[trial.trial_id] += 1
            if outcome.continues:
                state = GDState.from_bytes(outcome.continue_from)
                assert state.step == outcome.metrics["steps"] > trial.resume_step
                after.append(
                    dataclasses.replace(
                        trial,
                        resume_state=outcome.continue_from,
                        resume_step=state.step,
                        resume_seconds=trial.resume_seconds + outcome.wall_time_s,
                    )
                )
            else:
                results[trial.trial_id] = outcome
        assert len(after) < len(pending) or all(
            t.resume_step > p.resume_step for t, p in zip(after, pending, strict=False)
        )
        pending = after
    return results, legs


@pytest.mark.parametrize("leg_steps", [1234, 1500, 1])
def test_a_trial_run_in_legs_equals_one_straight_run(leg_steps: int) -> None:
    # 1234 ends legs off the check schedule (check_every 50), 1500 on it; 1 makes a leg of
    # every step for the first trial's 50 steps (the budget then cuts it: see below).
    straight_trials = claims(None)
    leg_trials = claims(leg_steps)
    if leg_steps == 1:
        # 4000 one-step legs would take minutes; a small budget keeps the test short.
        straight_trials = [_budget(t, 120) for t in straight_trials]
        leg_trials = [_budget(t, 120) for t in leg_trials]
    straight = WORKLOADS["dln_finetune"].run(straight_trials, {}).outcomes
    assert not any(o.continues for o in straight)
    legged, legs = run_in_legs(leg_trials)
    assert max(legs.values()) > 1, "no trial needed a second leg: the test tests nothing"
    reasons = set()
    for trial, expected in zip(leg_trials, straight, strict=True):
        got = legged[trial.trial_id]
        reasons.add(expected.stop_reason)
        assert got.stop_reason == expected.stop_reason
        assert got.metrics["steps"] == expected.metrics["steps"]
        assert legs[trial.trial_id] == max(1, math.ceil(got.metrics["steps"] / leg_steps))
        for name in ("gen_error_sim", "gen_error_theory", "l_order_empirical"):
            assert getattr(got, name) == pytest.approx(getattr(expected, name), rel=1e-12)
        for name in ("test_mse", "beta_rel_diff"):
            assert got.metrics[name] == pytest.approx(expected.metrics[name], rel=1e-12)
        assert got.metrics["train_loss"] == pytest.approx(expected.metrics["train_loss"], rel=1e-9)
        assert got.metrics["invariant_drift"] == pytest.approx(
            expected.metrics["invariant_drift"], rel=1e-9, abs=1e-15
        )
        assert got.regime_empirical == expected.regime_empirical
        assert got.wall_time_s > 0
    if leg_steps != 1:
        # Regime I and IV run out of the 4000-step budget; the lazy one converges first.
        assert reasons == {"max_steps", "loss_threshold"}


def _budget(trial: ClaimedTrial, max_steps: int) -> ClaimedTrial:
    return dataclasses.replace(trial, execution={**trial.execution, "max_steps": max_steps})


def test_legs_stay_out_of_the_trial_key_but_not_the_batch_key() -> None:
    plain, in_legs = planned(None), planned(1000)
    assert [t.key for t in plain] == [t.key for t in in_legs]
    assert {t.batch_key for t in plain}.isdisjoint(t.batch_key for t in in_legs)
    assert {t.execution["leg_steps"] for t in in_legs} == {1000}
