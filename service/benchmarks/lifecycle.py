"""After a verdict: acknowledging a regression, a metric's history, thresholds as data
(create, update, delete), and what a suite holds."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api_schemas.benchmarks import (
    BenchmarkRunRead,
    HistoryPoint,
    MetricHistory,
    SuiteConfig,
    SuiteRead,
    ThresholdRead,
    ThresholdWrite,
)
from service.auth.principal import Principal
from service.benchmarks.judging import restatus
from service.benchmarks.runs import read_run
from service.benchmarks.suites import load_suite, suite_configs
from service.settings import Settings
from service.store import benchmark_thresholds as threshold_store
from service.store import benchmarks as store


def acknowledge(
    session: Session, run_id: str, metric: str, by: Principal, reason: str, settings: Settings
) -> BenchmarkRunRead:
    """Accept a regression (it stays on the record, marked); the run's status is
    recomputed without it.  Whoever may read the run may acknowledge (audited)."""
    read_run(session, run_id, settings, by)  # 404 / 403 before anything changes
    store.acknowledge(session, run_id, metric, by.name, reason)
    restatus(session, run_id)
    return read_run(session, run_id, settings)


def metric_history(
    session: Session,
    suite: str,
    metric: str,
    *,
    machine: str | None,
    branch: str | None,
    limit: int,
    submitter: str | None = None,
) -> MetricHistory:
    """The metric's values per run (oldest first) with the limits each was judged by;
    only ``submitter``'s runs when given (restricted reads)."""
    points = []
    for run, value in store.history(
        session, suite, metric, machine=machine, branch=branch, limit=limit, submitter=submitter
    ):
        limits = value.detail.get("limits", {})
        points.append(
            HistoryPoint(
                run_id=run.id,
                commit=run.commit,
                branch=run.branch,
                created_at=run.created_at,
                value=value.value,
                outcome=value.outcome,
                lower=limits.get("lower"),
                upper=limits.get("upper"),
            )
        )
    return MetricHistory(suite=suite, metric=metric, machine=machine, points=points)


def _threshold(record: threshold_store.ThresholdRecord) -> ThresholdRead:
    return ThresholdRead(
        id=record.id,
        suite=record.suite,
        metric=record.metric,
        policy=record.policy,
        note=record.note,
        created_by=record.created_by,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def list_thresholds(session: Session, suite: str | None) -> list[ThresholdRead]:
    return [_threshold(t) for t in threshold_store.thresholds(session, suite)]


def create_threshold(
    session: Session, body: ThresholdWrite, by: str, settings: Settings
) -> ThresholdRead:
    """A policy override for one suite metric (the suite must exist; 409 if one exists)."""
    load_suite(settings, body.suite)
    policy = body.policy.model_dump()
    return _threshold(
        threshold_store.create_threshold(session, body.suite, body.metric, policy, body.note, by)
    )


def update_threshold(session: Session, threshold_id: str, body: ThresholdWrite) -> ThresholdRead:
    return _threshold(
        threshold_store.update_threshold(session, threshold_id, body.policy.model_dump(), body.note)
    )


def delete_threshold(session: Session, threshold_id: str) -> None:
    threshold_store.delete_threshold(session, threshold_id)


def read_suite(settings: Settings, name: str) -> SuiteRead:
    """The suite's configs (the labels bring-your-own results use) and metrics."""
    suite = load_suite(settings, name)
    return SuiteRead(
        name=suite.name,
        version=suite.version,
        description=suite.description,
        configs=[
            SuiteConfig(label=c.label, sweep=c.sweep, params=c.params)
            for c in suite_configs(suite, settings.limits)
        ],
        metrics=[m.model_dump() for m in suite.metrics],
    )
