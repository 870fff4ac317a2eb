"""Sweep use cases: plan (dry run) and submit, with idempotency.

Routes call these; these call ``expand`` (pure) and the store (SQL).
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy.orm import Session

from api_schemas.spec import SweepSpec
from api_schemas.wire import SweepPlan, SweepRead
from service.errors import IdempotencyConflict, SpecRejected
from service.expand import PlannedTrial, expand_spec, parameter_origin, spec_hash
from service.settings import Settings
from service.store import sweeps as sweep_store
from workers.workloads import WORKLOADS, AdmissionContext


def admission_context(settings: Settings) -> AdmissionContext:
    """What admission checks may know: configured datasets, limits, and the GPUs of the
    Ray cluster when this process is connected to one (else unknown)."""
    from service.runners import connected_cluster_gpus

    return AdmissionContext(
        cifar100_dir=settings.data.cifar100_dir,
        cluster_gpus=connected_cluster_gpus(),
        max_steps=settings.limits.max_steps,
    )


def admit(spec: SweepSpec, planned: list[PlannedTrial], settings: Settings) -> None:
    """Run the workload's submit-time checks (dataset present, GPUs in the cluster,
    step limits); any error rejects the whole spec with 422 before anything is written."""
    check = WORKLOADS[spec.workload].admission_errors
    if check is None or not planned:
        return
    context = admission_context(settings)
    origin = parameter_origin(spec)
    errors: list[dict] = []
    seen: set[str] = set()
    for trial in {t.key: t for t in planned}.values():
        for error in check(trial.params, trial.execution, context):
            loc = list(error["loc"])
            if loc[:2] == ["body", "params"] and len(loc) == 3:  # point at axes/zip/sobol
                error = {**error, "loc": origin.get(str(loc[2]), loc)}
            signature = f"{error['loc']}|{error['msg']}"
            if signature not in seen:
                seen.add(signature)
                errors.append(error)
    if errors:
        raise SpecRejected(errors)


def plan_sweep(session: Session, spec: SweepSpec, settings: Settings) -> SweepPlan:
    """What submitting ``spec`` would do: trial count, cache hits, batches, cost."""
    planned = expand_spec(spec, settings.limits)
    admit(spec, planned, settings)
    unique = {trial.key: trial for trial in planned}
    stored = sweep_store.existing_trials(session, list(unique))
    succeeded = {key for key in unique if stored.get(key, (0, ""))[1] == "succeeded"}
    retry = sweep_store.retryable_ids(session, [stored[key][0] for key in succeeded])
    hits = {key for key in succeeded if stored[key][0] not in retry}
    cached = len(hits)
    new = [trial for key, trial in unique.items() if key not in hits]
    workload = WORKLOADS[spec.workload]
    batch_sizes = Counter(trial.batch_key for trial in new)
    batch_size = settings.dispatch.batch_size
    if workload.max_batch_size:
        batch_size = min(batch_size, workload.max_batch_size)
    batches = sum(-(-count // batch_size) for count in batch_sizes.values())
    cost = sum(workload.cost_per_trial_s(trial.params, trial.execution) for trial in new)
    sample = [dict(trial.params, seed=trial.seed) for trial in planned[:5]]
    return SweepPlan(
        workload=spec.workload,
        trial_count=len(unique),
        cached_count=cached,
        new_count=len(new),
        batch_count=batches,
        estimated_cost_s=cost,
        sample_params=sample,
    )


def submit_sweep(
    session: Session,
    spec: SweepSpec,
    settings: Settings,
    submitter: str,
    idempotency_key: str | None,
) -> tuple[SweepRead, bool]:
    """Create the sweep (or return the one this idempotency key made).

    Returns (sweep, created).  Same key + same spec → the existing sweep; same key +
    different spec → :class:`IdempotencyConflict` (409).  Everything is written in the
    caller's transaction, so a rejected spec writes nothing.
    """
    digest = spec_hash(spec)
    if idempotency_key:
        existing = sweep_store.find_by_idempotency_key(session, idempotency_key)
        if existing is not None:
            if existing.spec_hash != digest:
                raise IdempotencyConflict(
                    f"Idempotency-Key {idempotency_key!r} was used for a different spec "
                    f"(sweep {existing.id})"
                )
            return sweep_store.read_sweep(session, existing.id), False
    planned = expand_spec(spec, settings.limits)
    admit(spec, planned, settings)
    created = sweep_store.create_sweep(session, spec, digest, submitter, idempotency_key, planned)
    return sweep_store.read_sweep(session, created.sweep_id), True
