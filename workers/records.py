"""Frozen records that cross the seams: spec → store → Ray → store.

- :class:`PlannedTrial`: what expanding a spec produces (``service.expand``) and the store
  inserts;
- :class:`ClaimedTrial`: what the store's claim returns and what crosses into a Ray task
  (plain data: no ORM row, no engine, no session);
- :class:`TrialOutcome`: what every workload returns per trial; its fields are the
  worker-filled columns of ``api_schemas.result_columns.RESULT_COLUMNS`` (derived from
  it, so the record and the store cannot drift apart);
- :class:`TheoryValue` and :class:`BatchOutput`: a batch's outcomes and the replica
  predictions it computed;
- :class:`AdmissionProblem`: a workload's submit-time objection, neutral of HTTP (the
  service turns it into a 422 with a field path).

Standard library only (``api_schemas.statuses`` and ``api_schemas.result_columns`` are
stdlib-only too), so workers, the store and the dispatcher share them at no cost.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from api_schemas.result_columns import OUTCOME_COLUMNS
from api_schemas.statuses import TrialStatus


@dataclass(frozen=True)
class PlannedTrial:
    """One expanded trial: its content-addressed key and the keys it is grouped by."""

    key: str
    batch_key: str
    group_key: str
    theory_key: str | None
    params: dict[str, Any]
    seed: int | None
    execution: dict[str, Any]


@dataclass(frozen=True)
class SkippedSetting:
    """A setting (one combination of the spec's values, all its seeds) that a spec with
    ``on_invalid: skip`` left out, and why: ``loc`` is the spec field that set the value
    at fault (as in a 422), ``kind`` the error type, ``trials`` how many trials (seeds)
    it would have had."""

    params: dict[str, Any]
    reason: str
    loc: tuple[str | int, ...]
    kind: str
    trials: int


@dataclass(frozen=True)
class ClaimedTrial:
    """A trial this dispatcher holds a lease on, as it crosses into a worker.

    ``attempt`` is the trial's attempt count at the claim: every write of this claim's
    result is guarded by (lease owner, attempt), so a late result of an earlier claim is
    discarded even when the same dispatcher has re-claimed the trial since.
    ``context`` holds deployment facts a trial needs but that are not part of its key
    (the checkpoint and CIFAR-100 directories).
    """

    trial_id: int
    attempt: int
    workload: str
    params: dict[str, Any]
    seed: int | None
    execution: dict[str, Any]
    batch_key: str = ""
    group_key: str = ""
    theory_key: str | None = None
    priority: int = 0
    # Whose queue the trial waited in (fair share charges its usage to this user).
    owner: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    # A trial run in legs (execution ``leg_steps``) continues from the state its last
    # leg saved: the blob (``GDState.to_bytes``), its step (which also guards the write
    # of this leg's end, see ``service.store.transitions.continue_running``) and the
    # compute seconds and the number of the earlier legs (added to the final
    # ``wall_time_s`` and ``metrics["legs"]``).
    resume_state: bytes | None = field(default=None, repr=False)
    resume_step: int = 0
    resume_seconds: float = 0.0
    resume_legs: int = 0


@dataclass(frozen=True)
class TheoryValue:
    """A replica prediction (THEORY.md §3) for one theory key."""

    gen_error: float | None
    reliable: bool | None = True
    details: dict[str, Any] = field(default_factory=dict)


_PYTHON_TYPES: dict[str, Any] = {
    "float": float | None,
    "int": int | None,
    "str": str | None,
    "bool": bool | None,
    "json": dict | None,
    "datetime": datetime | None,
}


def _finite(value: Any) -> Any:
    """Non-finite floats become None (PostgreSQL JSON and the wire reject NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _OutcomeMethods:
    """Constructors and views of :class:`TrialOutcome` (its fields are generated)."""

    @classmethod
    def succeeded(cls, **columns: Any) -> TrialOutcome:
        """A result; unknown column names are an error (the contract is closed)."""
        return cls(status=TrialStatus.SUCCEEDED, **{k: _finite(v) for k, v in columns.items()})

    @classmethod
    def failed(cls, error: str) -> TrialOutcome:
        return cls(status=TrialStatus.FAILED, error=str(error)[:4000])

    @classmethod
    def continuing(cls, state: bytes, steps: int, seconds: float) -> TrialOutcome:
        """Not a result: the trial's leg ended unfinished; it goes back to pending and
        continues from ``state`` in a later batch (``steps`` so far, this leg's seconds)."""
        return cls(
            status=TrialStatus.PENDING,
            continue_from=state,
            metrics={"steps": int(steps)},
            wall_time_s=float(seconds),
        )

    @property
    def continues(self) -> bool:
        return self.continue_from is not None

    @classmethod
    def from_metrics(cls, metrics: Mapping[str, Any], **columns: Any) -> TrialOutcome:
        """A result whose columns are taken from ``metrics`` by name (the rest of
        ``metrics`` is kept whole in the ``metrics`` column); ``columns`` override."""
        picked = {c.name: metrics.get(c.name) for c in OUTCOME_COLUMNS if c.name in metrics}
        picked["metrics"] = dict(metrics)
        picked.update(columns)
        return cls.succeeded(**picked)

    def columns(self) -> dict[str, Any]:
        """``{column: value}`` of every outcome column."""
        return {c.name: getattr(self, c.name) for c in OUTCOME_COLUMNS}

    @property
    def ok(self) -> bool:
        return self.status == TrialStatus.SUCCEEDED


TrialOutcome = dataclasses.make_dataclass(
    "TrialOutcome",
    [
        ("status", TrialStatus),
        ("error", str | None, field(default=None)),
        ("continue_from", bytes | None, field(default=None, repr=False)),
        *((c.name, _PYTHON_TYPES[c.kind], field(default=None)) for c in OUTCOME_COLUMNS),
    ],
    bases=(_OutcomeMethods,),
    frozen=True,
)
TrialOutcome.__module__ = __name__
TrialOutcome.__doc__ = (
    "What a workload returns for one trial: ``status`` (succeeded | failed), ``error`` for "
    "a failure, and one field per worker-filled result column of RESULT_COLUMNS. "
    "A trial run in legs whose leg ended unfinished comes back as ``continuing`` "
    "(status pending, ``continue_from`` the state blob): not a result. "
    "Numerical trouble (divergence, out of memory, a time limit) is a succeeded outcome "
    "with its flags, never an exception."
)


@dataclass
class BatchOutput:
    """A batch's outcomes (same order as its trials) and the replica values it computed
    (``{theory key: TheoryValue}``); ``wall_time_s`` as measured inside the worker."""

    outcomes: tuple[Any, ...]
    theory: dict[str, TheoryValue] = field(default_factory=dict)
    wall_time_s: float = 0.0


@dataclass(frozen=True)
class AdmissionProblem:
    """Why a workload refuses a trial at submit time, neutral of HTTP.

    ``field`` is the path inside the spec (``("params", "steps")``); ``setting`` names
    the service setting behind a limit (``"limits.max_steps"``), so the service can tell
    the user which environment variable raises it.
    """

    field: tuple[str | int, ...]
    message: str
    kind: str
    setting: str | None = None
