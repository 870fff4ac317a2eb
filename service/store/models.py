"""ORM rows.  Rows never leave ``service/store``: repo functions turn them into wire
schemas or plain records.  The schema itself is made only by Alembic
(``migrations/versions``); keep the two in lockstep (a test compares them).

Layout:
- ``sweeps``: one row per submitted spec (who, when, priority, idempotency key; for a
  refine sweep, its round and why refinement stopped).
- ``trials``: one row per *distinct* trial key (content hash of the canonical config).
  A trial holds its parameters as typed, indexed numeric columns, its status and lease,
  and — once finished — its result beside the theory predictions.  Keeping the result
  on the trial row makes "exactly one result per trial" structural and a results query
  a single-table, index-backed scan.
- ``sweep_trials``: which sweep asked for which trial (a trial shared by two sweeps runs
  once; ``cached`` marks trials that already had a result when the sweep arrived).
- ``theory_predictions``: the asymptotic (replica) value, computed once per parameter
  set (not per seed or D) and shared by every simulation of it.
- ``events``: the append-only event sequence of sweeps (``service/store/events.py``);
  ``trials.updated_seq`` is the id of the event that recorded a trial's latest change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from service.store.clock import as_utc

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The partial index of the theory reconciler (service/dispatch/theory_ledger.py).
MISSING_THEORY_WHERE = (
    "status = 'succeeded' AND gen_error_asymptotic IS NULL AND theory_key IS NOT NULL"
)

# The partial index of the refinement controller (service/refine/controller.py).
REFINING_WHERE = "refine_round IS NOT NULL AND refine_stop IS NULL"


class UtcDateTime(TypeDecorator[datetime]):
    """``TIMESTAMP WITH TIME ZONE`` that reads back timezone-aware on every backend.

    SQLite keeps no offset and hands back naive datetimes (stored as UTC); every
    timestamp leaving the store must carry its offset (RFC 3339 ``date-time`` on the
    wire), so the fix is here, once, not at each reader.  Same DDL as
    ``DateTime(timezone=True)``: no migration."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return as_utc(value)


# BigInteger ids on PostgreSQL, but SQLite only autoincrements INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Sweep(Base):
    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    workload: Mapped[str] = mapped_column(String(64), index=True)
    submitter: Mapped[str] = mapped_column(String(128), index=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_hash: Mapped[str] = mapped_column(String(64))
    # Unique per submitter (uq_sweeps_submitter_idempotency_key): keys of different users
    # never meet.
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    trial_count: Mapped[int] = mapped_column(Integer)
    cached_count: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    # Fair share (migration 0005): ci | interactive | batch, and the GPU-seconds the sweep
    # asked for at submit (quotas count requested resources, as Kueue does).
    priority_class: Mapped[str] = mapped_column(String(16), default="interactive")
    requested_gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)

    # Adaptive refinement (migration 0007): the round a refine sweep is in (None: not a
    # refine sweep) and why it stopped (None while it refines); changed only through
    # service/store/transitions.py.
    refine_round: Mapped[int | None] = mapped_column(Integer)
    refine_stop: Mapped[str | None] = mapped_column(String(16))
    # Settings a spec with on_invalid: skip left out, with why (migration 0011): a list
    # of {params, reason, loc, type, trials}; None when nothing was skipped.
    skipped_settings: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)

    __table_args__ = (
        UniqueConstraint(
            "submitter", "idempotency_key", name="uq_sweeps_submitter_idempotency_key"
        ),
        Index("ix_sweeps_submitter_created_at", "submitter", "created_at"),
        # The refinement controller's scan: refine sweeps still refining.
        Index(
            "ix_sweeps_refining",
            "id",
            sqlite_where=text(REFINING_WHERE),
            postgresql_where=text(REFINING_WHERE),
        ),
    )


class SweepTrial(Base):
    __tablename__ = "sweep_trials"

    sweep_id: Mapped[str] = mapped_column(
        ForeignKey("sweeps.id", ondelete="CASCADE"), primary_key=True
    )
    trial_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    cached: Mapped[bool] = mapped_column(Boolean, default=False)


class Trial(Base):
    __tablename__ = "trials"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    workload: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    execution: Mapped[dict[str, Any]] = mapped_column(JSON)
    batch_key: Mapped[str] = mapped_column(String(64))
    # Trials with one group key share a dataset or a theory curve (service/expand.py).
    group_key: Mapped[str] = mapped_column(String(64))
    theory_key: Mapped[str | None] = mapped_column(String(64), index=True)

    # Typed copies of the parameters that queries filter on (THEORY.md names).
    c_pt: Mapped[float | None] = mapped_column(Float, index=True)
    lambda_pt: Mapped[float | None] = mapped_column(Float, index=True)
    gamma_ft: Mapped[float | None] = mapped_column(Float, index=True)
    rho_pt: Mapped[float | None] = mapped_column(Float, index=True)
    rho_ft: Mapped[float | None] = mapped_column(Float, index=True)
    omega: Mapped[float | None] = mapped_column(Float, index=True)
    alpha: Mapped[float | None] = mapped_column(Float, index=True)
    a_pt: Mapped[float | None] = mapped_column(Float)
    sigma0: Mapped[float | None] = mapped_column(Float)
    dim: Mapped[int | None] = mapped_column("D", Integer, index=True)
    seed: Mapped[int | None] = mapped_column(Integer, index=True)

    # Scheduling state; changed only through service/store/transitions.py.
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Latest progress report of a running trial (phase, step, epoch, loss; migration 0003).
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Fair share (migration 0005): whose queue the trial waits in (the submitter of the
    # sweep that created it) and its place in that queue: priority class first, then
    # priority (service/scheduling/fair_share.py: claim_rank).
    owner: Mapped[str] = mapped_column(String(128), default="anonymous")
    claim_rank: Mapped[int] = mapped_column(Integer, default=0)
    # Id of the event that recorded this trial's latest change (``?since=``; migration
    # 0006).  Negative only inside the transaction that changes it (a stamp).
    updated_seq: Mapped[int | None] = mapped_column(BigInteger, index=True)

    # Result, beside its theory predictions.
    gen_error_sim: Mapped[float | None] = mapped_column(Float)
    gen_error_theory: Mapped[float | None] = mapped_column(Float)
    gen_error_asymptotic: Mapped[float | None] = mapped_column(Float)
    residual_theory: Mapped[float | None] = mapped_column(Float)
    residual_asymptotic: Mapped[float | None] = mapped_column(Float)
    regime_theory: Mapped[str | None] = mapped_column(String(8))
    regime_empirical: Mapped[str | None] = mapped_column(String(8))
    l_order_theory: Mapped[float | None] = mapped_column(Float)
    pd_theory: Mapped[float | None] = mapped_column(Float)
    l_order_empirical: Mapped[float | None] = mapped_column(Float)
    pd_empirical: Mapped[float | None] = mapped_column(Float)
    classifier_version: Mapped[str | None] = mapped_column(String(32))
    diverged: Mapped[bool | None] = mapped_column(Boolean)
    stop_reason: Mapped[str | None] = mapped_column(String(32))
    wall_time_s: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Reproducibility envelope (DESIGN.md): code version, library versions, device, dtype.
    device: Mapped[str | None] = mapped_column(String(64))
    dtype: Mapped[str | None] = mapped_column(String(16))
    code_version: Mapped[str | None] = mapped_column(String(64))
    envelope: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        # The dispatcher's claim query: pending trials by priority, then age.
        Index("ix_trials_lease", "status", "lease_expires_at"),
        # Regime + parameter range queries (GET /v1/results) ordered by id.
        Index("ix_trials_regime_theory_id", "regime_theory", "id"),
        Index("ix_trials_regime_empirical_id", "regime_empirical", "id"),
        Index("ix_trials_workload_batch", "workload", "batch_key"),
        # sort=±gen_error_sim among succeeded trials (migration 0002 explains why).
        Index("ix_trials_status_gen_error_sim", "status", "gen_error_sim", "id"),
        # The fair-share claim: one owner's pending trials in queue order (migration 0005).
        Index("ix_trials_fair_claim", "status", "owner", "claim_rank", "id"),
        # Claims take whole groups: a group's pending trials (migration 0010).
        Index("ix_trials_group_status", "group_key", "status"),
        # Succeeded trials still waiting for their shared replica value (migration 0004).
        Index(
            "ix_trials_missing_theory",
            "theory_key",
            sqlite_where=text(MISSING_THEORY_WHERE),
            postgresql_where=text(MISSING_THEORY_WHERE),
        ),
    )


# The plain claim and the head of the queue, ORDER BY priority DESC, id, as one index
# range (with an ascending priority PostgreSQL sorted every pending trial; migration 0005).
Index("ix_trials_claim", Trial.status, Trial.priority.desc(), Trial.id)


class TrialState(Base):
    """Where a trial run in legs (execution ``leg_steps``) stopped: the state its next
    leg continues from (migration 0012).  Written with the leg's end, read by the claim,
    deleted with the trial's result; changed only through service/store/transitions.py.
    """

    __tablename__ = "trial_states"

    trial_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True
    )
    # Training steps done so far (the state's own step; it guards the next leg's write).
    step: Mapped[int] = mapped_column(Integer)
    # ``workers.dln.gd_types.GDState.to_bytes``: an .npz of float64 arrays.
    state: Mapped[bytes] = mapped_column(LargeBinary)
    # Compute seconds of the legs so far, and how many there were.
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    legs: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class TheoryPrediction(Base):
    __tablename__ = "theory_predictions"

    theory_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    gen_error: Mapped[float | None] = mapped_column(Float)
    reliable: Mapped[bool | None] = mapped_column(Boolean)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class User(Base):
    """A person or a service account (CI).  With auth off, every submitter name gets a
    row of kind ``local`` on its first submit, so fair share and quotas work the same."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # user | service | local
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Fair share: the user's share weight, and usage (claimed trials) decayed at the
    # half-life of the settings, as of ``usage_at``.
    share: Mapped[float] = mapped_column(Float, default=1.0)
    usage: Mapped[float] = mapped_column(Float, default=0.0)
    usage_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Quotas; NULL means the default of the settings.
    max_queued_trials: Mapped[int | None] = mapped_column(Integer)
    max_running_trials: Mapped[int | None] = mapped_column(Integer)
    gpu_seconds_per_window: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ApiKey(Base):
    """An API key: only its SHA-256 is stored; ``prefix`` is the visible part."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(128), default="")
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class AuditEntry(Base):
    """Append-only: who did what to which resource, from where, with what result."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str | None] = mapped_column(String(128), index=True)
    actor_kind: Mapped[str | None] = mapped_column(String(16))
    client_address: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    resource: Mapped[str | None] = mapped_column(String(200))
    result_code: Mapped[int] = mapped_column(Integer)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class BenchmarkRun(Base):
    """One CI benchmark run of a suite: its git context, machine, mode and (once judged)
    its status; its measured values and per-metric verdicts are ``benchmark_values``."""

    __tablename__ = "benchmark_runs"
    __table_args__ = (
        UniqueConstraint("submitter", "idempotency_key", name="uq_benchmark_runs_idempotency"),
        Index("ix_benchmark_runs_history", "suite", "machine", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    suite: Mapped[str] = mapped_column(String(128))
    suite_version: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))  # run_here | byo
    status: Mapped[str] = mapped_column(String(16))  # running | pass | fail | error | inconclusive
    submitter: Mapped[str] = mapped_column(String(128))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    repository: Mapped[str | None] = mapped_column(String(200))
    commit: Mapped[str | None] = mapped_column(String(64), index=True)
    branch: Mapped[str | None] = mapped_column(String(200))
    base_commit: Mapped[str | None] = mapped_column(String(64))
    pr_number: Mapped[int | None] = mapped_column(Integer)
    machine: Mapped[str] = mapped_column(String(64))
    machine_info: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    source: Mapped[str | None] = mapped_column(String(200))
    sweep_ids: Mapped[list[str]] = mapped_column(JSON)
    measurements: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    options: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    verdict: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class BenchmarkValue(Base):
    """One metric's value in one run, with its samples, source and verdict outcome."""

    __tablename__ = "benchmark_values"
    __table_args__ = (UniqueConstraint("run_id", "metric", name="uq_benchmark_values_run_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(
        ForeignKey("benchmark_runs.id", ondelete="CASCADE"), index=True
    )
    metric: Mapped[str] = mapped_column(String(300), index=True)
    value: Mapped[float | None] = mapped_column(Float)
    samples: Mapped[list[float] | None] = mapped_column(JSON)
    theory: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(200))  # service | byo:<caller's label>
    outcome: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ack_reason: Mapped[str | None] = mapped_column(Text)


class BenchmarkThreshold(Base):
    """A policy override for one suite metric (thresholds as data, not code)."""

    __tablename__ = "benchmark_thresholds"
    __table_args__ = (UniqueConstraint("suite", "metric", name="uq_benchmark_thresholds_suite"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    suite: Mapped[str] = mapped_column(String(128))
    metric: Mapped[str] = mapped_column(String(300))
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Event(Base):
    """One entry of a sweep's event sequence; ``id`` is the sequence number."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sweep_id: Mapped[str] = mapped_column(ForeignKey("sweeps.id"))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_events_sweep_id_id", "sweep_id", "id"),)
