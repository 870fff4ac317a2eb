"""Execution options that vary within a sweep: axes, zip entries, per-setting overrides.

Each trial carries its own execution (key, batch key, ``ClaimedTrial.execution``); a bad
override is a 422 at its field path and writes nothing.
"""

from __future__ import annotations

import pytest
import torch
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select

from api_schemas.spec import SweepSpec
from service.app import create_app
from service.dispatch.batching import group_into_batches
from service.errors import SpecRejected
from service.expand import expand_spec, spec_hash
from service.settings import LimitSettings, Settings
from service.store.models import Sweep, Trial
from workers.records import ClaimedTrial
from workers.workloads import WORKLOADS

BASE = {
    "name": "t",
    "workload": "dln_finetune",
    "params": {
        "D": 40,
        "alpha": 0.5,
        "rho_pt": 0.1,
        "rho_ft": 0.1,
        "omega": 0.5,
        "c_pt": 1e-2,
        "lambda_pt": 0.0,
        "gamma_ft": 0.0,
    },
    "execution": {"lr": 0.5, "max_steps": 200},
}


def spec(**overrides) -> SweepSpec:
    return SweepSpec.model_validate({**BASE, **overrides})


def test_override_applies_only_to_matching_settings_and_enters_the_keys() -> None:
    params = {k: v for k, v in BASE["params"].items() if k != "lambda_pt"}
    params["gamma_ft"] = 1e-6
    s = spec(
        axes={"lambda_pt": [-1.0, 0.0]},
        params=params,
        execution_overrides=[{"when": {"lambda_pt": -1}, "execution": {"lr": 0.05}}],
        seeds=2,
    )
    trials = expand_spec(s, LimitSettings())
    lrs = {(t.params["lambda_pt"], t.seed): t.execution["lr"] for t in trials}
    assert lrs == {(-1.0, 0): 0.05, (-1.0, 1): 0.05, (0.0, 0): 0.5, (0.0, 1): 0.5}
    assert all(t.execution["max_steps"] == 200 for t in trials)
    # Same params and seed but a different lr: a different trial and a different batch.
    plain = expand_spec(
        spec(axes={"lambda_pt": [-1.0, 0.0]}, params=params, seeds=2),
        LimitSettings(),
    )
    by_setting = {(t.params["lambda_pt"], t.seed): t for t in plain}
    for t in trials:
        other = by_setting[(t.params["lambda_pt"], t.seed)]
        same = t.execution == other.execution
        assert (t.key == other.key) is same and (t.batch_key == other.batch_key) is same
    claimed = [
        ClaimedTrial(i, 1, "dln_finetune", t.params, t.seed, t.execution, t.batch_key, t.group_key)
        for i, t in enumerate(trials)
    ]
    batches = group_into_batches(claimed, batch_size=100)
    assert all(len({t.execution["lr"] for t in b}) == 1 for b in batches) and len(batches) == 2


def test_execution_option_as_axis_and_zip_entry() -> None:
    axis = expand_spec(spec(execution={"max_steps": 100}, axes={"lr": [0.1, 0.2]}), LimitSettings())
    assert [t.execution["lr"] for t in axis] == [0.1, 0.2]
    assert len({t.key for t in axis}) == 2 and "lr" not in axis[0].params
    zipped = expand_spec(
        spec(
            execution={},
            params={k: v for k, v in BASE["params"].items() if k != "lambda_pt"},
            zip=[{"lambda_pt": [0.0, -0.99], "lr": [0.5, 0.05], "max_steps": [100, 400]}],
        ),
        LimitSettings(),
    )
    assert [
        (t.params["lambda_pt"], t.execution["lr"], t.execution["max_steps"]) for t in zipped
    ] == [
        (0.0, 0.5, 100),
        (-0.99, 0.05, 400),
    ]


def test_a_spec_without_overrides_hashes_and_keys_as_before() -> None:
    s = spec()
    assert "execution_overrides" not in s.model_dump(mode="json", exclude={"execution_overrides"})
    with_empty = spec(execution_overrides=[])
    assert spec_hash(s) == spec_hash(with_empty)
    assert spec_hash(s) != spec_hash(
        spec(execution_overrides=[{"when": {"omega": 0.5}, "execution": {"lr": 0.1}}])
    )


@pytest.mark.parametrize(
    "fields, loc",
    [
        (
            {"execution_overrides": [{"when": {"lambda_pt": 0.0}, "execution": {"lr": -1}}]},
            ["body", "execution_overrides", 0, "execution", "lr"],
        ),
        (
            {"execution_overrides": [{"when": {"lambda_pt": 0.0}, "execution": {"learning": 1}}]},
            ["body", "execution_overrides", 0, "execution", "learning"],
        ),
        (
            {"execution_overrides": [{"when": {"nope": 0.0}, "execution": {"lr": 0.1}}]},
            ["body", "execution_overrides", 0, "when", "nope"],
        ),
        ({"axes": {"lr": [0.1, -2.0]}, "execution": {}}, ["body", "axes", "lr"]),
        ({"axes": {"lr": [0.1, 0.2]}}, ["body", "axes", "lr"]),
        (
            {
                "execution_overrides": [
                    {"when": {"lambda_pt": 0.0}, "execution": {"max_steps": 10**9}}
                ]
            },
            ["body", "execution_overrides", 0, "execution", "max_steps"],
        ),
    ],
)
def test_bad_overrides_are_422_at_their_field_and_write_nothing(database_url, fields, loc) -> None:
    settings = Settings(database_url=database_url, limits=LimitSettings(max_trials=500))
    body = {**BASE, **fields}
    with TestClient(create_app(settings, start_dispatcher=False)) as client:
        response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 422, response.text
    payload = response.json()
    assert set(payload) == {"error", "detail"}
    assert [error["loc"] for error in payload["detail"]] == [loc], payload
    engine = create_engine(database_url)
    with engine.connect() as connection:
        for model in (Sweep, Trial):
            assert connection.execute(select(func.count()).select_from(model)).scalar_one() == 0
    engine.dispose()


def test_bad_axis_value_of_an_execution_option_is_rejected_in_expansion() -> None:
    with pytest.raises(SpecRejected) as caught:
        expand_spec(spec(execution={}, axes={"max_steps": [10, 0]}), LimitSettings())
    assert caught.value.detail[0]["loc"] == ["body", "axes", "max_steps"]


def test_overrides_change_the_numbers_per_trial() -> None:
    """Two claimed trials that differ only in lr run in their own batches (batch key) and
    give different results; each batch's result equals that lr run alone."""
    torch.set_num_threads(1)
    s = spec(
        params={k: v for k, v in BASE["params"].items() if k != "omega"},
        axes={"omega": [0.5]},
        zip=[{"lr": [0.5, 0.05]}],
        execution={"max_steps": 30},
    )
    planned = expand_spec(s, LimitSettings())
    claimed = [
        ClaimedTrial(i, 1, "dln_finetune", t.params, t.seed, t.execution, t.batch_key, t.group_key)
        for i, t in enumerate(planned)
    ]
    batches = group_into_batches(claimed, batch_size=10)
    assert len(batches) == 2
    workload = WORKLOADS["dln_finetune"]
    results = [workload.run(batch, {}).outcomes[0] for batch in batches]
    fast, slow = (outcome.metrics for outcome in results)
    assert fast["steps"] == slow["steps"] == 30
    assert fast["train_loss"] < slow["train_loss"]
    assert fast["gen_error_sim"] != slow["gen_error_sim"]
    with pytest.raises(ValueError, match="one execution"):
        workload.run(claimed, {})


@pytest.mark.parametrize("name", ["exp1", "exp1_full", "regimes", "regimes_full"])
def test_paper_specs_run_regime_one_at_its_stability_rule(name: str) -> None:
    """Regime I (λ_PT = −1) steps at half its instance's stability bound
    (workers/dln/step_size.py), every other setting at the spec's own lr."""
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parents[2] / "examples" / "paper" / f"{name}.yaml"
    raw = yaml.safe_load(path.read_text())
    trials = expand_spec(SweepSpec.model_validate(raw), LimitSettings(max_trials=10**6))
    rich = {
        t.execution.get("lr_stability_fraction") for t in trials if t.params["lambda_pt"] == -1.0
    }
    other = [t.execution for t in trials if t.params["lambda_pt"] != -1.0]
    assert rich == {0.5}
    assert all(
        "lr_stability_fraction" not in e and e["lr"] == raw["execution"]["lr"] for e in other
    )
