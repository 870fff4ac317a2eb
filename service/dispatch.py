"""The dispatcher: claim → batch → submit → collect → persist.

One loop (a thread in the API process, or ``sweeps worker``) does, each round:

1. returns trials with expired leases to pending (``transitions.expire_leases``);
2. claims pending trials with a lease, highest priority first, then oldest;
3. groups them by workload and batch key (same shape), keeping trials that share a
   dataset or a theory curve together, into batches of at most ``batch_size``;
4. submits **one Ray task per batch** (asking for a GPU when the device is cuda),
   only after the claim is committed;
5. collects finished batches and writes their records in bulk — the one writer —
   guarded by the lease owner, so a dispatcher that lost its lease writes nothing;
6. renews leases of running batches and cancels batches whose trials were cancelled;
7. stores the progress running trials report (about once a second) and kills a batch
   that runs past its hard time limit (``hard_limit_factor`` × its trials'
   ``time_limit_s`` + grace, counted from when its worker started computing).

Workloads set their own batch size (the nonlinear ones run one trial per Ray task) and
the GPUs a batch asks for (``Workload.max_batch_size`` / ``Workload.num_gpus``).

A batch that raises is split in halves and retried; a trial that fails alone is retried
until ``max_attempts`` (a deterministic error such as ``ValueError`` fails at once).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from service import transitions
from service.settings import Settings
from service.store import progress as progress_store
from service.store import trials as trial_store
from service.store.models import Trial
from service.store.session import session_scope
from workers.workloads import WORKLOADS, BatchOutput, TrialItem

log = logging.getLogger("sweeps.dispatch")

# Exceptions that will fail again on retry: the trial's config is at fault.
PERMANENT_ERRORS = (ValueError, TypeError, KeyError, ZeroDivisionError)
RESULT_COLUMNS = (
    "gen_error_sim",
    "gen_error_theory",
    "regime_theory",
    "regime_empirical",
    "l_order_theory",
    "pd_theory",
    "l_order_empirical",
    "pd_empirical",
    "classifier_version",
    "diverged",
    "stop_reason",
    "wall_time_s",
    "metrics",
    "device",
    "dtype",
    "code_version",
    "envelope",
)


class BatchRunner(Protocol):
    """Runs batches somewhere (Ray, or in-process) and reports when they finish.

    Optional: ``progress(trial_ids) -> {id: report}`` and ``forget(trial_ids)`` (the
    progress channel) and ``cluster_gpus() -> float | None`` (resolves device auto).
    """

    def submit(
        self, workload: str, items: list[TrialItem], theory_wanted: dict[int, str], gpus: float
    ) -> Any: ...

    def wait(self, handles: list[Any], timeout: float) -> list[Any]: ...

    def result(self, handle: Any) -> BatchOutput: ...

    def cancel(self, handle: Any) -> None: ...


@dataclass
class Batch:
    workload: str
    trials: list[Trial]
    theory_wanted: dict[int, str]
    gpus: float
    handle: Any = None
    submitted_at: float = field(default_factory=time.monotonic)
    # Seconds the batch may run (from its worker's first "started" report); None: no limit.
    hard_limit_s: float | None = None

    @property
    def ids(self) -> list[int]:
        return [trial.id for trial in self.trials]


def group_into_batches(trials: list[Trial], batch_size: int) -> list[list[Trial]]:
    """Same workload and batch key per batch; trials of one group key stay together
    unless the group alone exceeds ``batch_size``.  Order (priority, age) is kept."""
    by_batch: dict[tuple[str, str], dict[str, list[Trial]]] = defaultdict(dict)
    for trial in trials:
        by_batch[(trial.workload, trial.batch_key)].setdefault(trial.group_key, []).append(trial)
    batches: list[list[Trial]] = []
    for groups in by_batch.values():
        current: list[Trial] = []
        for members in groups.values():
            if current and len(current) + len(members) > batch_size:
                batches.append(current)
                current = []
            for start in range(0, len(members), batch_size):
                chunk = members[start : start + batch_size]
                if len(chunk) == batch_size:
                    batches.append(chunk)
                else:
                    current.extend(chunk)
        if current:
            batches.append(current)
    return batches


def _gpus_for(trial: Trial, cluster_gpus: float | None = None) -> float:
    """GPUs the trial's batch asks Ray for: its workload's rule, with device ``auto``
    meaning cuda when the cluster is known to have a GPU and cpu otherwise."""
    execution = dict(trial.execution)
    if execution.get("device") == "auto":
        execution["device"] = "cuda" if cluster_gpus else "cpu"
    workload = WORKLOADS.get(trial.workload)
    if workload is None:
        return 1.0 if str(execution.get("device", "cpu")).startswith("cuda") else 0.0
    return workload.num_gpus(execution)


def batch_size_for(workload: str, configured: int) -> int:
    """The dispatcher's batch size, capped by the workload's own (if it has one)."""
    cap = WORKLOADS[workload].max_batch_size if workload in WORKLOADS else None
    return min(configured, cap) if cap else configured


class Dispatcher:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        runner: BatchRunner,
        *,
        owner: str | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.config = settings.dispatch
        self.runner = runner
        self.owner = owner or f"dispatcher-{uuid.uuid4().hex[:12]}"
        self.postgres = session_factory.kw["bind"].dialect.name == "postgresql"
        self.inflight: list[Batch] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_expiry = 0.0
        self._last_renewal = time.monotonic()
        self._last_cancel_check = 0.0
        self._last_progress = 0.0
        # Theory keys some in-flight batch is computing: asked of one batch only, and
        # trials that finish first get the value backfilled when it lands.
        self._theory_inflight: set[str] = set()
        self._theory_missing: set[str] = set()
        self.rounds = 0
        self.last_error: str | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=self.owner, daemon=True)
        self._thread.start()

    def stop(self, *, release: bool = True, timeout: float = 30.0) -> None:
        """Stop the loop.  ``release`` hands running trials back to pending at once;
        without it (a simulated crash) they wait for their leases to expire."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for batch in self.inflight:
            self.runner.cancel(batch.handle)
        if release and self.inflight:
            with session_scope(self.session_factory) as session:
                for batch in self.inflight:
                    transitions.requeue_running(
                        session, self.owner, batch.ids, "dispatcher stopped"
                    )
        self.inflight = []

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.step()
                self.last_error = None
            except Exception:  # noqa: BLE001 - the loop must survive a bad round
                self.last_error = traceback.format_exc(limit=5)
                log.exception("dispatcher round failed")
                busy = False
            if not busy:
                self._stop.wait(self.config.poll_seconds)

    def run_until_idle(self, timeout: float = 600.0) -> None:
        """Drive rounds in the caller's thread until no trial is pending or running
        (a trial held by a dead dispatcher counts until its lease expires)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.step()
            if not self.inflight:
                with session_scope(self.session_factory) as session:
                    if trial_store.active_count(session) == 0:
                        return
            time.sleep(0.01)
        raise TimeoutError("dispatcher did not become idle")

    # -- one round ---------------------------------------------------------------------
    def step(self) -> bool:
        """One round; returns whether it did any work."""
        self.rounds += 1
        now = time.monotonic()
        busy = False
        if now - self._last_expiry > min(5.0, self.config.lease_seconds / 4):
            with session_scope(self.session_factory) as session:
                requeued, failed = transitions.expire_leases(session, self.config.max_attempts)
            if requeued or failed:
                log.warning("expired leases: %d requeued, %d failed", requeued, failed)
            self._last_expiry = now
        busy |= self._claim_and_submit()
        busy |= self._collect()
        if now - self._last_renewal > self.config.lease_seconds / 3 and self.inflight:
            with session_scope(self.session_factory) as session:
                ids = [i for batch in self.inflight for i in batch.ids]
                trial_store.renew_leases(session, self.owner, ids, self.config.lease_seconds)
            self._last_renewal = now
        if now - self._last_cancel_check > 1.0 and self.inflight:
            self._drop_cancelled()
            self._last_cancel_check = now
        if now - self._last_progress > self.config.progress_poll_seconds and self.inflight:
            self._store_progress()
            self._last_progress = now
        return busy

    def _claim_and_submit(self) -> bool:
        free = self.config.max_inflight_batches - len(self.inflight)
        if free <= 0:
            return False
        with session_scope(self.session_factory) as session:
            # Claim no more than the free batches hold, sized for the workload at the
            # head of the queue (one trial per batch for the nonlinear workloads).
            head = progress_store.next_pending_workload(session)
            if head is None:
                return False
            limit = min(self.config.claim_size, free * batch_size_for(head, self.config.batch_size))
            claimed = transitions.claim_pending(
                session, self.owner, limit, self.config.lease_seconds, postgres=self.postgres
            )
            if not claimed:
                return False
            known = trial_store.stored_theory(session, [t.theory_key for t in claimed])
            for trial in claimed:
                session.expunge(trial)
        # Enqueue after commit: the claim is durable before any work starts.
        cluster_gpus = self._cluster_gpus()
        by_workload: dict[str, list[Trial]] = defaultdict(list)
        for trial in claimed:
            by_workload[trial.workload].append(trial)
        for workload, trials in by_workload.items():
            size = batch_size_for(workload, self.config.batch_size)
            for members in group_into_batches(trials, size):
                always = workload in WORKLOADS and WORKLOADS[workload].theory_is_result
                theory_wanted = {}
                for trial in members:
                    key = trial.theory_key
                    if key and (always or (key not in known and key not in self._theory_inflight)):
                        theory_wanted[trial.id] = key
                        self._theory_inflight.add(key)
                batch = Batch(workload, members, theory_wanted, _gpus_for(members[0], cluster_gpus))
                batch.hard_limit_s = self._hard_limit(members)
                self._submit(batch)
        return True

    def _cluster_gpus(self) -> float | None:
        probe = getattr(self.runner, "cluster_gpus", None)
        return probe() if probe is not None else None

    def _hard_limit(self, trials: list[Trial]) -> float | None:
        """factor × Σ time_limit_s + grace, or None when a trial has no time limit."""
        limits = []
        for trial in trials:
            workload = WORKLOADS.get(trial.workload)
            limit = workload.time_limit_s(trial.execution) if workload else None
            if limit is None:
                return None
            limits.append(limit)
        return self.config.hard_limit_factor * sum(limits) + self.config.hard_limit_grace_seconds

    def _context(self) -> dict[str, Any]:
        """Deployment facts a trial needs (absolute paths: workers run elsewhere)."""
        checkpoints, cifar = self.settings.checkpoints, self.settings.data.cifar100_dir
        checkpoint_dir = None
        if checkpoints.enabled and checkpoints.dir:
            checkpoint_dir = str(Path(checkpoints.dir).expanduser().resolve())
        return {
            "checkpoint_dir": checkpoint_dir,
            "cifar100_dir": str(Path(cifar).expanduser().resolve()) if cifar else None,
        }

    def _submit(self, batch: Batch) -> None:
        context = self._context()
        items = [TrialItem(t.id, t.params, t.seed, t.execution, context) for t in batch.trials]
        batch.handle = self.runner.submit(batch.workload, items, batch.theory_wanted, batch.gpus)
        batch.submitted_at = time.monotonic()
        self.inflight.append(batch)

    def _collect(self) -> bool:
        if not self.inflight:
            return False
        timeout = 0.0 if len(self.inflight) < self.config.max_inflight_batches else 0.05
        done = self.runner.wait([batch.handle for batch in self.inflight], timeout)
        if not done:
            return False
        finished = [batch for batch in self.inflight if any(batch.handle is h for h in done)]
        self.inflight = [batch for batch in self.inflight if batch not in finished]
        self._forget_progress(finished)
        for batch in finished:
            try:
                output = self.runner.result(batch.handle)
            except Exception as exc:  # noqa: BLE001 - any batch failure is handled alike
                self._handle_failure(batch, exc)
                continue
            self._persist(batch, output)
        return True

    def _persist(self, batch: Batch, output: BatchOutput) -> None:
        with session_scope(self.session_factory) as session:
            trial_store.save_theory(session, output.theory)
            theory = trial_store.stored_theory(session, [t.theory_key for t in batch.trials])
            outcomes = []
            for trial, record in zip(batch.trials, output.records, strict=True):
                outcomes.append((trial.id, result_values(trial, record, theory)))
            transitions.finish_running(session, self.owner, outcomes)
            # Trials stored without their replica value (another batch was computing
            # it) get it now; only those keys are touched.
            self._theory_missing.update(
                trial.theory_key
                for trial, (_, values) in zip(batch.trials, outcomes, strict=True)
                if trial.theory_key
                and values.get("status") == transitions.SUCCEEDED
                and values.get("gen_error_asymptotic") is None
            )
            ready = {k: v for k, v in output.theory.items() if k in self._theory_missing}
            trial_store.backfill_theory(session, ready)
        self._theory_missing.difference_update(output.theory)
        self._theory_inflight.difference_update(output.theory)

    def _handle_failure(self, batch: Batch, exc: BaseException) -> None:
        cause = getattr(exc, "cause", None) or exc
        message = f"{type(cause).__name__}: {cause}"[:4000]
        if len(batch.trials) > 1:
            half = len(batch.trials) // 2
            log.warning("batch of %d failed (%s); splitting", len(batch.trials), message)
            for part in (batch.trials[:half], batch.trials[half:]):
                wanted = {
                    t.id: batch.theory_wanted[t.id] for t in part if t.id in batch.theory_wanted
                }
                part_limit = self._hard_limit(part)
                self._submit(
                    Batch(batch.workload, part, wanted, batch.gpus, hard_limit_s=part_limit)
                )
            return
        trial = batch.trials[0]
        with session_scope(self.session_factory) as session:
            if isinstance(cause, PERMANENT_ERRORS) or trial.attempts >= self.config.max_attempts:
                transitions.finish_running(
                    session,
                    self.owner,
                    [(trial.id, {"status": transitions.FAILED, "error": message})],
                )
            else:
                transitions.requeue_running(session, self.owner, [trial.id], message)

    def _forget_progress(self, batches: list[Batch]) -> None:
        forget = getattr(self.runner, "forget", None)
        if forget is not None and batches:
            forget([i for batch in batches for i in batch.ids])

    def _store_progress(self) -> None:
        """Copy running trials' latest reports into ``trials.progress``; kill batches
        past their hard time limit."""
        poll = getattr(self.runner, "progress", None)
        if poll is None:
            return
        reports = poll([i for batch in self.inflight for i in batch.ids])
        if reports:
            with session_scope(self.session_factory) as session:
                progress_store.save_progress(session, self.owner, reports)
        now = time.time()
        for batch in list(self.inflight):
            if batch.hard_limit_s is None:
                continue
            starts = [reports[i].get("started_at") for i in batch.ids if i in reports]
            starts = [start for start in starts if start]
            if starts and now - max(starts) > batch.hard_limit_s:
                self._kill_overdue(batch)

    def _kill_overdue(self, batch: Batch) -> None:
        self.runner.cancel(batch.handle)
        self.inflight = [b for b in self.inflight if b is not batch]
        self._forget_progress([batch])
        message = (
            f"hard time limit exceeded: the batch ran more than {batch.hard_limit_s:.0f}s "
            f"({self.config.hard_limit_factor:g} × time_limit_s + "
            f"{self.config.hard_limit_grace_seconds:g}s grace) and was killed; the in-loop "
            "limit did not stop it (stuck inside one step, or in data loading)"
        )
        log.warning("batch %s: %s", batch.ids, message)
        with session_scope(self.session_factory) as session:
            transitions.finish_running(
                session,
                self.owner,
                [(i, {"status": transitions.FAILED, "error": message}) for i in batch.ids],
            )

    def _drop_cancelled(self) -> None:
        with session_scope(self.session_factory) as session:
            ids = [i for batch in self.inflight for i in batch.ids]
            status = trial_store.statuses(session, ids)
        keep = []
        for batch in self.inflight:
            if all(status.get(i) == transitions.CANCELLED for i in batch.ids):
                self.runner.cancel(batch.handle)
            else:
                keep.append(batch)
        self.inflight = keep


def result_values(
    trial: Trial, record: dict[str, Any], theory: dict[str, float | None]
) -> dict[str, Any]:
    """Store columns for one finished trial, residuals and shared theory included."""
    if record.get("status") != transitions.SUCCEEDED:
        return {"status": transitions.FAILED, "error": str(record.get("error"))[:4000]}
    values: dict[str, Any] = {"status": transitions.SUCCEEDED, "error": None}
    for column in RESULT_COLUMNS:
        values[column] = record.get(column)
    asymptotic = record.get("gen_error_asymptotic")
    if asymptotic is None and trial.theory_key:
        asymptotic = theory.get(trial.theory_key)
    values["gen_error_asymptotic"] = asymptotic
    sim = values.get("gen_error_sim")
    values["residual_theory"] = (
        sim - values["gen_error_theory"]
        if sim is not None and values.get("gen_error_theory") is not None
        else None
    )
    values["residual_asymptotic"] = (
        sim - asymptotic if sim is not None and asymptotic is not None else None
    )
    return values
