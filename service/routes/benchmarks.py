"""Benchmark endpoints for CI: runs with verdicts, history, acknowledgements,
thresholds.  Thin handlers over ``service.benchmarks``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response, status

from api_schemas.benchmarks import (
    Acknowledgement,
    BenchmarkRunCreate,
    BenchmarkRunRead,
    MetricHistory,
    SuiteRead,
    ThresholdRead,
    ThresholdWrite,
)
from service.auth.policy import restricted_to
from service.benchmarks import lifecycle, runs
from service.benchmarks.suites import list_suites
from service.deps import AuditDep, Reader, SessionDep, SettingsDep, Submitter
from service.figures import benchmarks as figures
from service.routes.responses import BODY, errors

router = APIRouter(prefix="/v1/benchmarks", tags=["benchmarks"])
ERRORS = errors(*BODY, 404, 409)
SuiteName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=128)]


@router.get("/suites", operation_id="list_benchmark_suites", responses=ERRORS)
def get_suites(settings: SettingsDep, _: Reader) -> list[str]:
    """The names of the suites this service can run."""
    return list_suites(settings)


@router.get(
    "/suites/{suite}",
    operation_id="get_benchmark_suite",
    response_model=SuiteRead,
    responses=ERRORS,
)
def get_suite(suite: SuiteName, settings: SettingsDep, _: Reader) -> SuiteRead:
    """A suite's configs (labels for bring-your-own results) and metrics with policies."""
    return lifecycle.read_suite(settings, suite)


@router.post(
    "/{suite}/runs",
    operation_id="create_benchmark_run",
    response_model=BenchmarkRunRead,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": BenchmarkRunRead, "description": "idempotent replay"}, **ERRORS},
)
def create_run(
    suite: SuiteName,
    body: BenchmarkRunCreate,
    session: SessionDep,
    settings: SettingsDep,
    principal: Submitter,
    audit: AuditDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> BenchmarkRunRead:
    """Start a benchmark run (run here, or bring your own results); Idempotency-Key honoured."""
    run, created = runs.create_run(session, suite, body, settings, principal, idempotency_key)
    if created:
        audit("benchmark.run", f"benchmark_run:{run.id}", 201, {"suite": suite, "mode": run.mode})
    else:
        response.status_code = status.HTTP_200_OK
    return run


@router.get(
    "/runs/{run_id}",
    operation_id="get_benchmark_run",
    response_model=BenchmarkRunRead,
    responses=ERRORS,
)
def get_run(
    run_id: str, session: SessionDep, settings: SettingsDep, principal: Reader
) -> BenchmarkRunRead:
    """A run's status (pass | fail | error | inconclusive), baseline, policy and metrics."""
    return runs.read_run(session, run_id, settings, principal)


@router.post(
    "/runs/{run_id}/metrics/{metric:path}/acknowledge",
    operation_id="acknowledge_regression",
    response_model=BenchmarkRunRead,
    responses=ERRORS,
)
def acknowledge(
    run_id: str,
    metric: str,
    body: Acknowledgement,
    session: SessionDep,
    settings: SettingsDep,
    principal: Submitter,
    audit: AuditDep,
) -> BenchmarkRunRead:
    """Acknowledge a regression: it stays on the record and no longer fails the run."""
    run = lifecycle.acknowledge(session, run_id, metric, principal, body.reason, settings)
    audit("benchmark.acknowledge", f"benchmark_run:{run_id}", 200, {"metric": metric})
    return run


@router.get(
    "/{suite}/metrics/{metric:path}/history",
    operation_id="get_benchmark_history",
    response_model=MetricHistory,
    responses=ERRORS,
)
def history(
    suite: SuiteName,
    metric: str,
    session: SessionDep,
    settings: SettingsDep,
    principal: Reader,
    machine: str | None = None,
    branch: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MetricHistory:
    """The metric's value per run and commit, with the limits it was judged by (only the
    caller's runs when reads are restricted)."""
    owner = restricted_to(principal, settings)
    return lifecycle.metric_history(
        session, suite, metric, machine=machine, branch=branch, limit=limit, submitter=owner
    )


@router.get(
    "/{suite}/metrics/{metric:path}/figure",
    operation_id="render_benchmark_history",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **ERRORS},
)
def history_figure(
    suite: SuiteName,
    metric: str,
    session: SessionDep,
    settings: SettingsDep,
    principal: Reader,
    machine: str | None = None,
    branch: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """PNG of the metric's value per commit with the threshold band."""
    owner = restricted_to(principal, settings)
    history = lifecycle.metric_history(
        session, suite, metric, machine=machine, branch=branch, limit=limit, submitter=owner
    )
    return Response(figures.history_figure(history), media_type="image/png")


@router.get(
    "/thresholds",
    operation_id="list_benchmark_thresholds",
    response_model=list[ThresholdRead],
    responses=ERRORS,
)
def list_thresholds(
    session: SessionDep, _: Reader, suite: str | None = None
) -> list[ThresholdRead]:
    """Stored policy overrides, optionally of one suite."""
    return lifecycle.list_thresholds(session, suite)


@router.post(
    "/thresholds",
    operation_id="create_benchmark_threshold",
    response_model=ThresholdRead,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
)
def create_threshold(
    body: ThresholdWrite,
    session: SessionDep,
    settings: SettingsDep,
    principal: Submitter,
    audit: AuditDep,
) -> ThresholdRead:
    """Override one suite metric's policy (thresholds as data)."""
    threshold = lifecycle.create_threshold(session, body, principal.name, settings)
    audit("benchmark.threshold.create", f"benchmark_threshold:{threshold.id}", 201)
    return threshold


@router.put(
    "/thresholds/{threshold_id}",
    operation_id="update_benchmark_threshold",
    response_model=ThresholdRead,
    responses=ERRORS,
)
def update_threshold(
    threshold_id: str, body: ThresholdWrite, session: SessionDep, _: Submitter, audit: AuditDep
) -> ThresholdRead:
    """Replace a threshold's policy and note."""
    threshold = lifecycle.update_threshold(session, threshold_id, body)
    audit("benchmark.threshold.update", f"benchmark_threshold:{threshold_id}", 200)
    return threshold


@router.delete(
    "/thresholds/{threshold_id}",
    operation_id="delete_benchmark_threshold",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ERRORS,
)
def delete_threshold(
    threshold_id: str, session: SessionDep, _: Submitter, audit: AuditDep
) -> Response:
    """Delete a threshold; the suite's own policy applies again."""
    lifecycle.delete_threshold(session, threshold_id)
    audit("benchmark.threshold.delete", f"benchmark_threshold:{threshold_id}", 204)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
