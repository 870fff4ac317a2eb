"""Sweep endpoints over httpx against the real app and a real database (both backends)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select

from service.app import create_app
from service.settings import LimitSettings, Settings
from service.store.models import Sweep, SweepTrial, Trial
from tests.service.factories import small_finetune_spec

SPEC = small_finetune_spec(name="api", tags=["unit"])


@pytest.fixture
def client(database_url):
    settings = Settings(database_url=database_url, limits=LimitSettings(max_trials=500))
    with TestClient(create_app(settings, start_dispatcher=False)) as test_client:
        test_client.database_url = database_url
        yield test_client


def row_counts(url: str) -> tuple[int, int, int]:
    engine = create_engine(url)
    with engine.connect() as connection:
        counts = tuple(
            connection.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (Sweep, Trial, SweepTrial)
        )
    engine.dispose()
    return counts


def test_create_get_list_trials(client) -> None:
    created = client.post("/v1/sweeps", json=SPEC, headers={"X-Sweeps-Submitter": "grace"})
    assert created.status_code == 201
    body = created.json()
    assert body["trial_count"] == 6 and body["status"] == "pending"
    assert body["submitter"] == "grace" and body["counts"]["pending"] == 6

    one = client.get(f"/v1/sweeps/{body['id']}").json()
    assert one["spec"]["name"] == "api" and one["progress"] == 0.0

    listed = client.get("/v1/sweeps", params={"tag": "unit", "status": "pending"}).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == body["id"]
    assert client.get("/v1/sweeps", params={"tag": "other"}).json()["total"] == 0
    assert client.get("/v1/sweeps", params={"name": "api"}).json()["total"] == 1

    first = client.get(f"/v1/sweeps/{body['id']}/trials", params={"limit": 4}).json()
    second = client.get(
        f"/v1/sweeps/{body['id']}/trials", params={"limit": 4, "cursor": first["next_cursor"]}
    ).json()
    ids = [t["id"] for t in first["items"] + second["items"]]
    assert len(ids) == 6 == len(set(ids)) and second["next_cursor"] is None


def test_plan_writes_nothing(client) -> None:
    plan = client.post("/v1/sweeps/plan", json=SPEC).json()
    assert plan["trial_count"] == 6 and plan["new_count"] == 6 and plan["cached_count"] == 0
    assert plan["batch_count"] == 1 and plan["estimated_cost_s"] > 0
    assert row_counts(client.database_url) == (0, 0, 0)


def test_idempotency(client) -> None:
    first = client.post("/v1/sweeps", json=SPEC, headers={"Idempotency-Key": "abc"})
    replay = client.post("/v1/sweeps", json=SPEC, headers={"Idempotency-Key": "abc"})
    assert first.status_code == 201 and replay.status_code == 200
    assert replay.json()["id"] == first.json()["id"]
    conflict = client.post(
        "/v1/sweeps", json={**SPEC, "name": "other"}, headers={"Idempotency-Key": "abc"}
    )
    assert conflict.status_code == 409 and conflict.json()["error"] == "IdempotencyConflict"
    assert row_counts(client.database_url) == (1, 6, 6)


def test_an_empty_idempotency_key_is_refused_and_changes_nothing(client) -> None:
    # Found by the fuzzer: an empty key skipped the replay lookup but was stored, so the
    # second submit hit the unique constraint (500). Empty is not a key: 422, nothing written.
    for _ in range(2):
        response = client.post("/v1/sweeps", json=SPEC, headers={"Idempotency-Key": ""})
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["error"] == "ValidationError" and "idempotency-key" in str(body).lower()
    assert row_counts(client.database_url) == (0, 0, 0)


def test_cancel(client) -> None:
    sweep_id = client.post("/v1/sweeps", json=SPEC).json()["id"]
    cancelled = client.post(f"/v1/sweeps/{sweep_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/v1/sweeps/{sweep_id}/cancel")
    assert again.status_code == 409 and again.json()["error"] == "SweepAlreadyFinished"


@pytest.mark.parametrize(
    "payload, loc, msg_fragment",
    [
        (b'{"name": "x", ', ["body", 14], "JSON decode error"),
        (json.dumps({**SPEC, "surprise": 1}).encode(), ["body", "surprise"], "Extra inputs"),
        (
            json.dumps({**SPEC, "axes": {"lambda_pt": [0.0, 1.5]}}).encode(),
            ["body", "axes", "lambda_pt"],
            "less than or equal to 1",
        ),
        (
            json.dumps(
                {**SPEC, "params": {**SPEC["params"], "omega": 1.0, "rho_ft": 0.5}}
            ).encode(),
            ["body", "params", "omega"],
            "omega*rho_ft <= rho_pt",
        ),
        (
            json.dumps(
                {
                    **SPEC,
                    "axes": {
                        "lambda_pt": {"kind": "linspace", "start": -0.5, "stop": 0.5, "num": 300}
                    },
                }
            ).encode(),
            ["body", "axes", "lambda_pt"],
            "limit is 500",
        ),
        (
            json.dumps(
                {
                    **SPEC,
                    "params": {**SPEC["params"], "lambda_pt": -1.0, "gamma_ft": 0.0},
                    "axes": {},
                }
            ).encode(),
            ["body", "params", "lambda_pt"],
            "stationary point",
        ),
        (json.dumps({**SPEC, "workload": "nope"}).encode(), ["body", "workload"], "dln_finetune"),
        (
            json.dumps({**SPEC, "axes": {"lambda_pt": []}}).encode(),
            ["body", "axes", "lambda_pt"],
            "at least one value",
        ),
        (json.dumps({**SPEC, "seeds": [3, 3]}).encode(), ["body", "seeds", 1], "distinct"),
        (
            json.dumps({**SPEC, "zip": [{"alpha": [0.1, 0.2], "D": [10]}]}).encode(),
            ["body", "zip", 0, "D"],
            "equally long",
        ),
        (
            json.dumps({**SPEC, "execution": {"max_steps": 10**7}}).encode(),
            ["body", "execution", "max_steps"],
            "SWEEPS_LIMITS__MAX_STEPS",
        ),
    ],
)
def test_bad_input_is_rejected_at_its_field_and_writes_nothing(
    client, payload: bytes, loc: list, msg_fragment: str
) -> None:
    response = client.post(
        "/v1/sweeps", content=payload, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert set(body) == {"error", "detail"}
    [error] = body["detail"]
    assert error["loc"] == loc and msg_fragment in error["msg"], error
    assert row_counts(client.database_url) == (0, 0, 0)


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_numbers_are_rejected(client, token: bytes) -> None:
    raw = json.dumps({**SPEC, "params": {**SPEC["params"], "c_pt": 12345.0}}).encode()
    raw = raw.replace(b"12345.0", token)
    response = client.post("/v1/sweeps", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert "c_pt" in response.text
    assert row_counts(client.database_url) == (0, 0, 0)


def test_unknown_ids_and_bad_cursor(client) -> None:
    missing = client.get("/v1/sweeps/does-not-exist")
    assert missing.status_code == 404 and missing.json()["error"] == "SweepNotFound"
    assert client.post("/v1/sweeps/does-not-exist/cancel").status_code == 404
    sweep_id = client.post("/v1/sweeps", json=SPEC).json()["id"]
    trials = f"/v1/sweeps/{sweep_id}/trials"
    bad = client.get(trials, params={"cursor": "zzz"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "cursor"]
    huge = client.get(trials, params={"cursor": "9" * 19})  # digits, but past int64
    assert huge.status_code == 400 and huge.json()["error"] == "BadCursor"
    assert client.get(trials, params={"cursor": "9" * 20}).status_code == 422
    assert client.get("/v1/sweeps", params={"status": "weird"}).status_code == 422


def test_openapi_has_clean_operation_ids(client) -> None:
    schema = client.get("/openapi.json").json()
    ids = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert {
        "create_sweep",
        "plan_sweep",
        "list_sweeps",
        "get_sweep",
        "cancel_sweep",
        "list_sweep_trials",
        "health",
    } <= ids
    assert client.get("/healthz").json()["status"] == "ok"
