"""The event sequence: written by the store in the transactions that change state,
read back in order, and served as Server-Sent Events by the real app over HTTP while a
real dispatcher runs a sweep (reconnects with ``Last-Event-ID``, replicas, heartbeats)."""

from __future__ import annotations

import threading

import httpx
import pytest
from sqlalchemy import select

from api_schemas.spec import SweepSpec
from service.app import create_app
from service.dispatch import Dispatcher
from service.runners import InlineRunner
from service.settings import DispatchSettings, LiveSettings, Settings
from service.store import events as event_store
from service.store import sweeps as sweep_store
from service.store.models import Trial
from service.store.session import session_scope
from service.sweeps import submit_sweep
from tests.live import read_sse, serve
from tests.service.factories import small_finetune_spec

SPEC = small_finetune_spec(name="live")  # 6 trials


def settings_for(url: str, **live) -> Settings:
    return Settings(
        database_url=url,
        dispatch=DispatchSettings(batch_size=2, max_inflight_batches=1, poll_seconds=0.05),
        live=LiveSettings(poll_seconds=0.05, **live),
    )


def submit(factory, settings: Settings, spec: dict = SPEC) -> str:
    with session_scope(factory) as session:
        sweep, _ = submit_sweep(session, SweepSpec.model_validate(spec), settings, "ada", None)
    return sweep.id


def all_events(factory, sweep_id: str) -> list[event_store.SweepEvent]:
    with session_scope(factory) as session:
        return event_store.events_after(session, sweep_id, 0, 10_000)


def test_store_writes_the_sequence_in_the_transactions(session_factory, migrated_url) -> None:
    settings = settings_for(migrated_url)
    sweep_id = submit(session_factory, settings)
    created = all_events(session_factory, sweep_id)
    assert [e.kind for e in created] == ["created"]
    assert created[0].payload["counts"]["pending"] == 6 and created[0].payload["total"] == 6

    Dispatcher(session_factory, settings, InlineRunner()).run_until_idle()
    sequence = all_events(session_factory, sweep_id)
    seqs = [e.seq for e in sequence]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    kinds = [e.kind for e in sequence]
    assert kinds[0] == "created" and kinds[-1] == "done" and kinds.count("done") == 1
    assert "trials" in kinds and "results" in kinds
    # Batches of two: every claim and every landing is one event, never one per trial.
    moves = [c for e in sequence for c in e.payload.get("changes", [])]
    assert sum(c["count"] for c in moves if c["to"] == "running") == 6
    assert sum(c["count"] for c in moves if c["to"] == "succeeded") == 6
    landed = sorted(i for c in moves if c["to"] == "succeeded" for i in c["trial_ids"])
    with session_scope(session_factory) as session:
        read = sweep_store.read_sweep(session, sweep_id)
        trials = session.execute(select(Trial.id, Trial.updated_seq)).all()
    final = sequence[-1].payload
    assert final["counts"]["succeeded"] == read.counts.succeeded == 6
    assert final["status"] == "succeeded" and final["progress"] == 1.0
    assert final["throughput_per_s"] > 0 and final["eta_s"] == 0
    assert landed == sorted(i for i, _ in trials)
    # Every trial's updated_seq names a real event of this sweep (no stamp left behind).
    assert {seq for _, seq in trials} <= set(seqs)


def test_results_and_trials_since_return_only_what_changed(session_factory, migrated_url) -> None:
    settings = settings_for(migrated_url)
    sweep_id = submit(session_factory, settings)
    dispatcher = Dispatcher(session_factory, settings, InlineRunner())
    dispatcher.step()  # one round: one batch of two claimed, run and written
    first = all_events(session_factory, sweep_id)
    mark = first[-1].seq
    dispatcher.run_until_idle()
    later = [e for e in all_events(session_factory, sweep_id) if e.seq > mark]
    changed = {i for e in later for c in e.payload.get("changes", []) for i in c["trial_ids"]}
    app = create_app(settings, start_dispatcher=False, migrate=False)
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        everything = client.get("/v1/results", params={"sweep_id": sweep_id}).json()["items"]
        since = client.get("/v1/results", params={"sweep_id": sweep_id, "since": mark}).json()
        trials = client.get(f"/v1/sweeps/{sweep_id}/trials", params={"since": mark}).json()
        bad = client.get("/v1/results", params={"since": "-1"})
    assert len(everything) == 6
    assert {r["trial_id"] for r in since["items"]} == changed and 0 < len(changed) < 6
    assert {t["id"] for t in trials["items"]} == changed
    assert bad.status_code == 422


def test_stream_while_a_dispatcher_runs_and_reconnect(migrated_url) -> None:
    settings = settings_for(migrated_url)
    app = create_app(settings, runner=InlineRunner(), start_dispatcher=False, migrate=False)
    with serve(app) as base:
        sweep_id = httpx.post(f"{base}/v1/sweeps", json=SPEC).json()["id"]
        live: list[dict] = []
        reader = threading.Thread(target=lambda: live.extend(read_sse(base, sweep_id)))
        reader.start()
        dispatcher = Dispatcher(app.state.session_factory, settings, InlineRunner())
        dispatcher.start()
        reader.join(120)
        dispatcher.stop()
        assert not reader.is_alive(), "the stream did not end after the sweep's done event"
        # Events arrived while the sweep ran: some show work still pending or running.
        assert any(
            m["data"]["counts"]["pending"] + m["data"]["counts"]["running"] > 0
            for m in live
            if m["event"] != "created"
        )
        assert live[-1]["event"] == "done" and live[-1]["data"]["status"] == "succeeded"
        assert [m["id"] for m in live] == [m["data"]["seq"] for m in live]

        # Reconnect after the third event: exactly the rest, nothing repeated.
        head = read_sse(base, sweep_id, stop_after=3)
        tail = read_sse(base, sweep_id, last_event_id=head[-1]["id"])
        assert [m["id"] for m in head + tail] == [m["id"] for m in live]
        assert head + tail == live
        # A client that has seen the done event gets an empty stream that ends.
        assert read_sse(base, sweep_id, last_event_id=live[-1]["id"]) == []


def test_heartbeat_on_an_idle_stream(sqlite_url) -> None:
    settings = settings_for(sqlite_url, heartbeat_seconds=0.2)
    app = create_app(settings, start_dispatcher=False)
    with serve(app) as base:
        sweep_id = httpx.post(f"{base}/v1/sweeps", json=SPEC).json()["id"]
        comments: list[str] = []
        messages = read_sse(base, sweep_id, stop_after=1, comments=comments)
        assert messages[0]["event"] == "created"
        with httpx.stream("GET", f"{base}/v1/sweeps/{sweep_id}/events", timeout=10) as response:
            lines = []
            for line in response.iter_lines():
                lines.append(line)
                if line == ": heartbeat":
                    break
        assert ": heartbeat" in lines and any(line.startswith("retry:") for line in lines)
        assert httpx.get(f"{base}/v1/sweeps/nope/events").status_code == 404


@pytest.mark.postgres
def test_two_replicas_on_postgres_serve_one_sequence(postgres_url) -> None:
    settings = settings_for(postgres_url)
    runner = InlineRunner()
    first = create_app(settings, runner=runner, start_dispatcher=True)
    second = create_app(settings, runner=runner, start_dispatcher=True)
    with serve(first) as base_a, serve(second) as base_b:
        sweep_id = httpx.post(f"{base_a}/v1/sweeps", json=SPEC).json()["id"]
        other_id = httpx.post(
            f"{base_b}/v1/sweeps",
            json=small_finetune_spec(name="other", axes={"lambda_pt": [-0.25, 0.25]}),
        ).json()["id"]
        seen: dict[str, list[dict]] = {}
        readers = [
            threading.Thread(target=lambda b=b, k=k: seen.__setitem__(k, read_sse(b, sweep_id)))
            for b, k in ((base_a, "a"), (base_b, "b"))
        ]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(120)
        assert seen["a"] == seen["b"] and seen["a"][-1]["event"] == "done"
        assert read_sse(base_b, other_id)[-1]["data"]["status"] == "succeeded"
        # Two dispatchers shared the work; the counts carried from event to event add up.
        assert seen["a"][-1]["data"]["counts"]["succeeded"] == 6


def test_the_streams_eta_is_the_smoothed_one(session_factory, migrated_url) -> None:
    # The event stream (and so the web page and `sweeps watch`) shows the same smoothed
    # ETA as GET /v1/sweeps/{id} (service.scheduling.eta), not remaining / cumulative rate.
    from datetime import datetime

    from service.scheduling.eta import estimate
    from service.store.clock import as_utc

    settings = settings_for(migrated_url)
    sweep_id = submit(session_factory, settings)
    Dispatcher(session_factory, settings, InlineRunner()).run_until_idle()
    with session_scope(session_factory) as session:
        finished = [as_utc(t).timestamp() for t in session.scalars(select(Trial.finished_at))]
    checked = 0
    for event in all_events(session_factory, sweep_id):
        data = event.payload
        remaining = data["counts"].get("pending", 0) + data["counts"].get("running", 0)
        if event.kind != "results" or not remaining:
            continue
        at = event.at.timestamp()
        start = datetime.fromisoformat(data["started_at"]).timestamp()
        times = [t for t in finished if t <= at + 1e-6]
        assert data["eta_s"] == pytest.approx(estimate(times, start, remaining, at).eta_s)
        checked += 1
    assert checked >= 1
