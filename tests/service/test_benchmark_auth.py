"""With auth on, starting a benchmark run needs a key with ``submit``; reading a verdict
needs ``read``."""

from __future__ import annotations

from service.auth.bootstrap import create_user_with_key
from service.settings import AuthSettings
from tests.service.bench_support import bench_settings, make_client


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
