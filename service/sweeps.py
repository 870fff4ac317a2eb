"""Sweep use cases: plan (dry run) and submit, with idempotency.

Routes call these; these call ``expand`` (pure) and the store (SQL).
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api_schemas.spec import SweepSpec
from api_schemas.statuses import TrialStatus
from api_schemas.wire import PlanBasis, SkippedSettingRead, SweepPlan, SweepRead
from service.auth import policy, quotas
from service.auth.principal import Principal
from service.errors import IdempotencyConflict, SpecRejected
from service.expand import expand_with_skips, parameter_origin, spec_hash
from service.scheduling.calibration import estimate_cost
from service.settings import Settings
from service.store import calibration as calibration_store
from service.store import rounds
from service.store import sweeps as sweep_store
from service.store import users as user_store
from service.store.claims import ClaimPolicy
from workers.records import AdmissionProblem, PlannedTrial, SkippedSetting
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


def _setting_env_var(setting: str) -> str:
    """``limits.max_steps`` → ``SWEEPS_LIMITS__MAX_STEPS`` (pydantic-settings' naming)."""
    return "SWEEPS_" + "__".join(part.upper() for part in setting.split("."))


def admission_errors(
    problems: list[AdmissionProblem], origin: dict[str, list[str | int]] | None = None
) -> list[dict]:
    """A workload's neutral admission problems as 422 error items: the field path under
    ``body`` (a parameter's path points at the axis, zip or sobol entry that set it,
    ``origin``), the environment variable behind a limit named in the message."""
    errors: list[dict] = []
    seen: set[str] = set()
    for problem in problems:
        message = problem.message
        if problem.setting:
            message = f"{message} ({_setting_env_var(problem.setting)})"
        loc: list[str | int] = ["body", *problem.field]
        if origin and len(problem.field) == 2 and problem.field[0] == "params":
            loc = origin.get(str(problem.field[1]), loc)
        error = {"loc": loc, "msg": message, "type": problem.kind}
        signature = f"{error['loc']}|{message}"
        if signature not in seen:
            seen.add(signature)
            errors.append(error)
    return errors


def admit(spec: SweepSpec, planned: list[PlannedTrial], settings: Settings) -> None:
    """Run the workload's submit-time checks (dataset present, GPUs in the cluster,
    step limits); any problem rejects the whole spec with 422 before anything is written."""
    if not planned:
        return
    workload = WORKLOADS[spec.workload]
    context = admission_context(settings)
    problems: list[AdmissionProblem] = []
    for trial in {t.key: t for t in planned}.values():
        problems += workload.admission_problems(trial.params, trial.execution, context)
    if problems:
        raise SpecRejected(admission_errors(problems, parameter_origin(spec)))


def plan_sweep(session: Session, spec: SweepSpec, settings: Settings) -> SweepPlan:
    """What submitting ``spec`` would do: trial count, cache hits, batches, cost, and the
    settings ``on_invalid: skip`` would leave out."""
    planned, skipped = expand_with_skips(spec, settings.limits)
    admit(spec, planned, settings)
    unique = {trial.key: trial for trial in planned}
    stored = sweep_store.existing_trials(session, list(unique))
    done = TrialStatus.SUCCEEDED
    succeeded = {key for key in unique if stored.get(key, (0, ""))[1] == done}
    retry = rounds.retryable_ids(session, [stored[key][0] for key in succeeded])
    hits = {key for key in succeeded if stored[key][0] not in retry}
    cached = len(hits)
    new = [trial for key, trial in unique.items() if key not in hits]
    workload = WORKLOADS[spec.workload]
    batch_sizes = Counter(trial.batch_key for trial in new)
    batch_size = settings.dispatch.batch_size
    if workload.max_batch_size:
        batch_size = min(batch_size, workload.max_batch_size)
    batches = sum(-(-count // batch_size) for count in batch_sizes.values())
    cost, basis = _estimate(session, spec.workload, new)
    sample = [dict(trial.params, seed=trial.seed) for trial in planned[:5]]
    return SweepPlan(
        workload=spec.workload,
        trial_count=len(unique),
        cached_count=cached,
        new_count=len(new),
        batch_count=batches,
        estimated_cost_s=cost,
        estimate_basis=basis,
        sample_params=sample,
        skipped=skipped_reads(skipped),
    )


def skipped_reads(skipped: list[SkippedSetting]) -> list[SkippedSettingRead]:
    """The wire shape of the settings a spec left out."""
    return [
        SkippedSettingRead(
            params=item.params,
            reason=item.reason,
            loc=list(item.loc),
            type=item.kind,
            trials=item.trials,
        )
        for item in skipped
    ]


CALIBRATED_WORKLOADS = frozenset({"dln_finetune"})


def _estimate(
    session: Session, workload_name: str, new: list[PlannedTrial]
) -> tuple[float, PlanBasis]:
    """One-core seconds of the new trials: calibrated on stored results for
    ``dln_finetune`` (``service.scheduling.calibration``), else the workload's constants."""
    if workload_name in CALIBRATED_WORKLOADS:
        rows = calibration_store.calibration_rows(session, workload_name)
        estimate = estimate_cost([(t.params, t.execution) for t in new], rows)
        return estimate.seconds, PlanBasis(
            source=estimate.basis,
            calibrated_on=estimate.calibrated_on,
            seconds_per_step_dn=estimate.seconds_per_step_dn,
            trials_with_history=estimate.trials_with_history,
            estimated_steps=estimate.estimated_steps,
        )
    workload = WORKLOADS[workload_name]
    cost = sum(workload.cost_per_trial_s(trial.params, trial.execution) for trial in new)
    return cost, PlanBasis(source="default constants", calibrated_on=0)


_REVIVABLE = (TrialStatus.FAILED, TrialStatus.CANCELLED)


def default_class(kind: str) -> str:
    """Service accounts (CI) submit ``ci`` sweeps, people ``interactive`` ones."""
    return "ci" if kind == "service" else "interactive"


def _requested(
    spec: SweepSpec, planned: list[PlannedTrial], stored: dict[str, tuple[int, str]]
) -> tuple[int, float]:
    """(trials the sweep adds to the owner's queue, GPU-seconds they request)."""
    workload = WORKLOADS[spec.workload]
    new = [
        trial
        for trial in {t.key: t for t in planned}.values()
        if trial.key not in stored or stored[trial.key][1] in _REVIVABLE
    ]
    gpu_seconds = 0.0
    for trial in new:
        gpus = workload.num_gpus(trial.execution)
        if gpus > 0:
            gpu_seconds += gpus * workload.cost_per_trial_s(trial.params, trial.execution)
    return len(new), gpu_seconds


def submit_sweep(
    session: Session,
    spec: SweepSpec,
    settings: Settings,
    submitter: str,
    idempotency_key: str | None,
    *,
    kind: str = "local",
) -> tuple[SweepRead, bool]:
    """Create the sweep (or return the one this submitter's idempotency key made).

    Returns (sweep, created).  Same key + same spec → the existing sweep; same key +
    different spec → :class:`IdempotencyConflict` (409).  Keys are per submitter: one
    user's key never finds another user's sweep.  Two concurrent requests with one key
    both get the one sweep: the loser's insert hits the unique constraint, its
    transaction is rolled back (it had written nothing else) and it answers with the
    winner's sweep.  Quotas are checked before anything is written; everything is
    written in the caller's transaction, so a rejected spec writes nothing.
    """
    digest = spec_hash(spec)
    if idempotency_key:
        existing = _replay(session, submitter, idempotency_key, digest)
        if existing is not None:
            return existing, False
    planned, skipped = expand_with_skips(spec, settings.limits)
    admit(spec, planned, settings)
    stored = sweep_store.existing_trials(session, [t.key for t in planned])
    new_trials, gpu_seconds = _requested(spec, planned, stored)
    quotas.admit(session, submitter, settings, new_trials, gpu_seconds)
    user_store.ensure_user(session, submitter, share=settings.fair_share.default_share)
    try:
        created = sweep_store.create_sweep(
            session,
            spec,
            digest,
            submitter,
            idempotency_key,
            planned,
            priority_class=spec.priority_class or default_class(kind),
            requested_gpu_seconds=gpu_seconds,
            skipped=skipped,
        )
    except IntegrityError as exc:
        if not idempotency_key or not sweep_store.is_idempotency_race(exc):
            raise
        session.rollback()  # the race's loser: nothing of this request was kept
        existing = _replay(session, submitter, idempotency_key, digest)
        if existing is None:
            raise
        return existing, False
    return sweep_store.read_sweep(session, created.sweep_id), True


def _replay(session: Session, submitter: str, key: str, digest: str) -> SweepRead | None:
    existing = sweep_store.find_by_idempotency_key(session, submitter, key)
    if existing is None:
        return None
    sweep_id, existing_hash = existing
    if existing_hash != digest:
        raise IdempotencyConflict(
            f"Idempotency-Key {key!r} was used for a different spec (your sweep {sweep_id})"
        )
    return sweep_store.read_sweep(session, sweep_id)


def claim_policy(settings: Settings) -> ClaimPolicy:
    """The fair-share facts of the settings that the claim (and a wait reason) use."""
    return ClaimPolicy(settings.fair_share.half_life_seconds, settings.quotas.max_running_trials)


def sweep_with_wait(session: Session, sweep_id: str, settings: Settings) -> SweepRead:
    """One sweep, with why its pending trials wait."""
    return sweep_store.read_sweep(session, sweep_id, wait_policy=claim_policy(settings))


def cancel_sweep(session: Session, sweep_id: str, principal: Principal) -> SweepRead:
    """Cancel the sweep if the principal owns it (or is an admin)."""
    policy.check_change(principal, sweep_store.sweep_owner(session, sweep_id))
    return sweep_store.cancel_sweep(session, sweep_id)
