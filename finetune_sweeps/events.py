"""A sweep's Server-Sent Events (``GET /v1/sweeps/{id}/events``) as the clients read them.

The wire contract is the server's (``service/events/stream.py``): each message has
``id: <seq>``, ``event: <kind>`` (created, trials, results, done) and one ``data:`` line
of JSON carrying the sweep's counts per status, ``total``, ``progress``,
``throughput_per_s``, ``eta_s`` and ``status``; ``: heartbeat`` comments keep an idle
stream alive; the stream ends after ``done``.  A client that reconnects with
``Last-Event-ID`` gets exactly the events after it, so following a sweep across dropped
connections loses and repeats nothing.

This module is pure (lines in, records out) so that the sync and the async client share
it: ``SseParser`` turns lines into ``SweepEvent`` records (or ``HEARTBEAT``), and
``apply_event`` folds an event into the ``SweepRead`` a progress display already shows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from api_schemas.wire import SweepCounts, SweepRead

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
