"""What counts as a cache hit: a trial that ran out of memory or into its time limit is
no permanent entry (a new submission runs it again), and the device is part of the key
of every workload whose numbers depend on it.  Real app, both backends."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api_schemas.spec import SweepSpec
from service.app import create_app
from service.expand import canonical_hash, expand_spec
from service.settings import LimitSettings, Settings
from service.store import transitions
from service.store.models import Trial
from service.store.session import session_scope
from workers.records import TrialOutcome
from workers.workloads import WORKLOADS

RELU = {
    "name": "relu",
    "workload": "relu_finetune",
    "params": {"D": 8, "width": 16, "n_pt": 64, "n_ft": 16, "n_test": 64, "steps": 5},
    "seeds": [0],
}


def finish_all(session_factory, stop_reason: str) -> None:
    """Run every pending trial through the real transitions, as a dispatcher would."""
    with session_scope(session_factory) as session:
        claimed = transitions.claim_pending(session, "test", 100, 60, postgres=False)
        outcomes = [
            (t, TrialOutcome.succeeded(stop_reason=stop_reason, gen_error_sim=0.5)) for t in claimed
        ]
        assert transitions.finish_running(session, "test", outcomes) == len(claimed) == 1


@pytest.mark.parametrize(("stop_reason", "cached"), [("oom", 0), ("time_limit", 0), ("steps", 1)])
def test_resource_stops_are_retried_not_cached(migrated_url, stop_reason: str, cached: int) -> None:
    app = create_app(Settings(database_url=migrated_url), start_dispatcher=False, migrate=False)
    with TestClient(app) as client:
        first = client.post("/v1/sweeps", json=RELU).json()
        finish_all(app.state.session_factory, stop_reason)
        assert client.get(f"/v1/sweeps/{first['id']}").json()["status"] == "succeeded"
        plan = client.post("/v1/sweeps/plan", json={**RELU, "name": "again"}).json()
        again = client.post("/v1/sweeps", json={**RELU, "name": "again"}).json()
        with session_scope(app.state.session_factory) as session:
            status = session.scalar(select(Trial.status))
    assert (plan["cached_count"], plan["new_count"]) == (cached, 1 - cached)
    assert again["cached_count"] == cached and again["trial_count"] == 1
    assert status == ("succeeded" if cached else "pending")
    assert again["status"] == ("succeeded" if cached else "pending")


def keys(workload: str, params: dict, device: str) -> str:
    spec = SweepSpec.model_validate(
        {"name": "k", "workload": workload, "params": params, "execution": {"device": device}}
    )
    [trial] = expand_spec(spec, LimitSettings())
    return trial.key


DLN = {"D": 20, "alpha": 0.5, "rho_pt": 0.1, "rho_ft": 0.1, "omega": 0.5}
DLN |= {"c_pt": 0.01, "lambda_pt": 0.0, "gamma_ft": 1.0}


@pytest.mark.parametrize(
    ("workload", "params"), [("relu_finetune", RELU["params"]), ("dln_finetune", DLN)]
)
def test_device_is_part_of_the_key_where_it_changes_the_numbers(workload, params) -> None:
    cpu, cuda, auto = (keys(workload, params, device) for device in ("cpu", "cuda", "auto"))
    assert len({cpu, cuda, auto}) == 3


def test_cpu_keys_are_unchanged_and_theory_ignores_the_device() -> None:
    spec = SweepSpec.model_validate({"name": "k", "workload": "dln_finetune", "params": DLN})
    [trial] = expand_spec(spec, LimitSettings())
    execution = {k: v for k, v in trial.execution.items() if k not in ("device", "num_gpus")}
    before = canonical_hash(
        {
            "workload": "dln_finetune",
            "version": WORKLOADS["dln_finetune"].evaluator_version,
            "params": trial.params,
            "seed": 0,
            "execution": execution,
        }
    )
    assert trial.key == before  # the cache of CPU trials stored before survives
    theory = {k: v for k, v in DLN.items() if k != "D"}
    assert keys("dln_theory", theory, "cpu") == keys("dln_theory", theory, "auto")
