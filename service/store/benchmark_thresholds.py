"""Benchmark thresholds: per suite metric policy overrides (thresholds as data).  All
their SQL; callers get frozen records.  Functions only ``flush()``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.errors import Conflict, NotFound
from service.store.models import BenchmarkThreshold


@dataclass(frozen=True)
class ThresholdRecord:
    id: str
    suite: str
    metric: str
    policy: dict[str, Any]
    note: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime


def _threshold(row: BenchmarkThreshold) -> ThresholdRecord:
    return ThresholdRecord(
        row.id,
        row.suite,
        row.metric,
        dict(row.policy),
        row.note,
        row.created_by,
        row.created_at,
        row.updated_at,
    )


def thresholds(session: Session, suite: str | None = None) -> list[ThresholdRecord]:
    query = select(BenchmarkThreshold).order_by(BenchmarkThreshold.suite, BenchmarkThreshold.metric)
    if suite is not None:
        query = query.where(BenchmarkThreshold.suite == suite)
    return [_threshold(row) for row in session.scalars(query)]


def create_threshold(
    session: Session, suite: str, metric: str, policy: dict, note: str | None, by: str
) -> ThresholdRecord:
    """A new override (409 when the suite metric already has one)."""
    if session.scalar(
        select(BenchmarkThreshold.id).where(
            BenchmarkThreshold.suite == suite, BenchmarkThreshold.metric == metric
        )
    ):
        raise Conflict(f"suite {suite!r} metric {metric!r} already has a threshold; update it")
    now = datetime.now(UTC)
    row = BenchmarkThreshold(
        id=uuid.uuid4().hex,
        suite=suite,
        metric=metric,
        policy=policy,
        note=note,
        created_by=by,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return _threshold(row)


def update_threshold(
    session: Session, threshold_id: str, policy: dict, note: str | None
) -> ThresholdRecord:
    row = session.get(BenchmarkThreshold, threshold_id)
    if row is None:
        raise NotFound(f"no benchmark threshold with id {threshold_id!r}")
    row.policy, row.note, row.updated_at = policy, note, datetime.now(UTC)
    session.flush()
    return _threshold(row)


def delete_threshold(session: Session, threshold_id: str) -> None:
    result = session.execute(
        delete(BenchmarkThreshold).where(BenchmarkThreshold.id == threshold_id)
    )
    if result.rowcount != 1:
        raise NotFound(f"no benchmark threshold with id {threshold_id!r}")
