"""End to end on a real local Ray: HTTP submit → dispatcher → Ray tasks → SQL store →
queries by regime and init-parameter ranges, summary, CSV and Parquet export, and a
dispatcher restart in the middle of a sweep."""

from __future__ import annotations

import csv
import io
import time

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.app import create_app
from service.dispatch import Dispatcher
from service.settings import DispatchSettings, Settings
from service.store.models import Trial
from service.store.session import make_engine, make_session_factory, session_scope
from tests.support import wait_done

pytestmark = pytest.mark.slow

SPEC = {
    "name": "e2e",
    "workload": "dln_finetune",
    "params": {"D": 60, "alpha": 0.5, "rho_pt": 0.1, "rho_ft": 0.1, "omega": 0.5, "c_pt": 0.01},
    "axes": {"lambda_pt": [-0.9, 0.0, 0.5], "gamma_ft": [0.01, 2.0]},
    "seeds": 2,
    "execution": {"lr": 0.2, "max_steps": 5000},
    "tags": ["e2e"],
}


def test_submit_run_query_export(database_url, ray_runner) -> None:
    settings = Settings(
        database_url=database_url, dispatch=DispatchSettings(batch_size=6, poll_seconds=0.05)
    )
    app = create_app(settings, runner=ray_runner, start_dispatcher=True)
    with TestClient(app) as client:
        created = client.post("/v1/sweeps", json=SPEC, headers={"X-Sweeps-Submitter": "ada"})
        assert created.status_code == 201, created.text
        sweep = wait_done(client, created.json()["id"])
        assert sweep["status"] == "succeeded" and sweep["counts"]["succeeded"] == 12
        assert sweep["submitter"] == "ada" and sweep["throughput_per_s"] > 0

        everything = client.get("/v1/results", params={"sweep_id": sweep["id"], "limit": 100})
        rows = everything.json()["items"]
        assert len(rows) == 12
        assert all(r["gen_error_asymptotic"] is not None for r in rows)
        regimes = {r["regime_theory"] for r in rows}
        some = sorted(regimes)[0]
        by_regime = client.get(
            "/v1/results", params={"sweep_id": sweep["id"], "regime_theory": some}
        ).json()["items"]
        assert by_regime and all(r["regime_theory"] == some for r in by_regime)
        ranged = client.get(
            "/v1/results",
            params={"sweep_id": sweep["id"], "lambda_pt_lt": -0.5, "gamma_ft_ge": 1.0},
        ).json()["items"]
        assert len(ranged) == 2
        assert all(r["params"]["lambda_pt"] < -0.5 and r["params"]["gamma_ft"] >= 1 for r in ranged)

        summary = client.get(
            "/v1/results/summary",
            params={"sweep_id": sweep["id"], "group_by": "lambda_pt,gamma_ft"},
        ).json()
        assert len(summary["rows"]) == 6 and all(r["count"] == 2 for r in summary["rows"])

        exported = client.get(
            "/v1/results/export", params={"sweep_id": sweep["id"], "format": "csv"}
        )
        assert exported.status_code == 200
        assert len(list(csv.DictReader(io.StringIO(exported.text)))) == 12
        parquet = client.get(
            "/v1/results/export", params={"sweep_id": sweep["id"], "format": "parquet"}
        )
        assert pq.read_table(io.BytesIO(parquet.content)).num_rows == 12

        again = client.post("/v1/sweeps", json={**SPEC, "name": "e2e-again"})
        assert again.json()["cached_count"] == 12
        assert wait_done(client, again.json()["id"])["status"] == "succeeded"


def test_dispatcher_restart_mid_sweep(database_url, ray_runner) -> None:
    """A dispatcher dies with batches in flight; a new one finishes the sweep; every
    trial ends with exactly one result."""
    settings = Settings(
        database_url=database_url,
        dispatch=DispatchSettings(
            batch_size=2,
            max_inflight_batches=2,
            lease_seconds=1.0,
            poll_seconds=0.05,
            max_attempts=5,
        ),
    )
    app = create_app(settings, runner=ray_runner, start_dispatcher=False)
    with TestClient(app) as client:
        sweep_id = client.post("/v1/sweeps", json={**SPEC, "name": "restart"}).json()["id"]
        engine = make_engine(database_url)
        factory = make_session_factory(engine)
        first = Dispatcher(factory, settings, ray_runner, owner="first")
        first.step()  # claims and submits two batches (of whole groups), then "crashes"
        held = client.get(f"/v1/sweeps/{sweep_id}").json()["counts"]["running"]
        assert held > 0
        first.stop(release=False)

        second = Dispatcher(factory, settings, ray_runner, owner="second")
        second.run_until_idle(timeout=240)
        sweep = client.get(f"/v1/sweeps/{sweep_id}").json()
        assert sweep["status"] == "succeeded" and sweep["counts"]["succeeded"] == 12
        with session_scope(factory) as session:
            assert session.scalar(select(func.count()).select_from(Trial)) == 12
            owners = session.scalars(select(Trial.lease_owner)).all()
            assert set(owners) == {None}
            retried = session.scalar(
                select(func.count()).select_from(Trial).where(Trial.attempts >= 2)
            )
            assert retried == held  # exactly the trials the dead dispatcher held
        engine.dispose()


def test_cancel_stops_running_batches(database_url, ray_runner) -> None:
    """Cancelling mid-run: pending trials never start, running batches are cancelled and
    their late results are not written."""
    settings = Settings(
        database_url=database_url,
        dispatch=DispatchSettings(batch_size=1, max_inflight_batches=2, poll_seconds=0.05),
    )
    slow = {
        **SPEC,
        "name": "cancel-me",
        "params": {**SPEC["params"], "D": 400},
        "execution": {"lr": 0.01, "max_steps": 200000, "loss_threshold": 1e-12},
    }
    app = create_app(settings, runner=ray_runner, start_dispatcher=True)
    with TestClient(app) as client:
        sweep_id = client.post("/v1/sweeps", json=slow).json()["id"]
        deadline = time.monotonic() + 60
        while client.get(f"/v1/sweeps/{sweep_id}").json()["counts"]["running"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        cancelled = client.post(f"/v1/sweeps/{sweep_id}/cancel").json()
        assert cancelled["status"] == "cancelled"
        assert cancelled["counts"]["cancelled"] == 12 - cancelled["counts"]["succeeded"]
        dispatcher = app.state.dispatcher
        deadline = time.monotonic() + 30
        while dispatcher.inflight:  # the dispatcher notices and drops the Ray tasks
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(0.5)
        final = client.get(f"/v1/sweeps/{sweep_id}").json()
        assert final["counts"] == cancelled["counts"]
