"""With auth on, starting a benchmark run needs a key with ``submit``; reading a verdict
needs ``read``."""

from __future__ import annotations

import random

from service.auth.bootstrap import create_user_with_key
from service.settings import AuthSettings
from tests.service.bench_support import bench_settings, byo_body, make_client, run_byo


def test_runs_need_submit_and_verdicts_need_read(migrated_url: str) -> None:
    settings = bench_settings(migrated_url, auth=AuthSettings(enabled=True))
    ci = create_user_with_key(settings, "ci-bot", kind="service", scopes=["read", "submit"]).key
    viewer = create_user_with_key(settings, "viewer", scopes=["read"]).key
    body = {"git": {"commit": "a1", "branch": "main"}}
    with make_client(settings) as client:
        assert client.post("/v1/benchmarks/smoke/runs", json=body).status_code == 401
        denied = client.post(
            "/v1/benchmarks/smoke/runs", json=body, headers={"Authorization": f"Bearer {viewer}"}
        )
        assert denied.status_code == 403
        created = client.post(
            "/v1/benchmarks/smoke/runs", json=body, headers={"Authorization": f"Bearer {ci}"}
        )
        assert created.status_code == 201
        run = created.json()
        assert client.get(f"/v1/benchmarks/runs/{run['id']}").status_code == 401
        read = client.get(
            f"/v1/benchmarks/runs/{run['id']}", headers={"Authorization": f"Bearer {viewer}"}
        )
        assert read.status_code == 200 and read.json()["status"] == "running"


def test_restricted_reads_cover_benchmark_runs_and_their_history(migrated_url: str) -> None:
    # SWEEPS_AUTH__RESTRICT_READS: a run and its history are its submitter's (and admins');
    # another user gets 403 for the run (nothing acknowledged) and a history without it.
    settings = bench_settings(migrated_url, auth=AuthSettings(enabled=True, restrict_reads=True))
    ci = create_user_with_key(settings, "ci-bot", kind="service").key
    other = create_user_with_key(settings, "other").key
    admin = create_user_with_key(settings, "root", admin=True).key
    as_ = {name: {"Authorization": f"Bearer {key}"} for name, key in
           (("ci", ci), ("other", other), ("admin", admin))}  # fmt: skip
    with make_client(settings) as client:
        client.headers.update(as_["ci"])
        run = run_byo(client, "smoke", byo_body(client, "smoke", random.Random(1), "c1"))
        metric = "wall_time_per_trial_s"
        history = f"/v1/benchmarks/smoke/metrics/{metric}/history"
        for who, status, points in (("ci", 200, 1), ("admin", 200, 1), ("other", 403, 0)):
            read = client.get(f"/v1/benchmarks/runs/{run['id']}", headers=as_[who])
            assert read.status_code == status, (who, read.text)
            assert len(client.get(history, headers=as_[who]).json()["points"]) == points
        denied = client.post(
            f"/v1/benchmarks/runs/{run['id']}/metrics/{metric}/acknowledge",
            json={"reason": "not mine"},
            headers=as_["other"],
        )
        assert denied.status_code == 403 and "benchmark run" in denied.json()["detail"]
        after = client.get(f"/v1/benchmarks/runs/{run['id']}", headers=as_["ci"]).json()
        assert all(m["acknowledged"] is None for m in after["metrics"])
