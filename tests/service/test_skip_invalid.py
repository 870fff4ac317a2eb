"""``on_invalid: skip``: infeasible settings are left out with their reason instead of
rejecting the whole sweep (real app over httpx, both backends, migration 0011's column).

The grid is the paper's λ_PT × γ_FT values, 6 × 4 = 24 settings, of which one
(λ_PT = −1 with γ_FT = 0) is the degenerate stationary point the workload refuses.
"""

from __future__ import annotations

from sqlalchemy import create_engine, select

from api_schemas.wire import SweepPlan, SweepRead
from service.cli import render
from service.store.models import Sweep, Trial
from tests.service.factories import small_finetune_spec
from tests.service.test_sweeps_api import client, row_counts  # noqa: F401 - fixture

LAMBDAS = [-1.0, -0.99, -0.5, 0.0, 0.5, 0.99]
GAMMAS = [0.0, 1.0e-6, 1.0, 10.0]
PAPER_24 = small_finetune_spec(
    name="paper-24",
    params={k: v for k, v in small_finetune_spec()["params"].items() if k != "gamma_ft"},
    axes={"lambda_pt": LAMBDAS, "gamma_ft": GAMMAS},
    seeds=2,
)
SKIP = {**PAPER_24, "on_invalid": "skip"}


def _assert_degenerate_listed(skipped: list[dict]) -> None:
    assert len(skipped) == 1, skipped
    item = skipped[0]
    assert (item["params"]["lambda_pt"], item["params"]["gamma_ft"]) == (-1.0, 0.0)
    assert "stationary point" in item["reason"] and "in the trial with" not in item["reason"]
    assert item["loc"] == ["body", "axes", "lambda_pt"]
    assert item["type"] == "value_error" and item["trials"] == 2


def test_skip_submits_the_paper_grid_and_lists_the_degenerate_setting(client) -> None:  # noqa: F811
    plan = client.post("/v1/sweeps/plan", json=SKIP)
    assert plan.status_code == 200, plan.text
    assert plan.json()["trial_count"] == 23 * 2
    _assert_degenerate_listed(plan.json()["skipped"])
    assert row_counts(client.database_url) == (0, 0, 0)  # a plan writes nothing

    created = client.post("/v1/sweeps", json=SKIP, headers={"Idempotency-Key": "paper-24"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["trial_count"] == 23 * 2
    _assert_degenerate_listed(body["skipped"])
    status = client.get(f"/v1/sweeps/{body['id']}").json()
    _assert_degenerate_listed(status["skipped"])
    assert status["spec"]["on_invalid"] == "skip"
    # The same key and spec replay the sweep, skipped settings and all.
    again = client.post("/v1/sweeps", json=SKIP, headers={"Idempotency-Key": "paper-24"})
    assert again.json()["id"] == body["id"]
    _assert_degenerate_listed(again.json()["skipped"])

    engine = create_engine(client.database_url)
    with engine.connect() as connection:
        stored = connection.execute(select(Sweep.skipped_settings)).scalar_one()
        pairs = connection.execute(select(Trial.lambda_pt, Trial.gamma_ft)).all()
    engine.dispose()
    _assert_degenerate_listed(stored)
    assert len(pairs) == 46 and (-1.0, 0.0) not in pairs


def test_reject_stays_the_default_and_writes_nothing(client) -> None:  # noqa: F811
    for spec in (PAPER_24, {**PAPER_24, "on_invalid": "reject"}):
        for path in ("/v1/sweeps", "/v1/sweeps/plan"):
            response = client.post(path, json=spec)
            assert response.status_code == 422, response.text
            error = response.json()
            assert error["error"] == "SpecRejected"
            assert error["detail"][0]["loc"] == ["body", "axes", "lambda_pt"]
            assert "stationary point" in error["detail"][0]["msg"]
    assert row_counts(client.database_url) == (0, 0, 0)
    # A sweep with nothing refused lists nothing.
    fine = client.post("/v1/sweeps", json={**SKIP, "axes": {"lambda_pt": [0.0], "gamma_ft": [1.0]}})
    assert fine.status_code == 201 and fine.json()["skipped"] == []


def test_a_sweep_whose_every_setting_is_refused_is_still_a_422(client) -> None:  # noqa: F811
    spec = {**SKIP, "axes": {"lambda_pt": [-1.0], "gamma_ft": [0.0]}}
    for path in ("/v1/sweeps", "/v1/sweeps/plan"):
        response = client.post(path, json=spec)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", "axes", "lambda_pt"]
    assert row_counts(client.database_url) == (0, 0, 0)


def test_skip_with_refine_is_refused_at_its_field(client) -> None:  # noqa: F811
    spec = {
        "name": "refine-skip",
        "workload": "dln_theory",
        "params": {"rho_pt": 0.1, "rho_ft": 0.1, "omega": 1.0, "c_pt": 1e-3, "alpha": 0.2},
        "refine": {
            "box": {
                "lambda_pt": {"low": -0.99, "high": 0.99},
                "gamma_ft": {"low": 0.01, "high": 10.0, "log": True},
            },
            "initial": 3,
            "max_depth": 1,
            "budget": 50,
        },
        "on_invalid": "skip",
    }
    response = client.post("/v1/sweeps", json=spec)
    assert response.status_code == 422, response.text
    assert ["body", "on_invalid"] in [e["loc"] for e in response.json()["detail"]]
    assert row_counts(client.database_url) == (0, 0, 0)


def test_the_cli_shows_skipped_settings(client) -> None:  # noqa: F811
    plan = SweepPlan.model_validate(client.post("/v1/sweeps/plan", json=SKIP).json())
    text = render.plan_text(plan)
    assert "skipped 1 settings (on_invalid: skip):" in text
    assert "axes.lambda_pt:" in text and "stationary point" in text and "(2 trials)" in text
    sweep = SweepRead.model_validate(client.post("/v1/sweeps", json=SKIP).json())
    detail = render.sweep_detail(sweep)
    lines = detail.splitlines()
    assert any(line.startswith("skipped") and "gamma_ft=0.0" in line for line in lines)
    assert "1 setting skipped" in render.submitted_line(sweep)
