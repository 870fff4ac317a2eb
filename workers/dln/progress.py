"""Per-trial progress of one fine-tuning batch, as the sweep service shows it.

A batch runs its networks in blocks, one block after another (one block per dataset on
CPU), so at any moment only the running block's networks are being computed.  The
reports say so, per trial, through ``report(index, payload)`` (``index`` into the
batch's trial list):

- ``preparing``: the batch makes its datasets (and the oracle PT weights), for all;
- ``pretrain``: the "trained" PT mode trains the PT networks, for all;
- ``queued_in_batch``: the batch runs, but this trial's block has not started;
- ``finetune``: its block trains now; ``step`` and train ``loss`` of its column;
- ``leg_done``: its column reached the end of its leg (``leg_steps``) unfinished; it
  continues from its saved state in a later batch;
- ``done``: its column stopped (``step``, ``loss``, ``stop_reason``); the batch still
  runs other blocks, and the result is returned with the whole batch.  With
  ``outcome_of`` the report also carries the trial's finished ``outcome`` (its result
  record), so a dispatcher that stops, kills or loses the batch before it returns can
  keep the trials that had finished (``workers.runtime.ProgressBoard.finished``).

Every payload carries ``steps`` (the step budget), ``elapsed_s`` (since the batch
started), ``started_at`` (the batch's start, Unix time) and ``updated_at``.  Reports of
running columns are throttled to one round per ``every_s``; phase changes and finished
columns are always reported.  A callback that raises is dropped: progress is best
effort and never fails a batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from workers.dln.gd_types import LEG_END

IndexReport = Callable[[int, dict[str, Any]], None]


class BatchProgress:
    """Throttled per-trial reports of one batch of ``count`` trials."""

    def __init__(
        self,
        report: IndexReport | None,
        count: int,
        max_steps: int,
        every_s: float = 1.0,
        outcome_of: Callable[[int, tuple], dict[str, Any] | None] | None = None,
    ) -> None:
        self.report = report
        self.outcome_of = outcome_of
        self.count = count
        self.max_steps = max_steps
        self.every_s = every_s
        self.started_at = time.time()
        self._start = time.monotonic()
        self._last = -math.inf
        self._finished: set[int] = set()
        self._training: set[int] = set()

    def _send(self, index: int, phase: str, **fields: Any) -> None:
        if self.report is None:
            return
        payload = {
            "phase": phase,
            **fields,
            "steps": self.max_steps,
            "elapsed_s": round(time.monotonic() - self._start, 3),
            "started_at": self.started_at,
            "updated_at": time.time(),
        }
        try:
            self.report(index, payload)
        except Exception:  # noqa: BLE001 - progress is best effort, never fatal
            self.report = None

    def phase(self, phase: str) -> None:
        """Every trial not finished enters ``phase`` (reported at once)."""
        self._training.clear()
        for index in range(self.count):
            if index not in self._finished:
                self._send(index, phase)

    def observe(
        self, step: int, training: Mapping[int, float], finished: Mapping[int, tuple]
    ) -> None:
        """A stopping check of the running block (``workers.dln._block.CheckObserver``):
        ``finished`` maps a job index to its record ``(s-, s+, loss, steps, reason, state)``."""
        for index, record in finished.items():
            self._finished.add(index)
            self._training.discard(index)
            _, _, loss, steps, reason, _ = record
            if reason == LEG_END:
                # The end of a leg (GDOptions.leg_steps): it goes on in a later batch.
                self._send(index, "leg_done", step=int(steps), loss=_finite(loss))
                continue
            extra = {}
            if self.outcome_of is not None and self.report is not None:
                outcome = self.outcome_of(index, record)
                if outcome is not None:
                    extra["outcome"] = outcome
            self._send(
                index, "done", step=int(steps), loss=_finite(loss), stop_reason=reason, **extra
            )
        now = time.monotonic()
        fresh = [index for index in training if index not in self._training]
        due = now - self._last >= self.every_s
        for index, loss in training.items():
            if due or index not in self._training:
                self._send(index, "finetune", step=int(step), loss=_finite(loss))
        self._training.update(fresh)
        if due:
            self._last = now


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
