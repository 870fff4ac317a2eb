"""The rows that calibrate ``plan``'s cost model (``service.scheduling.calibration``).

Stored succeeded trials of one workload that ran on this deployment, with their steps
and measured ``wall_time_s``, newest first.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.scheduling.calibration import CalibrationRow
from service.store import transitions
from service.store.models import Trial

CALIBRATION_ROWS = 20_000


def calibration_rows(
    session: Session, workload: str, limit: int = CALIBRATION_ROWS
) -> list[CalibrationRow]:
    """The newest ``limit`` succeeded trials of ``workload`` with a wall time and steps."""
    rows = session.execute(
        select(Trial.params, Trial.execution, Trial.metrics, Trial.wall_time_s, Trial.device)
        .where(
            Trial.workload == workload,
            Trial.status == transitions.SUCCEEDED,
            Trial.wall_time_s.is_not(None),
        )
        .order_by(Trial.finished_at.desc())
        .limit(limit)
    )
    out = []
    for params, execution, metrics, wall, device in rows:
        steps = (metrics or {}).get("steps")
        if isinstance(steps, int) and "D" in params and "alpha" in params:
            out.append(CalibrationRow(params, execution or {}, steps, float(wall), device or "cpu"))
    return out
