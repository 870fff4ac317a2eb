"""What to do when a batch raises: pure policy, no database.

A batch of several trials is split in halves and both are retried at once (the claims
and their attempts stay as they are: one bad trial must not cost its neighbours an
attempt).  A trial that fails alone is retried through pending until ``max_attempts``;
an error that will fail again (the trial's config is at fault) fails it at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.dispatch.batching import Batch
from workers.records import ClaimedTrial

# Exceptions that will fail again on retry: the trial's config is at fault.
PERMANENT_ERRORS = (ValueError, TypeError, KeyError, ZeroDivisionError)


@dataclass(frozen=True)
class Split:
    """Retry the batch as two halves."""


@dataclass(frozen=True)
class Retry:
    """Return the trial to pending for another attempt."""

    trial: ClaimedTrial
    message: str


@dataclass(frozen=True)
class Fail:
    """Fail the trial for good."""

    trial: ClaimedTrial
    message: str


Decision = Split | Retry | Fail


def describe(exc: BaseException) -> str:
    """``Type: message`` of the underlying error (Ray wraps a task's exception)."""
    cause = getattr(exc, "cause", None) or exc
    return f"{type(cause).__name__}: {cause}"[:4000]


def decide(batch: Batch, exc: BaseException, max_attempts: int) -> Decision:
    """The policy above, for ``batch`` failing with ``exc``."""
    if len(batch.trials) > 1:
        return Split()
    trial = batch.trials[0]
    cause = getattr(exc, "cause", None) or exc
    message = describe(exc)
    if isinstance(cause, PERMANENT_ERRORS) or trial.attempt >= max_attempts:
        return Fail(trial, message)
    return Retry(trial, message)
