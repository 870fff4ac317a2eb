"""A sweep's Server-Sent Events (``GET /v1/sweeps/{id}/events``) as the clients read them.

The wire contract is the server's (``service/events/stream.py``): each message has
``id: <seq>``, ``event: <kind>`` (created, trials, results, done) and one ``data:`` line
of JSON carrying the sweep's counts per status, ``total``, ``progress``,
``throughput_per_s``, ``eta_s`` and ``status``; ``: heartbeat`` comments keep an idle
stream alive; the stream ends after ``done``.  A client that reconnects with
``Last-Event-ID`` gets exactly the events after it, so following a sweep across dropped
connections loses and repeats nothing.

This module is pure (lines in, records out) so that the sync and the async client share
it: ``SseParser`` turns lines into ``SweepEvent`` records (or ``HEARTBEAT``),
``apply_event`` folds an event into the ``SweepRead`` a progress display already shows,
``Deadline`` is the ``timeout`` of ``wait`` / ``follow`` / ``watch``, and ``Resume``
decides, after a stream ended or dropped, whether to reconnect and after how long (the
two clients differ only in how they read lines and sleep).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Final

from api_schemas.wire import SweepCounts, SweepRead
from finetune_sweeps.errors import WaitTimeout
from finetune_sweeps.transport import RetryPolicy

DONE: Final = "done"


@dataclass(frozen=True)
class SweepEvent:
    """One event: ``seq`` (its SSE id, increasing), ``kind`` and its JSON ``data``."""

    seq: int
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return self.kind == DONE


class _Heartbeat:
    """A comment line (``: heartbeat``): the connection is alive, nothing changed."""

    def __repr__(self) -> str:
        return "HEARTBEAT"


HEARTBEAT: Final = _Heartbeat()


class SseParser:
    """Incremental SSE parsing (the subset the server emits: ``id``, ``event``, ``data``,
    ``retry`` fields and comments).  ``feed`` one line (without its newline) at a time;
    it returns a ``SweepEvent`` when a blank line ends a message, ``HEARTBEAT`` for a
    comment, else ``None``."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._kind = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> SweepEvent | _Heartbeat | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return HEARTBEAT
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            self._id = value
        elif name == "event":
            self._kind = value
        elif name == "data":
            self._data.append(value)
        return None  # "retry" and unknown fields change nothing a client keeps

    def _dispatch(self) -> SweepEvent | None:
        event_id, kind, data = self._id, self._kind, "\n".join(self._data)
        self._id, self._kind, self._data = None, "message", []
        if event_id is None or not event_id.isdigit():
            return None  # e.g. the stream's opening "retry:" message
        return SweepEvent(int(event_id), kind, json.loads(data) if data else {})


def apply_event(sweep: SweepRead, event: SweepEvent) -> SweepRead:
    """``sweep`` as of ``event``: status, counts, progress, throughput and ETA from the
    event; everything the event does not carry (name, spec, running trials) unchanged."""
    data = event.data
    update: dict[str, Any] = {}
    if isinstance(data.get("counts"), dict):
        known = SweepCounts.model_fields  # a newer server may count more states
        update["counts"] = SweepCounts(**{k: v for k, v in data["counts"].items() if k in known})
    if isinstance(data.get("total"), int) and data["total"] > 0:
        update["trial_count"] = data["total"]
    for name in ("status", "progress", "throughput_per_s", "eta_s"):
        if name in data:
            update[name] = data[name]
    return SweepRead.model_validate({**sweep.model_dump(), **update})


class Deadline:
    """``timeout`` seconds from now (None: never) for the sweep ``sweep_id``."""

    def __init__(self, sweep_id: str, timeout: float | None) -> None:
        self.sweep_id, self.timeout = sweep_id, timeout
        self._at = None if timeout is None else time.monotonic() + timeout

    def check(self) -> None:
        """Raise ``WaitTimeout`` once the deadline has passed."""
        if self._at is not None and time.monotonic() > self._at:
            raise WaitTimeout(f"sweep {self.sweep_id} did not finish within {self.timeout:g}s")

    def left(self) -> float | None:
        """Seconds left (at least 0), None without a deadline."""
        return None if self._at is None else max(self._at - time.monotonic(), 0.0)


class Resume:
    """Where a followed stream resumes (``after``: the last event seen) and how often it
    may: the attempts count from zero again after every event received, so only a
    stream that keeps failing without progress gives up (after ``retry.attempts``)."""

    def __init__(self, retry: RetryPolicy, after: int) -> None:
        self.retry, self.after, self._attempt = retry, after, 0

    def seen(self, event: SweepEvent) -> None:
        self.after, self._attempt = event.seq, 0

    def backoff(self, error: Exception) -> float:
        """Seconds to wait before reconnecting after ``error``; raises it when no try is
        left."""
        if not self.retry.should_retry_error(self._attempt):
            raise error
        delay = self.retry.delay(self._attempt)
        self._attempt += 1
        return delay
