"""The nonlinear workloads end to end on a real local Ray: HTTP submit → dispatcher →
one Ray task per trial → SQL store, with the pretraining checkpoint shared between
trials that differ only in fine-tuning knobs and progress reported while trials run."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.app import create_app
from service.settings import (
    CheckpointSettings,
    DataSettings,
    DispatchSettings,
    Settings,
)
from service.store.models import Trial
from service.store.session import session_scope
from tests.support import wait_done
from workers.nets.data import write_tiny_cifar100

pytestmark = pytest.mark.slow

SPECS = {
    "relu_finetune": {
        "params": {
            "D": 8,
            "width": 16,
            "n_pt": 64,
            "n_ft": 16,
            "n_test": 64,
            "steps": 30,
            "pt_steps": 30,
        },
        "axes": {"gamma_ft": [0.1, 1.0], "lambda_pt": [-0.5, 0.0]},
    },
    "transformer_modular_finetune": {
        "params": {
            "p": 7,
            "width": 8,
            "n_heads": 2,
            "n_ft": 10,
            "n_test": 20,
            "steps": 400,
            "pt_steps": 30,
        },
        "axes": {"gamma_ft": [0.1, 1.0]},
    },
    "resnet_cifar_finetune": {
        "params": {"width": 2, "blocks_per_stage": 1, "n_ft": 4, "steps": 3, "pt_steps": 3},
        "axes": {"pt_rescale": [0.5, 1.0]},
    },
}


@pytest.fixture(scope="module")
def client(ray_runner, tmp_path_factory):
    root = tmp_path_factory.mktemp("nets-e2e")
    write_tiny_cifar100(root / "cifar", per_class_train=2, per_class_test=1)
    settings = Settings(
        database_url=f"sqlite:///{root / 'sweeps.db'}",
        data=DataSettings(cifar100_dir=str(root / "cifar")),
        checkpoints=CheckpointSettings(dir=str(root / "checkpoints")),
        dispatch=DispatchSettings(poll_seconds=0.05, progress_poll_seconds=0.05),
    )
    with TestClient(create_app(settings, runner=ray_runner, start_dispatcher=True)) as client:
        yield client


@pytest.mark.parametrize("workload", list(SPECS))
def test_workload_runs_on_ray(client: TestClient, workload: str) -> None:
    spec = {"name": f"e2e-{workload}", "workload": workload, **SPECS[workload]}
    created = client.post("/v1/sweeps", json=spec)
    assert created.status_code == 201, created.text
    sweep = wait_done(client, created.json()["id"], timeout=120)
    assert sweep["status"] == "succeeded", sweep
    rows = client.get("/v1/results", params={"sweep_id": sweep["id"], "limit": 100}).json()["items"]
    assert len(rows) == sweep["trial_count"]
    for row in rows:
        assert row["gen_error_sim"] is not None and row["stop_reason"] == "steps"
        assert row["regime_empirical"] in {"I", "II", "III", "IV"}
        assert row["envelope"]["device"] == "cpu" and row["envelope"]["dtype"] == "float32"
    # One pretraining per PT config: relu has two (λ), the others one.
    pretrained = sum(row["metrics"]["pretrained_here"] for row in rows)
    assert pretrained == len({row["metrics"]["pretrain_key"] for row in rows})
    assert pretrained == (2 if workload == "relu_finetune" else 1)


def test_progress_is_stored_while_trials_run(client: TestClient) -> None:
    with session_scope(client.app.state.session_factory) as session:
        reports = session.scalars(
            select(Trial.progress).where(Trial.workload == "transformer_modular_finetune")
        ).all()
    assert any(report and report.get("phase") for report in reports), reports
