"""Benchmark runs through the real app and a real dispatcher (``InlineRunner``) on both
backends: verdicts against a history, shifted results, errors, idempotency, bring-your-own
validation, acknowledgements, thresholds and history."""

from __future__ import annotations

import random

import yaml
from sqlalchemy import func, select

from service.store.models import BenchmarkRun, Trial
from tests.service.bench_support import (
    bench_settings,
    byo_body,
    dispatch,
    git,
    make_client,
    run_byo,
)


def start(client, suite: str, commit: str, **body) -> dict:
    response = client.post(f"/v1/benchmarks/{suite}/runs", json={"git": git(commit), **body})
    assert response.status_code == 201, response.text
    return response.json()


def verdict(client, run_id: str) -> dict:
    response = client.get(f"/v1/benchmarks/runs/{run_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_run_here_history_one_baseline_inconclusive_then_identical_passes(migrated_url) -> None:
    with make_client(bench_settings(migrated_url)) as client:
        first = start(client, "smoke", "c1")
        assert first["status"] == "running" and len(first["sweep_ids"]) == 1
        dispatch(client)
        one = verdict(client, first["id"])
        assert one["status"] == "inconclusive" and "lack baseline" in one["reason"]
        factory = client.app.state.session_factory
        with factory() as session:
            trials = session.scalar(select(func.count()).select_from(Trial))

        second = start(client, "smoke", "c2")
        dispatch(client)
        two = verdict(client, second["id"])
        assert two["status"] == "inconclusive"
        wall = next(m for m in two["metrics"] if m["metric"] == "wall_time_per_trial_s")
        assert wall["outcome"] == "insufficient_data" and "found 1" in wall["reason"]
        assert two["baseline"]["runs"] == [first["id"]]

        third = start(client, "smoke", "c3")
        dispatch(client)
        three = verdict(client, third["id"])
        assert three["status"] == "pass", three
        assert three["baseline"]["strategy"] == "default_branch"
        assert three["baseline"]["commits"] == ["c1", "c2"]
        assert three["baseline"]["sample_counts"]["wall_time_per_trial_s"] == 2
        assert {m["outcome"] for m in three["metrics"]} == {"unchanged"}
        assert all(m["source"] == "service" for m in three["metrics"])
        assert "wall_time_per_trial_s" in three["policy"]
        with factory() as session:
            # content-addressed trials: the reruns cost nothing new
            assert session.scalar(select(func.count()).select_from(Trial)) == trials


def test_results_shifted_by_ten_sem_fail_on_exactly_the_shifted_metrics(migrated_url) -> None:
    rng = random.Random(7)
    with make_client(bench_settings(migrated_url)) as client:
        for commit in ("b1", "b2", "b3"):
            run_byo(client, "smoke", byo_body(client, "smoke", rng, commit))
        same = run_byo(client, "smoke", byo_body(client, "smoke", rng, "same"))
        assert same["status"] == "pass", same
        shifted_label = "smoke/lambda_pt=0.0"
        body = byo_body(client, "smoke", rng, "shifted", shift_sem={shifted_label: 10.0})
        history = [m for m in same["metrics"] if m["metric"] == "wall_time_per_trial_s"][0]
        sd = history["baseline"]["sd"]
        walls = body["results"]["metrics"]["wall_time_per_trial_s"]
        body["results"]["metrics"]["wall_time_per_trial_s"] = [w + 10 * sd for w in walls]
        # 10 SD is ~20%: also past the policy's 5% minimum change
        shifted = run_byo(client, "smoke", body)
        assert shifted["status"] == "fail"
        failed = {m["metric"] for m in shifted["metrics"] if m["outcome"] == "regression"}
        assert failed == {f"theory_agreement[{shifted_label}]", "wall_time_per_trial_s"}
        row = next(m for m in shifted["metrics"] if m["metric"].endswith(f"[{shifted_label}]"))
        assert row["statistic"] > 5 and row["source"] == "byo:seeded noise model"
        assert row["contender"]["reference"] > 0  # the replica theory stored beside it


def test_failing_trial_makes_the_run_an_error(migrated_url, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("service.runners.connected_cluster_gpus", lambda: None)
    suite = yaml.safe_load(open("benchmarks/suites/smoke.yaml").read())
    suite["name"] = "broken"
    suite["sweeps"][0]["execution"]["device"] = "cuda"  # fails in the CPU worker
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(suite))
    with make_client(bench_settings(migrated_url, str(tmp_path))) as client:
        run = start(client, "broken", "x1")
        dispatch(client)
        body = verdict(client, run["id"])
        assert body["status"] == "error" and "failed" in body["reason"]


def test_same_idempotency_key_gives_one_run(migrated_url) -> None:
    with make_client(bench_settings(migrated_url)) as client:
        headers = {"Idempotency-Key": "ci-123-smoke"}
        body = {"git": git("k1")}
        first = client.post("/v1/benchmarks/smoke/runs", json=body, headers=headers)
        again = client.post("/v1/benchmarks/smoke/runs", json=body, headers=headers)
        assert first.status_code == 201 and again.status_code == 200
        assert first.json()["id"] == again.json()["id"]
        other = client.post("/v1/benchmarks/smoke/runs", json={"git": git("k2")}, headers=headers)
        assert other.status_code == 409
        with client.app.state.session_factory() as session:
            assert session.scalar(select(func.count()).select_from(BenchmarkRun)) == 1


def test_bring_your_own_with_a_missing_config_is_422_naming_it(migrated_url) -> None:
    with make_client(bench_settings(migrated_url)) as client:
        body = byo_body(client, "smoke", random.Random(1), "m1")
        del body["results"]["configs"]["smoke/lambda_pt=0.5"]
        response = client.post("/v1/benchmarks/smoke/runs", json=body)
        assert response.status_code == 422
        assert response.json()["error"] == "ResultsIncomplete"
        assert "smoke/lambda_pt=0.5" in str(response.json()["detail"])
        assert client.post("/v1/benchmarks/nope/runs", json=body).status_code == 404


def test_acknowledge_thresholds_and_history(migrated_url) -> None:
    rng = random.Random(3)
    with make_client(bench_settings(migrated_url)) as client:
        for commit in ("h1", "h2", "h3"):
            run_byo(client, "smoke", byo_body(client, "smoke", rng, commit))
        slow = run_byo(client, "smoke", byo_body(client, "smoke", rng, "h4", wall=1.3))
        assert slow["status"] == "fail"
        ack = client.post(
            f"/v1/benchmarks/runs/{slow['id']}/metrics/wall_time_per_trial_s/acknowledge",
            json={"reason": "new optimizer is slower on purpose"},
        )
        assert ack.status_code == 200 and ack.json()["status"] == "pass"
        row = next(m for m in ack.json()["metrics"] if m["metric"] == "wall_time_per_trial_s")
        assert row["outcome"] == "regression" and row["acknowledged"]["reason"]

        loose = {
            "suite": "smoke",
            "metric": "wall_time_per_trial_s",
            "policy": {"test": "percentage", "threshold": 50, "min_runs": 1},
        }
        created = client.post("/v1/benchmarks/thresholds", json=loose)
        assert created.status_code == 201
        assert client.post("/v1/benchmarks/thresholds", json=loose).status_code == 409
        slower = run_byo(client, "smoke", byo_body(client, "smoke", rng, "h5", wall=1.3))
        assert slower["status"] == "pass" and slower["policy"]["wall_time_per_trial_s"]["test"] == (
            "percentage"
        )
        tight = {**loose, "policy": {"test": "percentage", "threshold": 1, "min_runs": 1}}
        updated = client.put(f"/v1/benchmarks/thresholds/{created.json()['id']}", json=tight)
        assert updated.status_code == 200 and updated.json()["policy"]["threshold"] == 1
        assert len(client.get("/v1/benchmarks/thresholds", params={"suite": "smoke"}).json()) == 1
        gone = client.delete(f"/v1/benchmarks/thresholds/{created.json()['id']}")
        assert gone.status_code == 204 and client.get("/v1/benchmarks/thresholds").json() == []

        history = client.get("/v1/benchmarks/smoke/metrics/wall_time_per_trial_s/history").json()
        assert [p["commit"] for p in history["points"]] == ["h1", "h2", "h3", "h4", "h5"]
        assert history["points"][3]["outcome"] == "regression"
        assert history["points"][3]["upper"] is not None
        figure = client.get("/v1/benchmarks/smoke/metrics/wall_time_per_trial_s/figure")
        assert figure.status_code == 200 and figure.content[:4] == b"\x89PNG"


def test_confirm_on_rerun_and_pinned_baseline(migrated_url) -> None:
    rng = random.Random(5)
    with make_client(bench_settings(migrated_url)) as client:
        base = [run_byo(client, "smoke", byo_body(client, "smoke", rng, f"p{i}")) for i in range(3)]
        policy = {"test": "lookback_z", "min_change_pct": 5, "confirm_on_rerun": True}
        threshold = {"suite": "smoke", "metric": "wall_time_per_trial_s", "policy": policy}
        assert client.post("/v1/benchmarks/thresholds", json=threshold).status_code == 201
        once = run_byo(client, "smoke", byo_body(client, "smoke", rng, "slow", wall=1.3))
        assert once["status"] == "inconclusive" and "confirming rerun" in once["reason"]
        twice = run_byo(client, "smoke", byo_body(client, "smoke", rng, "slow", wall=1.3))
        assert twice["status"] == "fail"
        assert twice["baseline"]["commits"] == ["p0", "p1", "p2"]  # not its own commit

        pinned = byo_body(
            client, "smoke", rng, "pin", baseline="pinned", baseline_run_id=base[0]["id"]
        )
        judged = run_byo(client, "smoke", pinned)
        assert judged["baseline"]["strategy"] == "pinned"
        assert judged["baseline"]["runs"] == [base[0]["id"]]
        pr = byo_body(client, "smoke", rng, "feature")
        pr["git"] = git("feature", branch="topic", base_commit="p1", pr_number=7)
        on_pr = run_byo(client, "smoke", pr)
        assert on_pr["baseline"]["strategy"] == "base_commit"
        assert on_pr["baseline"]["commits"] == ["p0", "p1"] and on_pr["git"]["pr_number"] == 7
