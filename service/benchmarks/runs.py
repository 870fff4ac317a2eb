"""Benchmark run use cases: create (run here or bring your own), read (judging a run-here
run once its sweeps are done), and the wire shape of a run.

A run-here run submits the suite's sweeps through ``service.sweeps.submit_sweep``, so
content-addressed trials make a rerun cost only what changed; it is judged on the first
read after every sweep is final (one request wins: ``store.finish_run`` only updates a
run still ``running``).  A sweep with a failed or cancelled trial makes the run ``error``.
"""

from __future__ import annotations

import hashlib
import json
import time

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api_schemas.benchmarks import (
    Baseline,
    BenchmarkRunCreate,
    BenchmarkRunRead,
    GitContext,
    MetricPolicy,
    MetricVerdict,
)
from api_schemas.statuses import FINAL_SWEEP_STATES
from service.auth.policy import check_read
from service.auth.principal import Principal
from service.benchmarks.brought import brought_measurements
from service.benchmarks.judging import judge_run
from service.benchmarks.measures import from_records
from service.benchmarks.suites import load_suite, suite_configs
from service.errors import IdempotencyConflict, SpecRejected
from service.settings import Settings
from service.store import benchmarks as store
from service.store import figures as figure_store
from service.store import sweeps as sweep_store
from service.sweeps import submit_sweep

LATENCY_REPETITIONS = 5


def machine_fingerprint(body: BenchmarkRunCreate) -> str:
    """The caller's fingerprint, else a hash of the machine info (``unknown`` if none)."""
    if body.machine.fingerprint:
        return body.machine.fingerprint
    if not body.machine.info:
        return "unknown"
    info = json.dumps(body.machine.info, sort_keys=True, default=str)
    return hashlib.sha256(info.encode()).hexdigest()[:16]


def create_run(
    session: Session,
    suite_name: str,
    body: BenchmarkRunCreate,
    settings: Settings,
    principal: Principal,
    idempotency_key: str | None,
) -> tuple[BenchmarkRunRead, bool]:
    """Start a run (or return the one this submitter's idempotency key made).

    Same key + same body → the existing run; same key + different body → 409.
    """
    suite = load_suite(settings, suite_name)
    digest = hashlib.sha256(
        json.dumps([suite_name, body.model_dump(mode="json")], sort_keys=True).encode()
    ).hexdigest()
    if idempotency_key:
        replay = _replay(session, principal.name, idempotency_key, digest, settings)
        if replay is not None:
            return replay, False
    if body.baseline == "pinned" and not body.baseline_run_id:
        raise SpecRejected(
            [
                {
                    "loc": ["body", "baseline_run_id"],
                    "type": "missing",
                    "msg": "baseline 'pinned' needs baseline_run_id",
                }
            ]
        )
    measurements = brought_measurements(suite, settings, body) if body.mode == "byo" else None
    source = "service" if body.mode == "run_here" else f"byo:{body.source or principal.name}"
    fields = dict(
        suite=suite.name,
        suite_version=suite.version,
        mode=body.mode,
        submitter=principal.name,
        idempotency_key=idempotency_key,
        request_hash=digest,
        **body.git.model_dump(),
        machine=machine_fingerprint(body),
        machine_info=body.machine.info,
        source=source,
        sweep_ids=[],
        measurements=measurements,
        options={"baseline": body.baseline, "baseline_run_id": body.baseline_run_id},
    )
    try:
        run_id = store.insert_run(session, **fields)
    except IntegrityError as exc:
        if not idempotency_key or not store.is_idempotency_race(exc):
            raise
        session.rollback()
        replay = _replay(session, principal.name, idempotency_key, digest, settings)
        if replay is None:
            raise
        return replay, False
    if measurements is not None:
        judge_run(session, store.get_run(session, run_id), suite, measurements, settings, source)
    else:
        sweep_ids = [
            submit_sweep(session, spec, settings, principal.name, None, kind=principal.kind)[0].id
            for spec in suite.sweeps
        ]
        store.set_sweeps(session, run_id, sweep_ids)
    return read_run(session, run_id, settings), True


def _replay(
    session: Session, submitter: str, key: str, digest: str, settings: Settings
) -> BenchmarkRunRead | None:
    found = store.find_run_by_key(session, submitter, key)
    if found is None:
        return None
    if found[1] != digest:
        raise IdempotencyConflict(
            f"Idempotency-Key {key!r} was used for a different benchmark run ({found[0]})"
        )
    return read_run(session, found[0], settings)


def _finish_run_here(session: Session, run: store.RunRecord, settings: Settings) -> None:
    """Judge a run-here run whose sweeps are all final (nothing when one is not)."""
    sweeps = [sweep_store.read_sweep(session, sweep_id) for sweep_id in run.sweep_ids]
    if any(sweep.status not in FINAL_SWEEP_STATES for sweep in sweeps):
        return
    broken = [s for s in sweeps if s.counts.failed or s.counts.cancelled]
    if broken:
        reason = "; ".join(
            f"sweep {s.id} ({s.name}): {s.counts.failed} failed, {s.counts.cancelled} "
            f"cancelled of {s.trial_count} trials"
            for s in broken
        )
        store.finish_run(session, run.id, "error", {"reason": reason}, [])
        return
    suite = load_suite(settings, run.suite)
    records, latencies, spans = {}, [], {}
    for sweep in sweeps:
        spans[sweep.name] = store.sweep_span(session, sweep.id)
        started = time.perf_counter()
        records[sweep.name] = figure_store.sweep_records(session, sweep.id)
        latencies.append(1000 * (time.perf_counter() - started))
    for _ in range(LATENCY_REPETITIONS - 1):
        started = time.perf_counter()
        figure_store.sweep_records(session, sweeps[0].id)
        latencies.append(1000 * (time.perf_counter() - started))
    configs = suite_configs(suite, settings.limits)
    measurements = from_records(configs, records, latencies, spans)
    store.set_measurements(session, run.id, measurements)
    judge_run(session, run, suite, measurements, settings, "service")


def read_run(
    session: Session, run_id: str, settings: Settings, principal: Principal | None = None
) -> BenchmarkRunRead:
    """The run with its verdict (404 unknown; 403 when reads are restricted and it is
    another user's); judges a finished run-here run first."""
    run = store.get_run(session, run_id)
    if principal is not None:
        check_read(principal, settings, run.submitter, what="benchmark run")
    if run.status == "running" and run.mode == "run_here" and run.sweep_ids:
        _finish_run_here(session, run, settings)
        run = store.get_run(session, run_id)
    return run_read(run, store.run_values(session, run_id))


def run_read(run: store.RunRecord, values: list[store.ValueRecord]) -> BenchmarkRunRead:
    """A run record and its values as the wire verdict."""
    verdict = run.verdict or {}
    metrics = []
    for value in values:
        detail = value.detail
        metrics.append(
            MetricVerdict(
                metric=value.metric,
                kind=detail.get("kind", "scientific"),
                test=detail.get("test", ""),
                outcome=value.outcome or "error",
                contender=detail.get("contender", {}),
                baseline=detail.get("baseline", {}),
                change=detail.get("change"),
                change_pct=detail.get("change_pct"),
                statistic=detail.get("statistic"),
                limits=detail.get("limits", {}),
                reason=detail.get("reason"),
                source=value.source,
                acknowledged=value.acknowledged,
            )
        )
    counts: dict[str, int] = {}
    for metric in metrics:
        counts[metric.outcome] = counts.get(metric.outcome, 0) + 1
    baseline = verdict.get("baseline")
    return BenchmarkRunRead(
        id=run.id,
        suite=run.suite,
        suite_version=run.suite_version,
        mode=run.mode,
        status=run.status,
        reason=verdict.get("reason"),
        git=GitContext(
            repository=run.repository,
            commit=run.commit,
            branch=run.branch,
            base_commit=run.base_commit,
            pr_number=run.pr_number,
        ),
        machine=run.machine,
        source=run.source,
        sweep_ids=list(run.sweep_ids or []),
        created_at=run.created_at,
        finished_at=run.finished_at,
        baseline=Baseline(**baseline) if baseline else None,
        policy={k: MetricPolicy(**v) for k, v in verdict.get("policy", {}).items()},
        metrics=metrics,
        counts=counts,
    )
