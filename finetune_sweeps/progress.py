"""Progress of a running sweep as text, and the plain printer ``submit(progress=True)``
uses.  The CLI draws its own live display; both read the same ``SweepRead`` fields."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from api_schemas.wire import SweepRead

FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "partial"})
ProgressArg = Callable[[SweepRead], None] | bool | None


def format_duration(seconds: float | None) -> str:
    """``1:02:03`` / ``4:05``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def counts_text(sweep: SweepRead) -> str:
    """``ok 12 run 7 queued 49 wait 0 fail 0``: ``run`` counts the trials a worker
    computes now and ``queued`` the claimed ones waiting in their batch or in Ray's queue
    (``SweepRead.executing`` / ``queued_in_batch``); a server that does not say gives
    every running trial as ``run``."""
    counts = sweep.counts
    if sweep.executing is None or sweep.queued_in_batch is None:
        running = f"run {counts.running}"
    else:
        running = f"run {sweep.executing} queued {sweep.queued_in_batch}"
    return f"ok {counts.succeeded} {running} wait {counts.pending} fail {counts.failed}"


def progress_text(sweep: SweepRead, elapsed_s: float | None = None) -> str:
    """``100.0% 12/12 · ok 12 run 0 queued 0 wait 0 fail 0 · 3.1 trials/s · eta 0:00 ·
    succeeded``."""
    counts = sweep.counts
    done = counts.succeeded + counts.failed + counts.cancelled
    parts = [f"{sweep.progress * 100:5.1f}% {done}/{sweep.trial_count}", counts_text(sweep)]
    if sweep.throughput_per_s:
        parts.append(f"{sweep.throughput_per_s:.1f} trials/s")
    if sweep.status in FINAL_STATUSES:
        if elapsed_s is not None:
            parts.append(f"took {format_duration(elapsed_s)}")
    else:
        parts.append(f"eta {format_duration(sweep.eta_s)}")
    parts.append(sweep.status)
    return " · ".join(parts)


class PlainProgress:
    """Prints ``progress_text``: rewritten in place on a terminal; elsewhere one line every
    ``every_s`` seconds at most and always the final one (never the same line twice)."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.started = time.monotonic()
        self.last_line = ""
        self.last_time = self.started

    def __call__(self, sweep: SweepRead) -> None:
        final = sweep.status in FINAL_STATUSES
        line = progress_text(sweep, time.monotonic() - self.started)
        if self.stream.isatty():
            self.stream.write("\r\033[K" + line + ("\n" if final else ""))
        elif line != self.last_line and (
            final or time.monotonic() - self.last_time >= self.every_s
        ):
            self.stream.write(line + "\n")
            self.last_time = time.monotonic()
        self.last_line = line
        self.stream.flush()


def progress_callback(progress: ProgressArg) -> Callable[[SweepRead], None] | None:
    """``True`` → a ``PlainProgress`` on stderr; a callable is used as is; else none."""
    if progress is True:
        return PlainProgress()
    return progress or None
