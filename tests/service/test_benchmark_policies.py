"""The verdict policies as pure functions: hand-computed statistics, too little data,
direction, best-of, Mann–Whitney, the run status, and suite loading/labels."""

from __future__ import annotations

import math
import statistics

import pytest

from api_schemas.benchmarks import MetricPolicy
from service.benchmarks.measures import contenders
from service.benchmarks.policies import (
    Contender,
    HistoryValue,
    aggregate,
    judge_metric,
    run_status,
)
from service.benchmarks.suites import Suite, list_suites, load_suite, suite_configs
from service.settings import Settings


def history(*values: float) -> list[HistoryValue]:
    return [HistoryValue(f"r{i}", f"c{i}", v, (v,)) for i, v in enumerate(values)]


def test_lookback_z_matches_hand_computation() -> None:
    past = history(1.0, 1.1, 0.9, 1.0)
    mean, sd = 1.0, statistics.stdev([1.0, 1.1, 0.9, 1.0])
    result = judge_metric(MetricPolicy(), Contender(1.5), past)
    assert result.statistic == pytest.approx((1.5 - mean) / sd)
    assert result.outcome == "regression" and result.change_pct == pytest.approx(50)
    assert result.limits["upper"] == pytest.approx(mean + 5 * sd)
    assert judge_metric(MetricPolicy(), Contender(1.05), past).outcome == "unchanged"
    assert judge_metric(MetricPolicy(), Contender(0.5), past).outcome == "improvement"
    higher = MetricPolicy(direction="higher_is_better")
    assert judge_metric(higher, Contender(1.5), past).outcome == "improvement"


def test_too_little_baseline_is_insufficient_data_with_the_reason() -> None:
    result = judge_metric(MetricPolicy(), Contender(1.0), history(1.0))
    assert result.outcome == "insufficient_data" and "at least 2" in result.reason
    assert "found 1" in result.reason
    few = judge_metric(MetricPolicy(test="theory_z"), Contender(1.0, (1.0,), 1.0), [])
    assert few.outcome == "insufficient_data"
    assert judge_metric(MetricPolicy(), Contender(None), history(1, 2)).outcome == "error"


def test_min_change_guards_a_tiny_but_significant_change() -> None:
    past = history(1.0, 1.0001, 0.9999)
    policy = MetricPolicy(min_change_pct=5)
    assert judge_metric(policy, Contender(1.01), past).outcome == "unchanged"
    assert judge_metric(MetricPolicy(), Contender(1.01), past).outcome == "regression"


def test_theory_z_golden_minimum_percentage() -> None:
    samples = (1.0, 1.2, 1.4)
    sem = 0.2 / math.sqrt(3)
    result = judge_metric(MetricPolicy(test="theory_z"), Contender(1.2, samples, 1.1), [])
    assert result.statistic == pytest.approx(0.1 / sem) and result.outcome == "unchanged"
    far = judge_metric(MetricPolicy(test="theory_z"), Contender(1.2, samples, 0.5), [])
    assert far.outcome == "regression"
    golden = MetricPolicy(test="golden", tolerance=0.05)
    assert judge_metric(golden, Contender(1.2, samples, 1.16), []).outcome == "unchanged"
    assert judge_metric(golden, Contender(1.2, samples, 1.3), []).outcome == "regression"
    floor = MetricPolicy(test="minimum", threshold=0.8)
    assert judge_metric(floor, Contender(0.7), []).outcome == "regression"
    pct = MetricPolicy(test="percentage", threshold=10, min_runs=1)
    assert judge_metric(pct, Contender(1.2), history(1.0)).change_pct == pytest.approx(20)
    assert judge_metric(pct, Contender(1.2), history(1.0)).outcome == "regression"
    assert judge_metric(pct, Contender(1.05), history(1.0)).outcome == "unchanged"


def test_mann_whitney_on_repetitions() -> None:
    policy = MetricPolicy(test="mann_whitney", min_samples=5)
    past = [
        HistoryValue(f"r{i}", None, 1.0, tuple(1.0 + 0.01 * j for j in range(5))) for i in range(3)
    ]
    slow = judge_metric(policy, Contender(2.0, tuple(2.0 + 0.01 * j for j in range(5))), past)
    assert slow.outcome == "regression" and slow.statistic < 0.002
    same = judge_metric(policy, Contender(1.02, tuple(1.0 + 0.01 * j for j in range(5))), past)
    assert same.outcome == "unchanged"


def test_aggregate_median_and_best_of() -> None:
    assert aggregate([3, 1, 2], "median") == 2
    assert aggregate([3, 1, 2], "best") == 1
    assert aggregate([3, 1, 2], "best", "higher_is_better") == 3


def test_run_status_is_never_a_silent_pass() -> None:
    assert run_status([("unchanged", False, True)]) == ("pass", None)
    assert run_status([("regression", False, True), ("error", False, True)])[0] == "error"
    assert run_status([("regression", False, True), ("insufficient_data", False, True)])[0] == (
        "fail"
    )
    assert run_status([("insufficient_data", False, True)])[0] == "inconclusive"
    assert run_status([("regression", True, True)])[0] == "pass"  # acknowledged
    assert run_status([("regression", False, False)])[0] == "inconclusive"  # unconfirmed
    assert run_status([])[0] == "inconclusive"


def test_shipped_suites_load_and_label_their_configs() -> None:
    settings = Settings()
    assert {"smoke", "paper-exp1-small", "service"} <= set(list_suites(settings))
    smoke = load_suite(settings, "smoke")
    labels = [c.label for c in suite_configs(smoke, settings.limits)]
    assert labels == ["smoke/lambda_pt=-0.5", "smoke/lambda_pt=0.0", "smoke/lambda_pt=0.5"]
    for name in ("paper-exp1-small", "service"):
        assert isinstance(load_suite(settings, name), Suite)


def test_contenders_expand_per_config_metrics() -> None:
    suite = load_suite(Settings(), "smoke")
    measurements = {
        "configs": {
            "smoke/a": {"gen_error": [1.0, 1.2], "theory_replica": 1.1, "theory_finite": 1.0},
        },
        "metrics": {"wall_time_per_trial_s": [3.0, 1.0, 2.0]},
    }
    judged = contenders(suite, measurements)
    assert judged["theory_agreement[smoke/a]"][1].theory == 1.0  # the suite asks for finite
    assert judged["fraction_inside"][1].value == 1.0
    assert judged["wall_time_per_trial_s"][1].value == 2.0
