"""The API's edge, with exact expectations: every error in the one shape and in the
OpenAPI document, 405 with Allow, body caps, numeric bounds, the sweep listing paged and
counted in SQL, the environment setting, and /healthz asking Ray."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import event

from service.app import create_app
from service.settings import LimitSettings, Settings
from service.store import sweeps as sweep_store
from tests.service.factories import small_finetune_spec

SPEC = small_finetune_spec(name="edge")


@pytest.fixture
def client(migrated_url):
    settings = Settings(
        database_url=migrated_url, limits=LimitSettings(max_body_bytes=64 * 1024, page_limit=77)
    )
    app = create_app(settings, start_dispatcher=False, migrate=False)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_router_and_parser_errors_have_the_one_shape(client) -> None:
    missing = client.get("/nowhere")
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": "NotFound", "detail": "Not Found"},
    )
    wrong = client.delete("/v1/sweeps")
    assert wrong.status_code == 405
    assert wrong.json() == {"error": "MethodNotAllowed", "detail": "Method Not Allowed"}
    assert wrong.headers["allow"] == "GET, HEAD, POST"
    assert client.put("/v1/sweeps/abc").headers["allow"] == "GET, HEAD"
    unreadable = client.post(
        "/v1/sweeps", content=b'{"name": "\xff"}', headers={"content-type": "application/json"}
    )
    assert (unreadable.status_code, unreadable.json()) == (
        400,
        {"error": "BadRequest", "detail": "There was an error parsing the body"},
    )


def test_unexpected_errors_are_500_in_the_one_shape(client, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    # The first store call of GET /v1/sweeps/{id} (the owner look-up of the read check).
    monkeypatch.setattr(sweep_store, "sweep_owner", broken)
    response = client.get("/v1/sweeps/abc")
    assert (response.status_code, response.json()) == (
        500,
        {"error": "InternalError", "detail": "unexpected RuntimeError; see the server log"},
    )


def test_body_cap_from_content_length_and_while_streaming(client) -> None:
    big = json.dumps({**SPEC, "axes": {"lambda_pt": [0.0] * 40_000}}).encode()
    assert len(big) > 64 * 1024
    declared = client.post("/v1/sweeps", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413
    assert declared.json() == {
        "error": "ContentTooLarge",
        "detail": "request body exceeds 65536 bytes (SWEEPS_LIMITS__MAX_BODY_BYTES)",
    }

    def chunked():  # no Content-Length: the cap is counted while the body is read
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    streamed = client.post(
        "/v1/sweeps", content=chunked(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413 and streamed.json()["error"] == "ContentTooLarge"
    assert client.get("/v1/sweeps").json()["total"] == 0


def test_list_caps_are_checked_while_validating(migrated_url) -> None:
    app = create_app(Settings(database_url=migrated_url), start_dispatcher=False, migrate=False)
    with TestClient(app) as client:
        axis = client.post("/v1/sweeps", json={**SPEC, "axes": {"lambda_pt": [0.0] * 100_001}})
        seeds = client.post("/v1/sweeps", json={**SPEC, "seeds": list(range(10_001))})
    assert axis.status_code == 422 and axis.json()["detail"] == [
        {
            "loc": ["body", "axes", "lambda_pt"],
            "msg": "an axis holds at most 100000 values, got 100001",
            "type": "value_error",
        }
    ]
    assert seeds.status_code == 422
    assert seeds.json()["detail"][0]["loc"] == ["body", "seeds"]


def test_empty_axis_is_422_not_an_empty_succeeded_sweep(client) -> None:
    response = client.post("/v1/sweeps", json={**SPEC, "axes": {"lambda_pt": []}})
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "loc": ["body", "axes", "lambda_pt"],
            "msg": "an axis needs at least one value",
            "type": "value_error",
        }
    ]
    assert client.get("/v1/sweeps").json()["total"] == 0


@pytest.mark.parametrize(
    ("query", "name"),
    [("offset=2218292558218048000", "offset"), ("limit=0", "limit"), ("status=done", "status")],
)
def test_sweep_listing_parameters_are_bounded(client, query: str, name: str) -> None:
    response = client.get(f"/v1/sweeps?{query}")
    assert response.status_code == 422 and response.json()["error"] == "ValidationError"
    assert response.json()["detail"][0]["loc"] == ["query", name]


def test_sweep_listing_pages_and_counts_in_sql(client) -> None:
    specs = [{**SPEC, "name": f"s{i}", "seeds": [100 + i]} for i in range(5)]  # own trials
    ids = [client.post("/v1/sweeps", json=spec).json()["id"] for spec in specs]
    client.post(f"/v1/sweeps/{ids[1]}/cancel")
    statements: list[str] = []
    engine = client.app.state.engine
    listen = lambda conn, cursor, statement, *rest: statements.append(statement)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    try:
        first = client.get("/v1/sweeps?limit=2").json()
        second = client.get(f"/v1/sweeps?limit=2&cursor={first['next_cursor']}").json()
        third = client.get(f"/v1/sweeps?limit=2&cursor={second['next_cursor']}").json()
        cancelled = client.get("/v1/sweeps?status=cancelled").json()
        pending = client.get("/v1/sweeps?status=pending&limit=1").json()
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    walked = [s["id"] for page in (first, second, third) for s in page["items"]]
    assert walked == ids[::-1] and third["next_cursor"] is None
    assert first["total"] == second["total"] == 5
    assert [s["id"] for s in cancelled["items"]] == [ids[1]] and cancelled["total"] == 1
    assert pending["total"] == 4 and len(pending["items"]) == 1
    listings = [s for s in statements if "FROM sweeps" in s and "count(" not in s.lower()]
    assert listings and all("LIMIT" in s for s in listings), listings
    bad = client.get("/v1/sweeps?cursor=eyJ4IjoxfQ")
    assert bad.status_code == 400 and bad.json()["error"] == "BadCursor"


def test_openapi_documents_errors_bounds_and_links(client) -> None:
    document = client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status in ("422", "500", "503"):
                content = operation["responses"][status]["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, path
            if method == "post" and path in ("/v1/sweeps", "/v1/sweeps/plan"):
                assert {"400", "413"} <= set(operation["responses"]), path
    created = document["paths"]["/v1/sweeps"]["post"]["responses"]["201"]["links"]
    assert created["GetSweep"] == {
        "operationId": "get_sweep",
        "parameters": {"sweep_id": "$response.body#/id"},
        "description": "status, counts and progress of this sweep",
    }
    assert {"ListSweepTrials", "ListResults", "CancelSweep", "GetReport"} <= set(created)
    listing = {p["name"]: p for p in document["paths"]["/v1/results"]["get"]["parameters"]}
    assert listing["limit"]["schema"]["maximum"] == 77
    assert listing["D_eq"]["schema"] == {
        "type": "integer",
        "minimum": -(2**31),
        "maximum": 2**31 - 1,
    }
    assert listing["regime_theory"]["schema"]["items"]["pattern"] == (
        "^(III|II|IV|I)(,(III|II|IV|I))*$"
    )
    sweeps = {p["name"]: p for p in document["paths"]["/v1/sweeps"]["get"]["parameters"]}
    assert sweeps["offset"]["schema"]["maximum"] == sweep_store.MAX_OFFSET
    spec = document["components"]["schemas"]["SweepSpec"]["properties"]
    assert spec["seeds"]["anyOf"][1]["maxItems"] == 10_000
    assert spec["params"]["propertyNames"] == {"pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"}


@pytest.mark.parametrize("value", ["prod", "Production", "staging"])
def test_unknown_environment_refuses_to_start(value: str, monkeypatch) -> None:
    monkeypatch.setenv("SWEEPS_ENVIRONMENT", value)
    with pytest.raises(ValidationError, match="development"):
        Settings()
    monkeypatch.setenv("SWEEPS_ENVIRONMENT", "test")
    assert Settings().environment == "test"


class SilentRay:
    def describe(self) -> str:
        return "cluster ray://nowhere:10001"

    def health(self, timeout: float) -> tuple[bool, str]:
        return False, f"error: cluster ray://nowhere:10001 did not answer within {timeout:g} s"


def test_healthz_reports_a_ray_that_does_not_answer(migrated_url) -> None:
    settings = Settings(database_url=migrated_url)
    app = create_app(settings, runner=SilentRay(), migrate=False, start_dispatcher=False)
    with TestClient(app) as client:
        body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert body["ray"] == "error: cluster ray://nowhere:10001 did not answer within 2 s"
