"""The nonlinear workloads through the real app (SQLite and PostgreSQL): submit-time
422s, results that share the init-parameter columns with the diagonal network, progress
of running trials, and the dispatcher's hard time limit.  Batches run in-process
(``InlineRunner``); tests/test_nets_e2e.py runs the same on a real local Ray."""

from __future__ import annotations

import time
from concurrent.futures import Future

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.app import create_app
from service.dispatch import Dispatcher
from service.runners import InlineRunner
from service.settings import CheckpointSettings, DataSettings, DispatchSettings, Settings
from service.store.models import Trial
from service.store.session import session_scope
from workers.nets.data import write_tiny_cifar100

TRAIN = {"steps": 20, "pt_steps": 20}
RELU = {
    "name": "relu",
    "workload": "relu_finetune",
    "params": {"D": 8, "width": 16, "n_pt": 64, "n_ft": 16, "n_test": 64, **TRAIN},
    "axes": {"c_pt": [0.5, 2.0], "gamma_ft": [0.1, 1.0]},
}
MODULAR = {
    "name": "modular",
    "workload": "transformer_modular_finetune",
    "params": {"p": 7, "width": 8, "n_heads": 2, "n_ft": 10, "n_test": 20, **TRAIN},
    "axes": {"c_pt": [0.5, 2.0]},
}
CIFAR = {
    "name": "cifar",
    "workload": "resnet_cifar_finetune",
    "params": {"width": 2, "blocks_per_stage": 1, "n_ft": 4, "steps": 3, "pt_steps": 3},
    "axes": {"pt_rescale": [0.5, 1.0]},
}


@pytest.fixture
def cifar_dir(tmp_path) -> str:
    write_tiny_cifar100(tmp_path / "cifar", per_class_train=2, per_class_test=1)
    return str(tmp_path / "cifar")


def make_settings(url: str, tmp_path, cifar: str | None = None, **dispatch) -> Settings:
    return Settings(
        database_url=url,
        data=DataSettings(cifar100_dir=cifar),
        checkpoints=CheckpointSettings(dir=str(tmp_path / "checkpoints")),
        dispatch=DispatchSettings(**dispatch),
    )


@pytest.fixture
def client_for(migrated_url, tmp_path, cifar_dir):
    clients = []

    def make(**dispatch) -> TestClient:
        settings = make_settings(migrated_url, tmp_path, cifar_dir, **dispatch)
        client = TestClient(create_app(settings, start_dispatcher=False, migrate=False))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def rejected(response) -> list[dict]:
    assert response.status_code == 422, response.text
    return response.json()["detail"]


def with_params(spec: dict, **params) -> dict:
    return {**spec, "params": {**spec["params"], **params}}


def test_impossible_architectures_are_422_with_the_field(app_client) -> None:
    detail = rejected(app_client.post("/v1/sweeps", json=with_params(RELU, width=0)))
    assert detail[0]["loc"] == ["body", "params", "width"]
    detail = rejected(app_client.post("/v1/sweeps", json=with_params(MODULAR, p=1)))
    assert detail[0]["loc"] == ["body", "params", "p"] and "greater than or equal to 2" in str(
        detail
    )
    detail = rejected(app_client.post("/v1/sweeps/plan", json=with_params(MODULAR, n_heads=3)))
    assert "divisible by n_heads" in detail[0]["msg"]
    bad_axis = {**RELU, "axes": {"depth": [1, 0]}}
    assert rejected(app_client.post("/v1/sweeps", json=bad_axis))[0]["loc"] == [
        "body",
        "axes",
        "depth",
    ]
    detail = rejected(app_client.post("/v1/sweeps", json={**RELU, "execution": {"device": "tpu"}}))
    assert "cpu" in str(detail) and "cuda" in str(detail)


def test_missing_dataset_is_422_at_submit_not_a_worker_crash(app_client, tmp_path) -> None:
    detail = rejected(app_client.post("/v1/sweeps", json=CIFAR))
    assert detail[0]["type"] == "dataset_missing"
    assert "SWEEPS_DATA__CIFAR100_DIR" in detail[0]["msg"]
    assert app_client.get("/v1/sweeps").json()["total"] == 0  # nothing written


def test_cuda_without_gpus_in_the_cluster_is_422(app_client, monkeypatch) -> None:
    spec = {**RELU, "execution": {"device": "cuda"}}
    monkeypatch.setattr("service.runners.connected_cluster_gpus", lambda: 0.0)
    detail = rejected(app_client.post("/v1/sweeps", json=spec))
    assert detail[0]["loc"] == ["body", "execution", "device"] and "no GPU" in detail[0]["msg"]
    monkeypatch.setattr("service.runners.connected_cluster_gpus", lambda: 1.0)
    detail = rejected(
        app_client.post(
            "/v1/sweeps/plan", json={**spec, "execution": {"device": "cuda", "num_gpus": 2}}
        )
    )
    assert detail[0]["loc"] == ["body", "execution", "num_gpus"]
    assert app_client.post("/v1/sweeps/plan", json=spec).status_code == 200


def test_results_share_the_init_columns_across_workloads(client_for, migrated_url) -> None:
    client = client_for()
    ids = {}
    for spec in (RELU, MODULAR, CIFAR):
        response = client.post("/v1/sweeps", json=spec)
        assert response.status_code == 201, response.text
        ids[spec["workload"]] = response.json()["id"]
    plan = client.post("/v1/sweeps/plan", json={**RELU, "name": "again"}).json()
    assert plan["cached_count"] == 0 and plan["batch_count"] == 4  # one trial per task
    app = client.app
    Dispatcher(app.state.session_factory, app.state.settings, InlineRunner()).run_until_idle()
    for workload, sweep_id in ids.items():
        sweep = client.get(f"/v1/sweeps/{sweep_id}").json()
        assert sweep["status"] == "succeeded", (workload, sweep)

    rows = client.get("/v1/results", params={"c_pt_gt": 1.0, "limit": 100}).json()["items"]
    assert {r["workload"] for r in rows} == {"relu_finetune", "transformer_modular_finetune"}
    assert all(r["params"]["c_pt"] > 1.0 for r in rows) and len(rows) == 3
    for row in client.get("/v1/results", params={"limit": 100}).json()["items"]:
        assert row["gen_error_sim"] == row["metrics"]["test_loss"]
        assert row["regime_empirical"] in {"I", "II", "III", "IV"}
        assert row["stop_reason"] == "steps" and row["diverged"] is False
        assert row["gen_error_asymptotic"] is None and row["envelope"]["torch"]
    summary = client.get(
        "/v1/results/summary", params={"group_by": "workload,c_pt", "gamma_ft_ge": 1.0}
    ).json()
    groups = {(r["group"]["workload"], r["group"]["c_pt"]): r["count"] for r in summary["rows"]}
    assert groups[("relu_finetune", 2.0)] == 1 and groups[("resnet_cifar_finetune", 1.0)] == 2
    # Pretraining is shared: per PT config exactly one trial pretrained.
    cifar = client.get(
        "/v1/results", params={"workload": "resnet_cifar_finetune", "limit": 10}
    ).json()["items"]
    assert sorted(r["metrics"]["pretrained_here"] for r in cifar) == [False, True]
    assert len({r["metrics"]["pretrain_key"] for r in cifar}) == 1


class HeldRunner(InlineRunner):
    """Runs batches in-process at once but reports them unfinished until released, so
    the dispatcher sees them running (as it would a long Ray task)."""

    def __init__(self) -> None:
        super().__init__()
        self.released = False
        self.cancelled: list[Future] = []

    def wait(self, handles, timeout):
        return super().wait(handles, timeout) if self.released else []

    def cancel(self, handle) -> None:
        self.cancelled.append(handle)


def test_progress_of_running_trials_reaches_the_sweep(client_for) -> None:
    client = client_for(progress_poll_seconds=0.01)
    sweep_id = client.post("/v1/sweeps", json={**MODULAR, "axes": {}}).json()["id"]
    runner = HeldRunner()
    app = client.app
    dispatcher = Dispatcher(app.state.session_factory, app.state.settings, runner)
    dispatcher.step()
    time.sleep(0.02)
    dispatcher.step()
    sweep = client.get(f"/v1/sweeps/{sweep_id}").json()
    assert sweep["counts"]["running"] == 1
    (running,) = sweep["running"]
    assert running["progress"]["phase"] == "done" and running["progress"]["started_at"]
    assert running["progress"]["loss"] > 0
    runner.released = True
    dispatcher.run_until_idle()
    sweep = client.get(f"/v1/sweeps/{sweep_id}").json()
    assert sweep["status"] == "succeeded" and sweep["running"] == []


def test_batches_past_the_hard_time_limit_are_killed(client_for) -> None:
    client = client_for(progress_poll_seconds=0.01, hard_limit_grace_seconds=0.0)
    spec = {**MODULAR, "axes": {}, "execution": {"time_limit_s": 0.05}}
    sweep_id = client.post("/v1/sweeps", json=spec).json()["id"]
    runner = HeldRunner()
    app = client.app
    dispatcher = Dispatcher(app.state.session_factory, app.state.settings, runner)
    # The first round submits the batch; its progress check waits for the next round
    # (the trial's compute alone can outlast 1.5 × 0.05 s).
    dispatcher._last["progress"] = time.monotonic() + 3600
    dispatcher.step()
    dispatcher._last["progress"] = 0.0
    board = runner.board
    (trial_id,) = list(board._reports)
    board.report(trial_id, {**board._reports[trial_id], "started_at": time.time() - 10})
    time.sleep(0.02)
    dispatcher.step()
    assert runner.cancelled and not dispatcher.inflight
    sweep = client.get(f"/v1/sweeps/{sweep_id}").json()
    assert sweep["status"] == "failed"
    with session_scope(app.state.session_factory) as session:
        (error,) = session.scalars(select(Trial.error)).all()
    assert "hard time limit exceeded" in error
