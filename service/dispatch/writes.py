"""Store writes the dispatcher has to make and must not lose.

Every write of a round (a batch's results, a retry, a failure) is queued here and made
in its own transaction.  When the database refuses one (a lock held by a large submit on
SQLite, a restarted PostgreSQL), the write stays queued and is retried on later rounds
with exponential backoff, while the dispatcher keeps the leases of its trials alive; so a
database error never loses a finished batch, and no trial waits for lease expiry because
of one.  After ``max_tries`` the write is dropped and logged: its trials' leases then
expire and they run again (the only way forward when the database stays down).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from service.observability.metrics import PERSIST_SECONDS
from service.store.session import session_scope
from workers.records import ClaimedTrial

log = logging.getLogger("sweeps.dispatch")

# Errors worth retrying: the database or the connection, not the data.
RETRYABLE = (DBAPIError, SQLAlchemyError)


@dataclass
class PendingWrite:
    """One write: ``apply(session)`` inside a transaction; ``claims`` keep their leases
    renewed while it waits; ``on_done`` / ``on_dropped`` run after it lands or is given up."""

    name: str
    apply: Callable[[Session], None]
    claims: tuple[ClaimedTrial, ...] = ()
    on_done: Callable[[], None] = lambda: None
    on_dropped: Callable[[], None] = lambda: None
    tries: int = 0
    next_at: float = field(default_factory=time.monotonic)


class WriteQueue:
    """Writes in arrival order, each retried with backoff until it lands."""

    def __init__(self, max_tries: int, backoff_s: float, max_backoff_s: float) -> None:
        self.max_tries = max_tries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._queue: list[PendingWrite] = []
        self.last_error: str | None = None
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, write: PendingWrite) -> None:
        self._queue.append(write)

    def claims(self) -> list[ClaimedTrial]:
        """Claims whose results wait to be written (their leases must stay alive)."""
        return [claim for write in self._queue for claim in write.claims]

    def flush(self, factory: sessionmaker[Session], *, force: bool = False) -> int:
        """Try every due write (all of them with ``force``); returns how many landed."""
        landed = 0
        now = time.monotonic()
        keep: list[PendingWrite] = []
        for write in self._queue:
            if not force and write.next_at > now:
                keep.append(write)
                continue
            started = time.perf_counter()
            try:
                with session_scope(factory) as session:
                    write.apply(session)
            except RETRYABLE as exc:
                write.tries += 1
                self.last_error = f"{write.name}: {type(exc).__name__}: {exc}"[:2000]
                if write.tries >= self.max_tries:
                    log.error("giving up on %s after %d tries: %s", write.name, write.tries, exc)
                    self.dropped += 1
                    write.on_dropped()
                    continue
                delay = min(self.backoff_s * 2 ** (write.tries - 1), self.max_backoff_s)
                write.next_at = time.monotonic() + delay
                log.warning(
                    "%s failed (try %d), retrying in %.2fs: %s", write.name, write.tries, delay, exc
                )
                keep.append(write)
                continue
            landed += 1
            PERSIST_SECONDS.observe(time.perf_counter() - started)
            write.on_done()
        self._queue = keep
        return landed
