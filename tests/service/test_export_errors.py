"""An export never ends as a silently short file: bad queries are refused before the
first byte, a failure in the first chunk is an ordinary error response, and a failure
after the first bytes ends the body with a trailer line and an aborted transfer that a
real HTTP client (httpx over a live uvicorn) reports."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from service import results_export
from service.app import create_app
from service.export_stream import TRAILER_PREFIX
from service.settings import Settings
from tests.service.factories import make_trial


class InjectedFailure(RuntimeError):
    pass


@pytest.fixture
def stored(session_factory) -> None:
    with session_factory() as session:
        for i in range(3):
            make_trial(session, seed=i, lambda_pt=0.1 * i)
        session.commit()


def failing_after_first_chunk(real):
    def chunks(session_factory, query, *args, **kwargs) -> Iterator[list[dict]]:
        yield from real(session_factory, query, chunk_rows=2)
        raise InjectedFailure("database went away mid-export")

    return chunks


@pytest.mark.parametrize(
    "prefix", ["/v1/results/export?", "/v1/results/summary?group_by=c_pt&", "/v1/results?"]
)
def test_unrepresentable_numbers_are_422_before_any_byte(app_client, prefix: str) -> None:
    for query, name in [
        ("D_eq=9223372036854775808", "D_eq"),
        ("seed_gt=8911768551667577913344", "seed_gt"),
        ("D_lt=2147483648", "D_lt"),
        ("c_pt_lt=1e999", "c_pt_lt"),
    ]:
        response = app_client.get(prefix + query)
        assert response.status_code == 422, (prefix, query, response.text)
        assert response.json()["error"] == "BadQuery"
        [error] = response.json()["detail"]
        assert error["loc"] == ["query", name], error


def test_a_failure_in_the_first_chunk_is_an_error_response(
    migrated_url, stored, monkeypatch
) -> None:
    def broken(*args, **kwargs):
        raise InjectedFailure("no rows for you")
        yield  # pragma: no cover - makes this a generator

    monkeypatch.setattr(results_export, "iter_export_chunks", broken)
    app = create_app(Settings(database_url=migrated_url), start_dispatcher=False, migrate=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        for fmt in ("csv", "parquet"):
            response = client.get(f"/v1/results/export?format={fmt}")
            assert response.status_code == 500
            assert response.json() == {
                "error": "InternalError",
                "detail": "unexpected InjectedFailure; see the server log",
            }


def test_parquet_is_written_whole_before_the_first_byte(migrated_url, stored, monkeypatch) -> None:
    real = results_export.iter_export_chunks
    monkeypatch.setattr(results_export, "iter_export_chunks", failing_after_first_chunk(real))
    app = create_app(Settings(database_url=migrated_url), start_dispatcher=False, migrate=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v1/results/export?format=parquet")
    assert response.status_code == 500 and response.json()["error"] == "InternalError"


@pytest.fixture
def live_server(migrated_url) -> Iterator[str]:
    """The real app under uvicorn on a free port (a real socket, real chunked encoding)."""
    app = create_app(Settings(database_url=migrated_url), start_dispatcher=False, migrate=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_a_failure_mid_stream_ends_with_a_trailer_and_an_aborted_transfer(
    stored, live_server, monkeypatch
) -> None:
    real = results_export.iter_export_chunks
    monkeypatch.setattr(results_export, "iter_export_chunks", failing_after_first_chunk(real))
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream("GET", f"{live_server}/v1/results/export?format=csv") as response:
            assert response.status_code == 200
            for data in response.iter_bytes():
                received += data
    lines = received.decode().splitlines()
    assert lines[0].startswith("trial_id,") and len([x for x in lines if x[:1].isdigit()]) == 3
    assert lines[-1] == (
        f"{TRAILER_PREFIX}InjectedFailure: database went away mid-export; the file is incomplete"
    )
