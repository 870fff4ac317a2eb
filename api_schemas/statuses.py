"""Trial and sweep statuses: one enum each, used by the wire, the store and the CLI.

Standard library only, so the frozen records that cross into Ray workers
(``workers/records.py``) can use them without pulling in pydantic.
"""

from __future__ import annotations

from enum import StrEnum


class TrialStatus(StrEnum):
    """A trial's state (DESIGN.md "Status machine"); changed only by
    ``service.store.transitions``."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SweepStatus(StrEnum):
    """A sweep's status, derived from its trials' counts (never stored)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PARTIAL = "partial"


FINAL_TRIAL_STATES: frozenset[TrialStatus] = frozenset(
    {TrialStatus.SUCCEEDED, TrialStatus.FAILED, TrialStatus.CANCELLED}
)
ACTIVE_TRIAL_STATES: frozenset[TrialStatus] = frozenset({TrialStatus.PENDING, TrialStatus.RUNNING})
FINAL_SWEEP_STATES: frozenset[SweepStatus] = frozenset(
    {SweepStatus.SUCCEEDED, SweepStatus.FAILED, SweepStatus.CANCELLED, SweepStatus.PARTIAL}
)
