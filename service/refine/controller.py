"""The refinement controller: turns a refine sweep's finished round into the next one.

The dispatcher calls :func:`advance_refinements` now and then (``service/dispatch/loop.py``,
phase ``refine``).  For each refine sweep still refining whose trials are all final, it
reads every trial's values, decides the next round with the pure algorithm
(``service/refine/cells.py``) and either stops the refinement with a reason or adds
the round's points to the same sweep as ordinary content-addressed trials
(``service/store/rounds.add_round``): new points are pending and the dispatcher claims
and batches them as usual; points with a result already (another sweep, a resubmission)
are cached, never rerun, and the next round is decided at once.  Each round is one
transaction guarded by the round it expects, so concurrent dispatchers cannot add one
round twice.  The budget counts trials (points × seeds) and is never exceeded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from api_schemas.spec import SweepSpec
from service.errors import SpecRejected
from service.expand import expand_spec
from service.refine.cells import plan_round
from service.refine.lattice import as_params
from service.refine.state import view_of
from service.settings import LimitSettings
from service.store import refine as refine_store
from service.store import rounds, transitions
from service.store.refine import RefineInputs
from service.store.session import session_scope
from workers.records import PlannedTrial

log = logging.getLogger("sweeps.refine")
# Rounds decided in one call for one sweep when every new point is already cached.
MAX_ROUNDS_PER_CALL = 64
_ACTIVE = (transitions.PENDING, transitions.RUNNING)


@dataclass(frozen=True)
class RoundDecision:
    """Stop with ``stop`` (a reason), or run ``planned`` (the round's trials)."""

    stop: str | None
    planned: tuple[PlannedTrial, ...] = ()


def decide_round(inputs: RefineInputs, limits: LimitSettings) -> RoundDecision:
    """The next round of a refine sweep whose current round has finished (pure)."""
    if inputs.cancel_requested:
        return RoundDecision("cancelled")
    spec = SweepSpec.model_validate(inputs.spec)
    view = view_of(spec, inputs.records)
    capacity = max(0, view.refine.budget - inputs.trial_count) // view.seeds
    plan = plan_round(view.lattice, view.values, capacity, view.compare)
    if plan.stop is not None:
        return RoundDecision(plan.stop)
    points = as_params(view.lattice, plan.new_points)
    try:
        planned = expand_spec(spec, limits, refine_points=points)
    except SpecRejected as exc:
        log.warning("refine sweep %s: round points rejected: %s", inputs.sweep_id, exc.detail)
        return RoundDecision("error")
    return RoundDecision(None, tuple(planned))


def advance_sweep(
    session_factory: sessionmaker[Session], sweep_id: str, limits: LimitSettings
) -> bool:
    """Decide and apply rounds of one sweep until one has work to run, refinement stops
    or another dispatcher got there first; returns whether anything changed."""
    changed = False
    for _ in range(MAX_ROUNDS_PER_CALL):
        with session_scope(session_factory) as session:
            inputs = refine_store.refine_inputs(session, sweep_id)
            if not inputs.refining or any(r["status"] in _ACTIVE for r in inputs.records):
                return changed
            decision = decide_round(inputs, limits)
            if decision.stop is not None:
                stopped = transitions.finish_refinement(
                    session, sweep_id, inputs.round, decision.stop
                )
                if stopped:
                    log.info(
                        "refine sweep %s stopped after round %d: %s",
                        sweep_id,
                        inputs.round,
                        decision.stop,
                    )
                return changed or stopped
            stored = rounds.add_round(session, sweep_id, inputs.round, decision.planned)
            if stored is None:
                return changed
            changed = True
            log.info(
                "refine sweep %s round %d: %d trials (%d cached)",
                sweep_id,
                inputs.round + 1,
                len(stored.ids),
                len(stored.cached_ids),
            )
            if stored.new_ids:
                return True
    return changed


def advance_refinements(
    session_factory: sessionmaker[Session], limits: LimitSettings, *, limit: int = 16
) -> bool:
    """One pass over the refine sweeps whose round has finished; whether any changed."""
    with session_scope(session_factory) as session:
        ready = refine_store.ready_sweeps(session, limit)
    changed, failure = False, None
    for sweep_id in ready:
        try:
            changed |= advance_sweep(session_factory, sweep_id, limits)
        except Exception as exc:  # noqa: BLE001 - one sweep must not stop the others
            log.exception("refine sweep %s: round failed", sweep_id)
            failure = failure or exc
    if failure is not None:
        raise failure
    return changed
