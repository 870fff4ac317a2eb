"""Noise handling under the default policy: 20 repeated runs of an unchanged suite raise
no fail (false-alarm rate 0 of 20) and a 20% slowdown of a performance metric is caught.
Bring-your-own values from a seeded noise model keep it fast; the run-here path over the
real dispatcher is in test_benchmarks_api.py."""

from __future__ import annotations

import random

import pytest

from tests.service.bench_support import bench_settings, byo_body, make_client, run_byo


@pytest.mark.parametrize("seed", [11, 12])
def test_twenty_unchanged_runs_raise_no_fail_and_a_slowdown_is_caught(
    sqlite_url: str, seed: int
) -> None:
    from service.store.migrate import upgrade_to_head

    upgrade_to_head(sqlite_url)
    rng = random.Random(seed)
    statuses = []
    with make_client(bench_settings(sqlite_url)) as client:
        for index in range(20):
            run = run_byo(client, "smoke", byo_body(client, "smoke", rng, f"n{index}"))
            statuses.append(run["status"])
        assert statuses[:2] == ["inconclusive", "inconclusive"]  # fewer than 2 earlier runs
        assert "fail" not in statuses and "error" not in statuses
        assert statuses[2:] == ["pass"] * 18

        slow = run_byo(client, "smoke", byo_body(client, "smoke", rng, "slow", wall=1.2))
        assert slow["status"] == "fail"
        regressions = [m for m in slow["metrics"] if m["outcome"] == "regression"]
        assert [m["metric"] for m in regressions] == ["wall_time_per_trial_s"]
        wall = regressions[0]
        assert wall["statistic"] > 5 and wall["change_pct"] == pytest.approx(20, abs=4)
        assert wall["baseline"]["runs"] == 20 and wall["test"] == "lookback_z"
