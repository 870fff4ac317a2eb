"""Sweep endpoints: thin handlers over ``service.sweeps`` and ``service.store.sweeps``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from api_schemas.spec import SweepSpec
from api_schemas.wire import ErrorBody, SweepPage, SweepPlan, SweepRead, TrialPage, TrialStatus
from service import sweeps as sweep_service
from service.deps import SessionDep, SettingsDep, SubmitterDep
from service.store import sweeps as sweep_store

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])
ERRORS = {
    404: {"model": ErrorBody},
    409: {"model": ErrorBody},
    422: {"model": ErrorBody},
}


@router.post(
    "",
    operation_id="create_sweep",
    response_model=SweepRead,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": SweepRead, "description": "idempotent replay"}, **ERRORS},
)
def create_sweep(
    spec: SweepSpec,
    session: SessionDep,
    settings: SettingsDep,
    submitter: SubmitterDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> SweepRead:
    """Submit a sweep; an Idempotency-Key makes retries safe."""
    sweep, created = sweep_service.submit_sweep(session, spec, settings, submitter, idempotency_key)
    if not created:
        response.status_code = status.HTTP_200_OK
    return sweep


@router.post("/plan", operation_id="plan_sweep", response_model=SweepPlan, responses=ERRORS)
def plan_sweep(spec: SweepSpec, session: SessionDep, settings: SettingsDep) -> SweepPlan:
    """Dry run: trial count, cache hits, batches and estimated cost; writes nothing."""
    return sweep_service.plan_sweep(session, spec, settings)


@router.get("", operation_id="list_sweeps", response_model=SweepPage)
def list_sweeps(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    status_: Annotated[
        str | None,
        Query(alias="status", pattern="^(pending|running|succeeded|failed|cancelled|partial)$"),
    ] = None,
    name: str | None = None,
    tag: str | None = None,
    submitter: str | None = None,
) -> SweepPage:
    """List sweeps, newest first, filtered by status, name, tag or submitter."""
    return sweep_store.list_sweeps(
        session,
        limit=limit,
        offset=offset,
        status=status_,
        name=name,
        tag=tag,
        submitter=submitter,
    )


@router.get("/{sweep_id}", operation_id="get_sweep", response_model=SweepRead, responses=ERRORS)
def get_sweep(sweep_id: str, session: SessionDep) -> SweepRead:
    """One sweep: status, counts per status, progress, throughput and ETA."""
    return sweep_store.read_sweep(session, sweep_id)


@router.post(
    "/{sweep_id}/cancel", operation_id="cancel_sweep", response_model=SweepRead, responses=ERRORS
)
def cancel_sweep(sweep_id: str, session: SessionDep) -> SweepRead:
    """Cancel pending trials and running batches that no other live sweep needs."""
    return sweep_store.cancel_sweep(session, sweep_id)


@router.get(
    "/{sweep_id}/trials",
    operation_id="list_sweep_trials",
    response_model=TrialPage,
    responses=ERRORS,
)
def list_trials(
    sweep_id: str,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
    status_: Annotated[TrialStatus | None, Query(alias="status")] = None,
    since: Annotated[
        int | None, Query(ge=0, description="only trials changed after this event seq")
    ] = None,
) -> TrialPage:
    """The sweep's trials with status, attempts and errors (cursor-paginated)."""
    return sweep_store.list_trials(
        session, sweep_id, limit=limit, cursor=cursor, status=status_, since=since
    )
