"""Aggregates the ``/metrics`` gauges read from the store at scrape time.

Each is one index-friendly aggregate: trials grouped by (status, workload) (the claim
index leads with status), pending trials per submitter through ``sweep_trials``, the
cache-hit ratio from the sweeps' own counters, and distinct lease owners.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from service.store import transitions
from service.store.events import latest_seq
from service.store.models import Sweep, SweepTrial, Trial


@dataclass(frozen=True)
class StoreSnapshot:
    trials: dict[tuple[str, str], int]
    queue_depth: dict[str, int]
    cache_hit_ratio: float
    lease_owners: int
    latest_seq: int


def snapshot(session: Session) -> StoreSnapshot:
    """The store-side numbers of one scrape."""
    trials = {
        (status, workload): count
        for status, workload, count in session.execute(
            select(Trial.status, Trial.workload, func.count()).group_by(
                Trial.status, Trial.workload
            )
        )
    }
    # A trial two submitters asked for counts for both: it is in both their queues.
    queue = dict(
        session.execute(
            select(Sweep.submitter, func.count(distinct(Trial.id)))
            .join(SweepTrial, SweepTrial.sweep_id == Sweep.id)
            .join(Trial, Trial.id == SweepTrial.trial_id)
            .where(Trial.status == transitions.PENDING)
            .group_by(Sweep.submitter)
        ).all()
    )
    requested, cached = session.execute(
        select(
            func.coalesce(func.sum(Sweep.trial_count), 0),
            func.coalesce(func.sum(Sweep.cached_count), 0),
        )
    ).one()
    owners = session.scalar(
        select(func.count(distinct(Trial.lease_owner))).where(
            Trial.status == transitions.RUNNING, Trial.lease_expires_at > transitions.utcnow()
        )
    )
    return StoreSnapshot(
        trials=trials,
        queue_depth=queue,
        cache_hit_ratio=(cached / requested) if requested else 0.0,
        lease_owners=owners or 0,
        latest_seq=latest_seq(session),
    )
