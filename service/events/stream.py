"""Server-Sent Events framing of a sweep's stored event sequence.

Wire contract (``GET /v1/sweeps/{id}/events``):

- each message has ``id: <seq>`` (the event's database id), ``event: <kind>`` (created,
  trials, results, done) and one ``data:`` line of JSON: ``seq``, ``sweep_id``, ``kind``,
  ``at``, ``counts`` (per status), ``total``, ``cached``, ``progress``,
  ``throughput_per_s``, ``eta_s``, ``started_at``, ``status`` and, for trials/results,
  ``changes`` (``[{"from", "to", "count", "trial_ids"}]``; ids omitted past 2000);
- a client that reconnects with ``Last-Event-ID: N`` (or ``?since=N``) gets exactly the
  events after N, in order: nothing missed, nothing repeated;
- an idle stream sends a ``: heartbeat`` comment every ``live.heartbeat_seconds``;
- the stream ends after the sweep's ``done`` event (or at once for a sweep that is
  final and has no events, i.e. one finished before events existed).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from service.store import events as event_store
from service.store.events import DONE, SweepEvent
from service.store.session import session_scope

READ_LIMIT = 500
RETRY_MS = 2000


def frame(event: SweepEvent) -> str:
    """One SSE message."""
    data = json.dumps(event.data(), separators=(",", ":"), allow_nan=False, default=str)
    return f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n"


def _read(
    factory: sessionmaker[Session], sweep_id: str, after: int
) -> tuple[list[SweepEvent], tuple[int, str] | None]:
    """The next events after ``after``, and (seq, kind) of the sweep's latest event."""
    with session_scope(factory) as session:
        batch = event_store.events_after(session, sweep_id, after, READ_LIMIT)
        latest = (
            (batch[-1].seq, batch[-1].kind)
            if batch
            else event_store.latest_event(session, sweep_id)
        )
        return batch, latest


async def sweep_events(
    factory: sessionmaker[Session],
    sweep_id: str,
    after: int,
    *,
    heartbeat_s: float,
    poll_s: float,
    final_without_events: bool,
    disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    """The SSE body: events after ``after`` as they are committed, until ``done``."""
    yield f"retry: {RETRY_MS}\n\n"
    last, beat = after, time.monotonic()
    while True:
        batch, latest = await run_in_threadpool(_read, factory, sweep_id, last)
        for event in batch:
            yield frame(event)
            last = event.seq
        if latest is None and final_without_events:
            return
        if latest is not None and latest[1] == DONE and latest[0] <= last:
            return  # the sweep is final and the client has every event up to its done
        if batch:
            beat = time.monotonic()
            continue
        if await disconnected():
            return
        if time.monotonic() - beat >= heartbeat_s:
            yield ": heartbeat\n\n"
            beat = time.monotonic()
        await anyio.sleep(poll_s)
