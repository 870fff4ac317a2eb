"""The cost model (``service/scheduling/cost_model.py``) and batches sized by it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from service.dispatch.batching import Batch, group_into_batches, split, trials_per_batch
from service.scheduling.cost_model import (
    DEFAULT_OVERHEAD_S,
    DEFAULT_SECONDS_PER_STEP_DN,
    Calibration,
    CostSample,
    calibrate,
    cost_sample,
    estimate_trial_seconds,
)
from workers.records import ClaimedTrial

PARAMS = {"D": 1000, "alpha": 0.2}


def test_default_estimate_follows_the_documented_formula() -> None:
    seconds = estimate_trial_seconds("dln_finetune", PARAMS, {"max_steps": 60_000})
    expected = DEFAULT_OVERHEAD_S + 60_000 * 1000 * 200 * DEFAULT_SECONDS_PER_STEP_DN
    assert seconds == pytest.approx(expected)
    # Linear in steps and in D·n; no max_steps means the simulator's default 20,000.
    double = estimate_trial_seconds(
        "dln_finetune", {"D": 2000, "alpha": 0.2}, {"max_steps": 60_000}
    )
    assert double - DEFAULT_OVERHEAD_S == pytest.approx(4 * (seconds - DEFAULT_OVERHEAD_S))
    assert estimate_trial_seconds("dln_finetune", PARAMS, {}) == pytest.approx(
        DEFAULT_OVERHEAD_S + 20_000 * 1000 * 200 * DEFAULT_SECONDS_PER_STEP_DN
    )


def test_other_workloads_use_their_own_cost() -> None:
    assert estimate_trial_seconds("dln_theory", {"alpha": 0.3}, {}) == pytest.approx(0.02)


def test_calibration_is_a_ratio_of_sums() -> None:
    """Two trials of one batch: however the batch's 3 s are divided between them, the
    fitted seconds per step·D·n and the step fraction are the same."""
    even = [CostSample(1.5, 1000, 100, 50, 2000), CostSample(1.5, 3000, 100, 50, 4000)]
    skewed = [CostSample(0.5, 1000, 100, 50, 2000), CostSample(2.5, 3000, 100, 50, 4000)]
    a, b = calibrate(even), calibrate(skewed)
    work = (1000 + 3000) * 100 * 50
    assert a.seconds_per_step_dn == pytest.approx((3.0 - 2 * DEFAULT_OVERHEAD_S) / work)
    assert b.seconds_per_step_dn == pytest.approx(a.seconds_per_step_dn)
    assert a.step_fraction == pytest.approx(4000 / 6000)
    assert (a.samples, a.basis, Calibration().basis) == (2, "calibrated", "default")
    seconds = estimate_trial_seconds(
        "dln_finetune", {"D": 100, "alpha": 0.5}, {"max_steps": 3000}, a
    )
    assert seconds == pytest.approx(
        DEFAULT_OVERHEAD_S + (4000 / 6000) * 3000 * 100 * 50 * a.seconds_per_step_dn
    )


def test_calibration_extends_and_skips_useless_samples() -> None:
    first = calibrate([CostSample(2.0, 1000, 100, 50, 1000)])
    both = calibrate([CostSample(4.0, 1000, 100, 50, 1000)], first)
    at_once = calibrate(
        [CostSample(2.0, 1000, 100, 50, 1000), CostSample(4.0, 1000, 100, 50, 1000)]
    )
    assert both == at_once
    assert (
        calibrate([CostSample(math.nan, 10, 10, 10), CostSample(1.0, 0, 10, 10)]) == Calibration()
    )
    # A wall time below the fixed overhead cannot make the slope zero or negative.
    tiny = calibrate([CostSample(0.0, 1000, 100, 50, 1000)])
    assert tiny.seconds_per_step_dn > 0


def test_cost_sample_of_a_stored_trial() -> None:
    sample = cost_sample({"D": 1000, "alpha": 0.15}, {"max_steps": 60_000}, 3.0, 1234)
    assert sample == CostSample(3.0, 1234, 1000, 150, 60_000)


@dataclass(frozen=True)
class Item:
    workload: str
    batch_key: str
    group_key: str
    seconds: float


def test_batches_pack_whole_groups_up_to_the_count_and_the_time() -> None:
    items = [Item("w", "b", f"g{i // 4}", 10.0) for i in range(16)]  # 4 groups of 4 × 10 s
    by_count = group_into_batches(items, 8)
    assert [len(b) for b in by_count] == [8, 8]
    by_time = group_into_batches(items, 512, cost=lambda t: t.seconds, target_s=45.0)
    assert [len(b) for b in by_time] == [4, 4, 4, 4]  # 2 groups would be 80 s
    one_big = [Item("w", "b", "big", 10.0) for _ in range(9)] + [Item("w", "b", "x", 1.0)]
    sized = group_into_batches(one_big, 7, cost=lambda t: t.seconds, target_s=45.0)
    assert [len(b) for b in sized] == [9, 1]  # larger than both bounds: alone, whole
    assert group_into_batches(items, 512, cost=lambda t: t.seconds, target_s=0) == [items]
    other_shape = [Item("w", "c", "g0", 1.0)]
    assert len(group_into_batches(items[:4] + other_shape, 512)) == 2


def test_trials_per_batch() -> None:
    assert trials_per_batch(2.0, 512, 45.0) == 22
    assert trials_per_batch(100.0, 512, 45.0) == 1
    assert trials_per_batch(0.001, 512, 45.0) == 512
    assert trials_per_batch(2.0, 512, 0.0) == 512


def claimed(i: int, group: str) -> ClaimedTrial:
    return ClaimedTrial(i, 1, "dln_theory", {}, None, {}, "b", group, f"t{i}")


def test_a_failed_batch_splits_at_a_group_boundary() -> None:
    trials = [claimed(i, "a") for i in range(5)] + [claimed(5 + i, "b") for i in range(2)]
    batch = Batch("dln_theory", tuple(trials), {t.trial_id: t.theory_key for t in trials})
    left, right = split(batch, 1.5, 60)
    assert [t.group_key for t in left.trials] == ["a"] * 5
    assert [t.group_key for t in right.trials] == ["b"] * 2
    assert set(left.theory_wanted) == {0, 1, 2, 3, 4}
    alone = Batch("dln_theory", tuple(trials[:5]))
    assert [len(p.trials) for p in split(alone, 1.5, 60)] == [2, 3]


def test_every_uncalibrated_estimate_is_the_one_formula() -> None:
    """The dispatcher's batch sizing, ``sweeps plan`` with nothing stored and the
    workload's own cost (GPU-second quotas) give the same seconds: workers.dln.cost."""
    from service.scheduling.calibration import estimate_cost
    from workers.dln.cost import network_seconds
    from workers.workloads import WORKLOADS

    params, execution = {"alpha": 0.2, "D": 1000}, {"max_steps": 60_000}
    expected = network_seconds(200, 1000, 60_000)
    assert estimate_trial_seconds("dln_finetune", params, execution) == pytest.approx(expected)
    assert estimate_cost([(params, execution)], []).seconds == pytest.approx(expected)
    cost = WORKLOADS["dln_finetune"].cost_per_trial_s(params, execution)
    assert cost == pytest.approx(expected)


def test_the_default_step_budget_is_the_simulator_default() -> None:
    from workers.dln.cost import DEFAULT_MAX_STEPS
    from workers.dln.evaluate import TrainOptions

    assert TrainOptions().max_steps == DEFAULT_MAX_STEPS
