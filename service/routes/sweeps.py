"""Sweep endpoints: thin handlers over ``service.sweeps`` and ``service.store.sweeps``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from api_schemas.spec import SweepSpec
from api_schemas.wire import ErrorBody, SweepPage, SweepPlan, SweepRead, TrialPage, TrialStatus
from service import sweeps as sweep_service
from service.auth import policy
from service.deps import AuditDep, ReadableSweep, Reader, SessionDep, SettingsDep, Submitter
from service.store import sweeps as sweep_store

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])
ERRORS = {
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    404: {"model": ErrorBody},
    409: {"model": ErrorBody},
    422: {"model": ErrorBody},
}


@router.post(
    "",
    operation_id="create_sweep",
    response_model=SweepRead,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": SweepRead, "description": "idempotent replay"},
        429: {"model": ErrorBody, "description": "over a quota; see Retry-After"},
        **ERRORS,
    },
)
def create_sweep(
    spec: SweepSpec,
    session: SessionDep,
    settings: SettingsDep,
    principal: Submitter,
    audit: AuditDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> SweepRead:
    """Submit a sweep; an Idempotency-Key (per submitter) makes retries safe."""
    sweep, created = sweep_service.submit_sweep(
        session, spec, settings, principal.name, idempotency_key, kind=principal.kind
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    else:
        audit("sweep.create", f"sweep:{sweep.id}", 201, {"trials": sweep.trial_count})
    return sweep


@router.post("/plan", operation_id="plan_sweep", response_model=SweepPlan, responses=ERRORS)
def plan_sweep(
    spec: SweepSpec, session: SessionDep, settings: SettingsDep, _: Reader
) -> SweepPlan:
    """Dry run: trial count, cache hits, batches and estimated cost; writes nothing."""
    return sweep_service.plan_sweep(session, spec, settings)


@router.get("", operation_id="list_sweeps", response_model=SweepPage, responses=ERRORS)
def list_sweeps(
    session: SessionDep,
    settings: SettingsDep,
    principal: Reader,
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
        submitter=policy.restricted_to(principal, settings) or submitter,
    )


@router.get("/{sweep_id}", operation_id="get_sweep", response_model=SweepRead, responses=ERRORS)
def get_sweep(sweep_id: ReadableSweep, session: SessionDep, settings: SettingsDep) -> SweepRead:
    """One sweep: status, counts, progress, throughput, ETA, and why pending trials wait."""
    return sweep_service.sweep_with_wait(session, sweep_id, settings)


@router.post(
    "/{sweep_id}/cancel", operation_id="cancel_sweep", response_model=SweepRead, responses=ERRORS
)
def cancel_sweep(
    sweep_id: str, session: SessionDep, principal: Submitter, audit: AuditDep
) -> SweepRead:
    """Cancel pending trials and running batches that no other live sweep needs (owner
    or admin)."""
    sweep = sweep_service.cancel_sweep(session, sweep_id, principal)
    audit("sweep.cancel", f"sweep:{sweep_id}", 200, {"owner": sweep.submitter})
    return sweep


@router.get(
    "/{sweep_id}/trials",
    operation_id="list_sweep_trials",
    response_model=TrialPage,
    responses=ERRORS,
)
def list_trials(
    sweep_id: ReadableSweep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
    status_: Annotated[TrialStatus | None, Query(alias="status")] = None,
) -> TrialPage:
    """The sweep's trials with status, attempts and errors (cursor-paginated)."""
    return sweep_store.list_trials(session, sweep_id, limit=limit, cursor=cursor, status=status_)
