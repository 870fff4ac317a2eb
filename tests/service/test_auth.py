"""Identity, ownership, idempotency per owner, quotas and the audit log, through the
real app with auth on (SQLite and PostgreSQL).  No dispatcher runs here: trials stay
pending, which is what quotas and cancels are about."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from service.app import create_app
from service.auth.bootstrap import create_user_with_key
from service.settings import AuthSettings, Settings
from service.store.models import ApiKey, Sweep, Trial
from service.store.session import make_engine, make_session_factory, session_scope
from tests.service.factories import small_finetune_spec

SPEC = small_finetune_spec()


def settings_for(url: str, **auth) -> Settings:
    return Settings(database_url=url, auth=AuthSettings(enabled=True, **auth))


@pytest.fixture
def admin_key(migrated_url: str) -> str:
    return create_user_with_key(settings_for(migrated_url), "root", admin=True).key


def make_client(url: str, **auth) -> TestClient:
    return TestClient(create_app(settings_for(url, **auth), start_dispatcher=False, migrate=False))


@pytest.fixture
def api(migrated_url: str, admin_key: str):
    with make_client(migrated_url) as client:
        client.headers["Authorization"] = f"Bearer {admin_key}"
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_user(api: TestClient, name: str, scopes=("read", "submit"), **body) -> str:  # noqa: ANN001
    assert api.post("/v1/users", json={"name": name, **body}).status_code == 201
    created = api.post("/v1/keys", json={"user": name, "scopes": list(scopes)})
    assert created.status_code == 201, created.text
    return created.json()["key"]


def counts(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as session:
        found = (
            session.scalar(select(func.count()).select_from(Sweep)),
            session.scalar(select(func.count()).select_from(Trial)),
        )
    engine.dispose()
    return found


def audit_actions(api: TestClient) -> list[str]:
    return [
        entry["action"] for entry in api.get("/v1/audit", params={"limit": 1000}).json()["items"]
    ]


def test_keys_have_a_visible_prefix_and_only_their_hash_is_stored(api, migrated_url) -> None:
    key = new_user(api, "ada")
    prefix, random_part = key[:12], key[13:]  # fts_<8>_<secret>; the secret may hold "_"
    assert prefix.startswith("fts_") and len(random_part) >= 30
    listed = api.get("/v1/keys", params={"user": "ada"}).json()
    assert [k["prefix"] for k in listed] == [prefix] and "key" not in listed[0]
    engine = make_engine(migrated_url)
    with session_scope(make_session_factory(engine)) as session:
        stored = session.scalars(select(ApiKey)).all()
        assert all(key not in (row.secret_hash, row.prefix) for row in stored)
    engine.dispose()
    assert api.get("/v1/me", headers=bearer(key)).json()["name"] == "ada"
    assert api.get("/v1/keys", params={"user": "ada"}).json()[0]["last_used_at"] is not None


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer not-a-key", "Bearer fts_abcdefgh_" + "x" * 40, "Basic dXNlcjpw"],
    ids=["missing", "empty", "malformed", "unknown", "other-scheme"],
)
def test_no_valid_key_is_401(api, header) -> None:
    headers = {"Authorization": header} if header else {}
    api.headers.pop("Authorization")
    response = api.get("/v1/sweeps", headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "Unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_expired_and_disabled_keys_are_401(api, migrated_url) -> None:
    revoked, expired, disabled = (new_user(api, name) for name in ("rev", "exp", "dis"))
    key_id = api.get("/v1/keys", params={"user": "rev"}).json()[0]["id"]
    assert api.delete(f"/v1/keys/{key_id}").status_code == 200
    engine = make_engine(migrated_url)
    with session_scope(make_session_factory(engine)) as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.prefix == expired[:12])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    engine.dispose()
    assert api.patch("/v1/users/dis", json={"disabled": True}).status_code == 200
    for key, reason in ((revoked, "revoked"), (expired, "expired"), (disabled, "disabled")):
        response = api.get("/v1/sweeps", headers=bearer(key))
        assert response.status_code == 401 and reason in response.json()["detail"], reason
    assert audit_actions(api).count("auth.rejected") == 3


def test_health_is_open_and_openapi_documents_the_scheme(migrated_url) -> None:
    with make_client(migrated_url) as client:
        assert client.get("/healthz").status_code == 200
        schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert any("ApiKey" in s for s in schema["paths"]["/v1/sweeps"]["post"]["security"])


def test_scopes_and_admin_endpoints_are_403(api) -> None:
    reader = new_user(api, "reader", scopes=("read",))
    response = api.post("/v1/sweeps", json=SPEC, headers=bearer(reader))
    assert response.status_code == 403 and "submit" in response.json()["detail"]
    assert api.get("/v1/users", headers=bearer(reader)).status_code == 403
    assert api.get("/v1/audit", headers=bearer(reader)).status_code == 403
    # A key cannot mint a key with more than its own scopes.
    escalate = api.post("/v1/keys", json={"scopes": ["read", "submit"]}, headers=bearer(reader))
    assert escalate.status_code == 403
    assert api.get("/v1/sweeps", headers=bearer(reader)).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "u1", "share": "2.5"}, "share"),
        ({"name": "u1", "quotas": {"max_queued_trials": "183"}}, "max_queued_trials"),
        ({"name": "u1", "quotas": {"max_running_trials": True}}, "max_running_trials"),
        ({"name": "u1", "admin": "yes"}, "admin"),
    ],
)
def test_user_fields_are_not_coerced(api, migrated_url, body, field) -> None:
    # The fuzzer's negative-data check found these accepted (strings and booleans where
    # JSON Schema says number): client bugs, answered with 422 and the field, and no user.
    before = counts(migrated_url)
    response = api.post("/v1/users", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "ValidationError" and field in response.text
    assert counts(migrated_url) == before


def test_an_integral_float_is_an_integer_as_json_schema_says(api) -> None:
    body = {"name": "u2", "quotas": {"max_queued_trials": 183.0}}
    created = api.post("/v1/users", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["quotas"]["max_queued_trials"] == 183
    half = api.post("/v1/users", json={"name": "u3", "quotas": {"max_queued_trials": 183.5}})
    assert half.status_code == 422 and "max_queued_trials" in half.text


def test_a_second_user_cannot_cancel_and_admin_can(api) -> None:
    ada, bob = new_user(api, "ada"), new_user(api, "bob")
    sweep = api.post("/v1/sweeps", json=SPEC, headers=bearer(ada)).json()
    assert sweep["submitter"] == "ada"
    refused = api.post(f"/v1/sweeps/{sweep['id']}/cancel", headers=bearer(bob))
    assert refused.status_code == 403 and refused.json()["error"] == "Forbidden"
    assert api.get(f"/v1/sweeps/{sweep['id']}").json()["counts"]["pending"] == 6
    # Reads are open by default (shared science).
    assert api.get(f"/v1/sweeps/{sweep['id']}", headers=bearer(bob)).status_code == 200
    assert api.post(f"/v1/sweeps/{sweep['id']}/cancel").json()["status"] == "cancelled"
    assert {"sweep.create", "sweep.cancel", "auth.forbidden"} <= set(audit_actions(api))


def test_restricted_reads_hide_other_users_sweeps(migrated_url, admin_key) -> None:
    with make_client(migrated_url, restrict_reads=True) as api:
        api.headers["Authorization"] = f"Bearer {admin_key}"
        ada, bob = new_user(api, "ada"), new_user(api, "bob")
        mine = api.post("/v1/sweeps", json=SPEC, headers=bearer(ada)).json()["id"]
        theirs = api.post("/v1/sweeps", json={**SPEC, "seeds": [7]}, headers=bearer(bob)).json()[
            "id"
        ]
        for path in (f"/v1/sweeps/{mine}", f"/v1/sweeps/{mine}/trials"):
            assert api.get(path, headers=bearer(bob)).status_code == 403, path
        assert api.get(f"/v1/sweeps/{theirs}", headers=bearer(bob)).status_code == 200
        listed = api.get("/v1/sweeps", headers=bearer(bob)).json()["items"]
        assert [s["id"] for s in listed] == [theirs]
        every = api.get("/v1/results", params={"status": "any"}, headers=bearer(bob)).json()
        assert {item["seed"] for item in every["items"]} == {7}
        assert api.get(f"/v1/sweeps/{mine}").status_code == 200  # admins read everything


def test_idempotency_keys_are_per_owner(api, migrated_url) -> None:
    ada, bob = new_user(api, "ada"), new_user(api, "bob")
    key = {"Idempotency-Key": "nightly-1"}
    first = api.post("/v1/sweeps", json=SPEC, headers={**bearer(ada), **key})
    other = api.post("/v1/sweeps", json=SPEC, headers={**bearer(bob), **key})
    assert (first.status_code, other.status_code) == (201, 201)
    assert first.json()["id"] != other.json()["id"]
    replay = api.post("/v1/sweeps", json=SPEC, headers={**bearer(ada), **key})
    assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
    changed = {**SPEC, "seeds": [5]}
    conflict = api.post("/v1/sweeps", json=changed, headers={**bearer(bob), **key})
    assert conflict.status_code == 409
    assert first.json()["id"] not in conflict.text and "ada" not in conflict.text


def test_a_concurrent_race_on_one_key_returns_one_sweep_to_both(
    migrated_url, admin_key, monkeypatch
) -> None:
    """Both requests pass the look-up before either inserts (the insert is slowed down):
    one creates the sweep, the other hits the unique constraint and returns it (200)."""
    from service.store import sweeps as sweep_store

    create = sweep_store.create_sweep

    def slow_create(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        time.sleep(0.3)
        return create(*args, **kwargs)

    monkeypatch.setattr(sweep_store, "create_sweep", slow_create)
    app = create_app(settings_for(migrated_url), start_dispatcher=False, migrate=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    headers = {**bearer(admin_key), "Idempotency-Key": "race"}
    results: list[httpx.Response] = []
    barrier = threading.Barrier(2)

    def post() -> None:
        barrier.wait()
        results.append(
            httpx.post(f"http://127.0.0.1:{port}/v1/sweeps", json=SPEC, headers=headers, timeout=60)
        )

    posts = [threading.Thread(target=post) for _ in range(2)]
    for t in posts:
        t.start()
    for t in posts:
        t.join()
    server.should_exit = True
    thread.join(timeout=10)
    assert sorted(r.status_code for r in results) == [200, 201], [r.text for r in results]
    assert len({r.json()["id"] for r in results}) == 1
    assert counts(migrated_url) == (1, 6)


def test_quota_rejections_write_nothing(api, migrated_url) -> None:
    ada = new_user(api, "ada", quotas={"max_queued_trials": 8})
    too_big = {**SPEC, "seeds": 3}  # 9 trials: more than the quota itself
    response = api.post("/v1/sweeps", json=too_big, headers=bearer(ada))
    assert response.status_code == 403 and "quota" in response.json()["detail"]
    assert api.post("/v1/sweeps", json=SPEC, headers=bearer(ada)).status_code == 201
    before = counts(migrated_url)
    second = api.post("/v1/sweeps", json={**SPEC, "seeds": [9]}, headers=bearer(ada))
    assert second.status_code == 429 and int(second.headers["Retry-After"]) > 0
    assert counts(migrated_url) == before
    # The same trials again add nothing to the queue: no quota needed.
    assert (
        api.post("/v1/sweeps", json={**SPEC, "name": "same"}, headers=bearer(ada)).status_code
        == 201
    )


def test_gpu_seconds_quota_counts_requested_resources(api, migrated_url, monkeypatch) -> None:
    # No Ray runs in these tests, so submit-time admission cannot know the cluster's GPUs.
    monkeypatch.setattr("service.runners.connected_cluster_gpus", lambda: None)
    cuda = {**SPEC, "execution": {**SPEC["execution"], "device": "cuda"}}
    bob = new_user(api, "bob", quotas={"gpu_seconds_per_window": 1e-3})
    assert api.post("/v1/sweeps", json=cuda, headers=bearer(bob)).status_code == 403
    # Room for one sweep of six trials (GPU-seconds from the workload's cost), not two.
    from workers.workloads import WORKLOADS

    one = WORKLOADS["dln_finetune"].cost_per_trial_s(SPEC["params"], cuda["execution"])
    api.patch("/v1/users/bob", json={"quotas": {"gpu_seconds_per_window": 6 * one * 1.5}})
    first = api.post("/v1/sweeps", json=cuda, headers=bearer(bob))
    assert first.status_code == 201, first.text
    before = counts(migrated_url)
    again = api.post("/v1/sweeps", json={**cuda, "seeds": [4, 5]}, headers=bearer(bob))
    assert again.status_code == 429 and int(again.headers["Retry-After"]) > 0
    assert counts(migrated_url) == before


def test_audit_log_is_paginated_and_records_admin_actions(api) -> None:
    new_user(api, "ada")
    api.patch("/v1/users/ada", json={"share": 2.0})
    page = api.get("/v1/audit", params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = api.get("/v1/audit", params={"cursor": page["next_cursor"], "limit": 100}).json()
    ids = [e["id"] for e in page["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    actions = {e["action"] for e in page["items"] + rest["items"]}
    assert {"user.create", "key.create", "user.update"} <= actions
    entry = next(e for e in rest["items"] + page["items"] if e["action"] == "user.update")
    assert entry["actor"] == "root" and entry["resource"] == "user:ada"
    assert entry["client_address"] and entry["result_code"] == 200


def test_auth_off_acts_as_one_local_user(migrated_url) -> None:
    app = create_app(Settings(database_url=migrated_url), start_dispatcher=False, migrate=False)
    with TestClient(app) as client:
        me = client.get("/v1/me").json()
        assert me["auth"] is False and me["admin"] is True and me["name"] == "anonymous"
        created = client.post("/v1/sweeps", json=SPEC)
        assert created.status_code == 201 and created.json()["submitter"] == "anonymous"


def test_production_refuses_to_start_without_auth() -> None:
    with pytest.raises(ValueError, match="SWEEPS_AUTH__ENABLED"):
        Settings(environment="production", database_url="postgresql+psycopg://x@y/z")
    Settings(
        environment="production",
        database_url="postgresql+psycopg://x@y/z",
        auth=AuthSettings(enabled=True),
    )


def test_unrelated_integrity_errors_are_not_409(api, monkeypatch) -> None:
    from sqlalchemy.exc import IntegrityError

    from service.store import sweeps as sweep_store

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise IntegrityError("INSERT INTO trials", {}, Exception("NOT NULL constraint failed"))

    monkeypatch.setattr(sweep_store, "create_sweep", broken)
    response = api.post("/v1/sweeps", json=SPEC, headers={"Idempotency-Key": "k"})
    assert response.status_code == 500 and response.json()["error"] == "IntegrityError"


def test_a_revocation_reaches_other_replicas_within_the_cache_lifetime(
    migrated_url, admin_key
) -> None:
    """Two API replicas on one database: the one that revokes refuses the key at once;
    a replica without the cache (``cache_seconds=0``) refuses it too; one with a cache
    may accept it until its entry expires."""
    with make_client(migrated_url) as first, make_client(migrated_url, cache_seconds=0) as fresh:
        first.headers["Authorization"] = f"Bearer {admin_key}"
        key = new_user(first, "ada")
        with make_client(migrated_url, cache_seconds=5) as cached:
            assert cached.get("/v1/me", headers=bearer(key)).status_code == 200
            key_id = first.get("/v1/keys", params={"user": "ada"}).json()[0]["id"]
            assert first.delete(f"/v1/keys/{key_id}").status_code == 200
            assert first.get("/v1/me", headers=bearer(key)).status_code == 401
            assert fresh.get("/v1/me", headers=bearer(key)).status_code == 401
            assert cached.get("/v1/me", headers=bearer(key)).status_code == 200  # cached
            # The entry's lifetime passes (moved on rather than waited for: 5 s keeps the
            # cached answer above safe on a loaded machine).
            cache = cached.app.state.principal_cache
            for digest, (_, principal) in list(cache._entries.items()):
                cache._entries[digest] = (time.monotonic() - 1, principal)
            assert cached.get("/v1/me", headers=bearer(key)).status_code == 401
