"""Data access of adaptive refinement: which refine sweeps wait for their next round, and
what a round is decided from.  Rows never leave this module (plain frozen records do);
functions only flush.  Adding a round's trials is ``service/store/rounds.add_round``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from api_schemas.refine import REGIME_LABELS
from service.errors import SweepNotFound
from service.store import transitions
from service.store.models import Sweep, SweepTrial, Trial

# Columns a point's value may be computed from, beside the ``label`` column.
_LABEL_COLUMNS = (
    "regime_theory",
    "regime_empirical",
    "l_order_theory",
    "pd_theory",
    "l_order_empirical",
    "pd_empirical",
)


@dataclass(frozen=True)
class RefineInputs:
    """What one round is decided from: the sweep's state and every trial's values.

    ``records``: one dict per trial of the sweep (any status) with ``params``, ``seed``,
    ``status`` and the label columns (None unless the trial succeeded).
    """

    sweep_id: str
    name: str
    spec: dict[str, Any]
    round: int
    stop_reason: str | None
    cancel_requested: bool
    trial_count: int
    records: tuple[dict[str, Any], ...]

    @property
    def refining(self) -> bool:
        return self.stop_reason is None


def ready_sweeps(session: Session, limit: int = 16) -> list[str]:
    """Refine sweeps still refining whose trials are all final (the round finished),
    oldest first."""
    active = exists(
        select(SweepTrial.trial_id)
        .join(Trial, Trial.id == SweepTrial.trial_id)
        .where(
            SweepTrial.sweep_id == Sweep.id,
            Trial.status.in_([transitions.PENDING, transitions.RUNNING]),
        )
    )
    return list(
        session.scalars(
            select(Sweep.id)
            .where(Sweep.refine_round.is_not(None), Sweep.refine_stop.is_(None), ~active)
            .order_by(Sweep.created_at, Sweep.id)
            .limit(limit)
        )
    )


def refine_inputs(session: Session, sweep_id: str) -> RefineInputs:
    """The sweep's refinement state and its trials' values; ``SweepNotFound`` (404)
    for an unknown id.  Raises ValueError for a sweep that is not a refine sweep."""
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise SweepNotFound(f"no sweep with id {sweep_id!r}")
    if sweep.refine_round is None:
        raise ValueError(f"sweep {sweep_id} is not a refine sweep")
    on = (sweep.spec.get("refine") or {}).get("label", "regime_theory")
    names = list(dict.fromkeys((*_LABEL_COLUMNS, on)))
    if on not in REGIME_LABELS and not hasattr(Trial, on):
        names.remove(on)
    columns = [Trial.params, Trial.seed, Trial.status, *(getattr(Trial, n) for n in names)]
    rows = session.execute(
        select(*columns)
        .join(SweepTrial, SweepTrial.trial_id == Trial.id)
        .where(SweepTrial.sweep_id == sweep_id)
        .order_by(Trial.id)
    ).all()
    records = []
    for params, seed, status, *values in rows:
        record: dict[str, Any] = {"params": dict(params or {}), "seed": seed, "status": status}
        succeeded = status == transitions.SUCCEEDED
        record.update({n: (v if succeeded else None) for n, v in zip(names, values, strict=True)})
        records.append(record)
    return RefineInputs(
        sweep_id=sweep.id,
        name=sweep.name,
        spec=dict(sweep.spec),
        round=sweep.refine_round,
        stop_reason=sweep.refine_stop,
        cancel_requested=bool(sweep.cancel_requested),
        trial_count=sweep.trial_count,
        records=tuple(records),
    )
