"""The smoothed completion rate and ETA (service/scheduling/eta.py)."""

from __future__ import annotations

import pytest

from service.scheduling.eta import estimate, weighted_rate


def batches(every_s: float, size: int, count: int) -> list[float]:
    """Completion times of ``count`` batches of ``size`` trials, one every ``every_s``."""
    return [every_s * (k + 1) for k in range(count) for _ in range(size)]


@pytest.mark.parametrize("count", [1, 3, 20])
def test_a_steady_batch_rate_is_estimated_from_the_first_batch_on(count: int) -> None:
    times = batches(200.0, 7, count)
    rate = weighted_rate(times, 0.0, max(times))
    assert rate == pytest.approx(7 / 200, rel=0.02)


def test_the_eta_counts_down_between_batches_instead_of_jumping() -> None:
    """The issue's shape: 7 trials every 200 s, 588 in all.  Sampled every 10 s, the
    cumulative estimate climbs between batches; the smoothed one never rises by more
    than a few seconds and counts down at about a second per second."""
    total, size, every = 588, 7, 200.0
    etas, cumulative = [], []
    for second in range(10 * int(every), 30 * int(every), 10):
        times = [t for t in batches(every, size, total // size) if t <= second]
        remaining = total - len(times)
        etas.append(estimate(times, 0.0, remaining, float(second)).eta_s)
        cumulative.append(remaining / (len(times) / second))
    rises = [b - a for a, b in zip(etas, etas[1:], strict=False)]
    cumulative_rises = [b - a for a, b in zip(cumulative, cumulative[1:], strict=False)]
    assert max(cumulative_rises) > 50  # the old estimate's sawtooth
    assert max(rises) < 5
    assert sum(rises) / len(rises) == pytest.approx(-10, rel=0.05)
    # and it is right: at t the true remaining time is (588 - done) / 7 * 200 - (t - T)
    assert etas[-1] == pytest.approx(((total - 29 * size) / size) * every - 190, rel=0.03)


def test_a_slowdown_shows_within_a_few_time_constants() -> None:
    fast = batches(100.0, 10, 30)  # 0.1 trial/s for 3000 s
    slow = [3000.0 + t for t in batches(1000.0, 10, 3)]  # then 0.01 trial/s
    rate = weighted_rate(fast + slow, 0.0, max(slow))
    assert rate < 0.02


def test_an_overdue_completion_raises_the_eta() -> None:
    times = batches(100.0, 10, 5)
    on_time = estimate(times, 0.0, 100, 550.0).eta_s
    overdue = estimate(times, 0.0, 100, 2000.0).eta_s
    assert on_time == pytest.approx(950, rel=0.05)
    assert overdue > on_time


def test_nothing_finished_means_no_estimate() -> None:
    assert estimate([], 0.0, 10, 100.0).eta_s is None
    assert estimate([50.0], None, 10, 100.0).eta_s is None
    assert estimate([50.0], 0.0, 0, 100.0).eta_s == 0.0
