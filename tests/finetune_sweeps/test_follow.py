"""Following a sweep from its event stream: the SSE parser, ``Client.follow`` /
``watch`` (sync and async) against the real app over real HTTP, a connection cut in the
middle of the stream, and ``sweeps watch``."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from api_schemas.wire import SweepCounts, SweepRead
from finetune_sweeps import AsyncClient, Client, RetryPolicy, WaitTimeout
from finetune_sweeps.events import HEARTBEAT, SseParser, SweepEvent, apply_event
from service.app import create_app
from service.cli import main
from service.settings import LiveSettings, Settings
from tests.live_server import serve_in_thread
from tests.service.factories import small_finetune_spec

SPEC = small_finetune_spec(name="follow", axes={"lambda_pt": [-0.5, 0.0, 0.5]})
FAST = RetryPolicy(attempts=4, backoff_s=0.01, max_backoff_s=0.05)


def parse(text: str) -> list:
    parser = SseParser()
    return [item for line in text.split("\n") if (item := parser.feed(line)) is not None]


def test_the_parser_reads_the_servers_framing() -> None:
    stream = (
        "retry: 2000\n\n"
        'id: 7\nevent: trials\ndata: {"counts": {"running": 2}}\n\n'
        ": heartbeat\n\n"
        'id: 9\nevent: done\ndata: {"status":\n'
        'data: "succeeded"}\n\n'
    )
    items = parse(stream)
    assert items == [
        SweepEvent(7, "trials", {"counts": {"running": 2}}),
        HEARTBEAT,
        SweepEvent(9, "done", {"status": "succeeded"}),  # multi-line data joined by \n
    ]
    assert items[-1].final and not items[0].final


def test_apply_event_updates_what_the_event_carries_only() -> None:
    sweep = SweepRead.model_validate(
        {
            "id": "s", "name": "n", "workload": "dln_finetune", "submitter": "me",
            "priority": 0, "tags": [], "status": "pending", "created_at": "2026-12-02T00:00:00Z",
            "trial_count": 4, "cached_count": 0, "counts": {"pending": 4}, "progress": 0.0,
        }
    )  # fmt: skip
    event = SweepEvent(
        3,
        "results",
        {
            "counts": {"pending": 1, "running": 1, "succeeded": 2, "a_future_state": 5},
            "total": 4, "progress": 0.5, "throughput_per_s": 2.0, "eta_s": 1.0,
            "status": "running",
        },
    )  # fmt: skip
    after = apply_event(sweep, event)
    assert after.counts == SweepCounts(pending=1, running=1, succeeded=2)
    assert (after.status, after.progress, after.eta_s) == ("running", 0.5, 1.0)
    assert (after.name, after.id, after.trial_count) == ("n", "s", 4)


class CountingTransport(httpx.HTTPTransport):
    """Real HTTP that records each request's path, and can cut the first event stream
    after its first event (the connection drops mid-stream: ``ReadError``)."""

    def __init__(self, cut_first_stream: bool = False) -> None:
        super().__init__()
        self.paths: list[str] = []
        self.cut = cut_first_stream

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(f"{request.url.path} {request.headers.get('last-event-id', '')}")
        response = super().handle_request(request)
        if not (self.cut and request.url.path.endswith("/events")):
            return response
        self.cut = False
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_CutAfterFirstEvent(response.stream),
            extensions=response.extensions,
        )


class _CutAfterFirstEvent(httpx.SyncByteStream):
    def __init__(self, inner) -> None:  # noqa: ANN001
        self.inner = inner

    def __iter__(self):
        seen = b""
        for chunk in self.inner:
            seen += chunk
            head, sep, _ = seen.partition(b"\n\n" if b"id:" in seen else b"\0")
            if sep and b"id:" in head:
                yield seen[: len(head) + 2]  # exactly the first event, then the line dies
                raise httpx.ReadError("connection reset mid-stream")
            if b"id:" not in seen:
                yield chunk
                seen = b""

    def close(self) -> None:
        self.inner.close()


def test_watch_is_pushed_not_polled(live_url) -> None:
    transport = CountingTransport()
    seen: list[SweepRead] = []
    with Client(live_url, transport=transport) as client:
        sweep = client.submit(SPEC)
        final = client.watch(sweep.id, progress=seen.append, timeout=60)
    assert final.status == "succeeded" and final.counts.succeeded == 6
    assert seen[-1] == final
    done = [s.counts.succeeded for s in seen]
    assert done == sorted(done), "progress went backwards"
    # One GET before the stream, one after it: everything between came from events.
    gets = [p for p in transport.paths if p.startswith(f"/v1/sweeps/{sweep.id} ")]
    streams = [p for p in transport.paths if p.startswith(f"/v1/sweeps/{sweep.id}/events")]
    assert len(gets) == 2 and len(streams) == 1, transport.paths


def test_follow_resumes_after_a_dropped_connection(live_url) -> None:
    with Client(live_url) as client:
        sweep = client.submit(SPEC)
        client.watch(sweep.id, timeout=60)
        everything = list(client.follow(sweep.id))
    assert everything[-1].final and len(everything) >= 3
    seqs = [event.seq for event in everything]
    assert seqs == sorted(set(seqs))

    transport = CountingTransport(cut_first_stream=True)
    with Client(live_url, transport=transport, retry=FAST) as client:
        resumed = list(client.follow(sweep.id))
    assert resumed == everything  # nothing missed, nothing repeated
    streams = [p for p in transport.paths if "/events" in p]
    assert streams == [
        f"/v1/sweeps/{sweep.id}/events 0",
        f"/v1/sweeps/{sweep.id}/events {everything[0].seq}",  # Last-Event-ID: the first
    ]
    # Replaying from any point gives exactly the rest.
    with Client(live_url) as client:
        assert list(client.follow(sweep.id, after=seqs[1])) == everything[2:]


def test_the_async_client_watches_from_the_stream(live_url) -> None:
    async def scenario() -> tuple[SweepRead, list[SweepRead]]:
        seen: list[SweepRead] = []
        async with AsyncClient(live_url) as client:
            sweep = await client.submit(SPEC)
            final = await client.watch(sweep.id, progress=seen.append, timeout=60)
            events = [event async for event in client.follow(sweep.id)]
        assert events[-1].final
        return final, seen

    final, seen = asyncio.run(scenario())
    assert final.status == "succeeded" and seen[-1] == final


def test_watch_times_out_on_an_idle_stream(sqlite_url) -> None:
    # No dispatcher: the sweep stays pending and its stream sends only heartbeats, which
    # keep the deadline checked.
    settings = Settings(database_url=sqlite_url, live=LiveSettings(heartbeat_seconds=0.1))
    app = create_app(settings, start_dispatcher=False)
    with serve_in_thread(app) as url, Client(url) as client:
        sweep = client.submit(SPEC)
        started = time.monotonic()
        with pytest.raises(WaitTimeout, match="did not finish within 0.5s"):
            client.watch(sweep.id, timeout=0.5)
        assert time.monotonic() - started < 5
        assert client.sweep(sweep.id).status == "pending"
        client.cancel(sweep.id)  # final: watch returns at once, stream or not
        assert client.watch(sweep.id, timeout=0.01).status == "cancelled"


def test_sweeps_watch_command(live_url, capsys) -> None:
    with Client(live_url) as client:
        sweep_id = client.submit(SPEC).id
    assert main(["watch", sweep_id, "--url", live_url, "--json"]) == 0
    out = capsys.readouterr()
    assert '"status": "succeeded"' in out.out
