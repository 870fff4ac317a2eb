"""The dispatcher's loop: claim → batch → submit → collect → persist, one round at a time.

One loop (a thread in the API process, or ``sweeps worker``) does, each round:

1. returns trials with expired leases to pending (``transitions.expire_leases``);
2. makes the store writes earlier rounds could not (``writes.WriteQueue``: a database
   error delays a write, it never loses one);
3. claims pending trials with a lease (``transitions.claim_pending``) and, only after the
   claim is committed, submits **one Ray task per batch** (``batching``), asking the
   theory ledger which replica values each batch computes (``theory_ledger``);
4. collects finished batches: their outcomes are queued as one bulk write guarded by the
   claims (so a dispatcher that lost its lease writes nothing), failures go through the
   failure policy (``failures``: split, retry or fail);
5. renews the leases of running batches and of results still waiting to be written,
   cancels batches whose trials were all cancelled, stores progress and kills batches
   past their hard limit (``progress``);
6. now and then, computes replica values that finished trials still lack (a batch that
   was asked for one ended without it, or a dispatcher died holding it);
7. now and then, turns refine sweeps whose round finished into their next round
   (``service/refine/controller.py``: new points become pending trials of the same sweep).

Every phase runs on its own: a failing phase is logged and the others still run, so one
database error cannot stop leases from being renewed.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service.dispatch import failures
from service.dispatch.batching import (
    Batch,
    batch_size_for,
    gpus_for,
    group_into_batches,
    hard_limit_s,
    split,
    trials_per_batch,
)
from service.dispatch.progress import overdue, overdue_message
from service.dispatch.runner import BatchRunner
from service.dispatch.theory_ledger import TheoryLedger
from service.dispatch.writes import PendingWrite, WriteQueue
from service.observability import metrics
from service.refine.controller import advance_refinements
from service.scheduling.cost_model import (
    Calibration,
    calibrate,
    cost_sample,
    estimate_trial_seconds,
)
from service.settings import Settings
from service.store import progress as progress_store
from service.store import transitions
from service.store import trials as trial_store
from service.store.claims import ClaimPolicy
from service.store.session import session_scope
from workers.records import BatchOutput, ClaimedTrial, TrialOutcome
from workers.runtime import kept_outcome
from workers.workloads import WORKLOADS

log = logging.getLogger("sweeps.dispatch")
# How often the refine phase looks for refine sweeps whose round finished.
REFINE_EVERY_S = 0.5


@dataclass
class InFlight:
    """A submitted batch and its runner handle."""

    batch: Batch
    handle: Any
    submitted_at: float = field(default_factory=time.monotonic)


class Dispatcher:
    """Drives batches of claimed trials through a :class:`BatchRunner` into the store."""

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
        self.inflight: list[InFlight] = []
        self.ledger = TheoryLedger(max_failures=self.config.max_attempts)
        self.writes = WriteQueue(
            self.config.persist_max_tries,
            self.config.persist_backoff_seconds,
            self.config.persist_max_backoff_seconds,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: dict[str, float] = defaultdict(float)
        self._last["renew"] = time.monotonic()
        self.rounds = 0
        # The cost model's coefficients, refitted from every finished dln_finetune batch.
        self.calibration = Calibration()
        self.last_round_at: float | None = None  # Unix time, for /metrics liveness
        self.last_error: str | None = None
        self.released = 0  # running trials handed back to pending by ``stop``
        # Trials that finished inside batches that never returned (stopped, killed past
        # their hard limit, failed), written instead of run again.
        self.kept = 0
        self.kept_at_stop = 0  # of those, kept by ``stop`` (the stopped line reports it)
        self._unsubmitted: list[ClaimedTrial] = []  # claimed, not yet in a batch
        self._round_failed = False
        self.claim_policy = (
            ClaimPolicy(settings.fair_share.half_life_seconds, settings.quotas.max_running_trials)
            if settings.fair_share.enabled
            else None
        )

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=self.owner, daemon=True)
        self._thread.start()

    def stop(self, *, release: bool = True, timeout: float = 10.0) -> int:
        """Stop the loop; returns how many running trials were handed back.

        With ``release`` (a clean shutdown: SIGTERM, Ctrl-C, the app's lifespan ending)
        nothing finished is lost and nothing unfinished waits: batches whose task already
        ended are collected and their results written, so are the trials that finished
        inside batches still running (``_keep_finished``), every queued write is tried,
        and then the batches still running are cancelled and their other trials released to
        pending at once (``transitions.release_running``: the attempt is given back, no
        lease to wait for).  Without ``release`` (a simulated crash) the running trials
        wait for their leases to expire.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if release:
            try:
                self._harvest()
            except Exception:  # noqa: BLE001 - what is not harvested is released below
                log.exception("could not collect finished batches at stop")
            kept_before = self.kept
            for flight in self.inflight:
                try:
                    self._keep_finished(flight.batch)
                except Exception:  # noqa: BLE001 - then they are released and rerun
                    log.exception("could not keep the finished trials of batch %s", flight.batch.id)
            self.writes.flush(self.session_factory, force=True)
            self.kept_at_stop += self.kept - kept_before
        for flight in self.inflight:
            self.runner.cancel(flight.handle)
        released = 0
        claims = self._held_claims()
        if release and claims:
            try:
                with session_scope(self.session_factory) as session:
                    released = transitions.release_running(session, self.owner, claims)
            except Exception:  # noqa: BLE001 - their leases expire instead
                log.exception("could not release running trials; their leases will expire")
        for flight in self.inflight:
            self.ledger.release(flight.batch.id)
        self.inflight, self._unsubmitted = [], []
        self.released += released
        return released

    def _held_claims(self) -> list[ClaimedTrial]:
        """Claims this dispatcher holds that no write will finish: those of batches in
        flight and those claimed but not yet submitted (once each)."""
        held = [t for f in self.inflight if not f.batch.theory_only for t in f.batch.trials]
        return list({(t.trial_id, t.attempt): t for t in [*self._unsubmitted, *held]}.values())

    def _harvest(self) -> None:
        """Queue the results of in-flight batches whose task has already ended (a stop
        must not throw finished work away).  A batch that ended in an error is left in
        flight: it is released, not split or retried, by a dispatcher that stops."""
        if not self.inflight:
            return
        done = self.runner.wait([flight.handle for flight in self.inflight], 0.0)
        for flight in [f for f in self.inflight if any(f.handle is h for h in done)]:
            try:
                output = self.runner.result(flight.handle)
            except Exception:  # noqa: BLE001 - released with the others
                continue
            if not flight.batch.theory_only and len(output.outcomes) != len(flight.batch.trials):
                continue  # a malformed output: released, and rerun elsewhere
            self.inflight = [f for f in self.inflight if f is not flight]
            self.runner.forget(list(flight.batch.ids))
            self._queue_persist(flight.batch, output, flush=False)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        while not self._stop.is_set():
            busy = self.step()
            if not busy:
                self._stop.wait(self.config.poll_seconds)

    def run_until_idle(self, timeout: float = 600.0) -> None:
        """Drive rounds in the caller's thread until no trial is pending or running, no
        write waits and no finished trial lacks its replica value (a trial held by a dead
        dispatcher counts until its lease expires)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.step()
            if not self.inflight and not len(self.writes):
                with session_scope(self.session_factory) as session:
                    active = trial_store.active_count(session)
                if active == 0 and not self._reconcile_theory() and not self._refine():
                    return
            time.sleep(0.01)
        raise TimeoutError("dispatcher did not become idle")

    # -- one round ---------------------------------------------------------------------
    def _phase(self, name: str, action: Callable[[], bool | None]) -> bool:
        """Run one phase; an exception is logged and kept as ``last_error``."""
        try:
            return bool(action())
        except Exception:  # noqa: BLE001 - one failing phase must not stop the others
            self._round_failed = True
            self.last_error = f"{name}: {traceback.format_exc(limit=5)}"
            log.exception("dispatcher phase %s failed", name)
            return False

    def _due(self, name: str, every: float) -> bool:
        now = time.monotonic()
        if now - self._last[name] < every:
            return False
        self._last[name] = now
        return True

    def step(self) -> bool:
        """One round; returns whether it did any work."""
        self.rounds += 1
        busy = False
        self._round_failed = False
        if self._due("expire", min(5.0, self.config.lease_seconds / 4)):
            self._phase("expire", self._expire_leases)
        busy |= self._phase("writes", lambda: self.writes.flush(self.session_factory) > 0)
        busy |= self._phase("claim", self._claim_and_submit)
        busy |= self._phase("collect", self._collect)
        held = self.inflight or len(self.writes)
        if held and self._due("renew", self.config.lease_seconds / 3):
            self._phase("renew", self._renew_leases)
        if self.inflight and self._due("cancel", 1.0):
            self._phase("cancel", self._drop_cancelled)
        if self.inflight and self._due("progress", self.config.progress_poll_seconds):
            self._phase("progress", self._store_progress)
        if self._due("theory", self.config.theory_reconcile_seconds):
            busy |= self._phase("theory", self._reconcile_theory)
        if self._due("refine", REFINE_EVERY_S):
            busy |= self._phase("refine", self._refine)
        if len(self.writes) and self.writes.last_error:
            self.last_error = self.writes.last_error  # results wait for the database
        elif not self._round_failed:
            self.last_error = None
        metrics.ROUNDS.inc()
        self.last_round_at = time.time()
        return busy

    def _expire_leases(self) -> None:
        with session_scope(self.session_factory) as session:
            requeued, failed = transitions.expire_leases(session, self.config.max_attempts)
        if requeued or failed:
            log.warning("expired leases: %d requeued, %d failed", requeued, failed)

    def _renew_leases(self) -> None:
        claims = [t for f in self.inflight for t in f.batch.trials if not f.batch.theory_only]
        claims += self.writes.claims()
        with session_scope(self.session_factory) as session:
            transitions.renew_leases(session, self.owner, claims, self.config.lease_seconds)

    # -- claim and submit --------------------------------------------------------------
    def _claim_and_submit(self) -> bool:
        free = self.config.max_inflight_batches - len(self.inflight)
        if free <= 0:
            return False
        started = time.perf_counter()
        # Ask the cluster before claiming: a cluster that no longer answers (killed with
        # this process's group) then blocks a thread that holds no claim.
        cluster_gpus = self.runner.cluster_gpus()
        with session_scope(self.session_factory) as session:
            # Claim no more than the free batches hold, sized for the trial at the head of
            # the queue (one trial per batch for the nonlinear workloads; by cost for the
            # rest: about target_batch_seconds each).
            head = progress_store.next_pending_trial(session)
            if head is None:
                return False
            workload, params, execution = head
            per_batch = trials_per_batch(
                estimate_trial_seconds(workload, params, execution, self.calibration),
                batch_size_for(workload, self.config.batch_size),
                self.config.target_batch_seconds,
            )
            limit = min(self.config.claim_size, free * per_batch)
            claimed = transitions.claim_pending(
                session,
                self.owner,
                limit,
                self.config.lease_seconds,
                postgres=self.postgres,
                fair_share=self.claim_policy,
            )
            if not claimed:
                return False
            stored = trial_store.stored_theory(session, [t.theory_key for t in claimed])
        metrics.CLAIM_SECONDS.observe(time.perf_counter() - started)
        # Enqueue after commit: the claim is durable before any work starts.  Until each
        # claim is in a submitted batch, ``stop`` finds it here.
        self._unsubmitted = list(claimed)
        context = self._context()
        by_workload: dict[str, list[ClaimedTrial]] = defaultdict(list)
        for trial in claimed:
            by_workload[trial.workload].append(trial)
        for workload, trials in by_workload.items():
            size = batch_size_for(workload, self.config.batch_size)
            always = WORKLOADS[workload].theory_is_result
            batches = group_into_batches(
                trials, size, cost=self._trial_seconds, target_s=self.config.target_batch_seconds
            )
            for members in batches:
                members = [_with_context(t, context) for t in members]
                wanted = self.ledger.assign(members, stored, always=always)
                batch = Batch(
                    workload,
                    tuple(members),
                    wanted,
                    gpus_for(members[0], cluster_gpus),
                    self._hard_limit(members),
                )
                self._submit(batch)
        self._unsubmitted = []
        return True

    def _trial_seconds(self, trial: ClaimedTrial) -> float:
        return estimate_trial_seconds(
            trial.workload, trial.params, trial.execution, self.calibration
        )

    def _learn_cost(self, batch: Batch, output: BatchOutput) -> None:
        """Refit the cost model with a finished dln_finetune batch's trials."""
        if batch.workload != "dln_finetune" or batch.theory_only:
            return
        samples = [
            cost_sample(t.params, t.execution, o.wall_time_s, o.metrics["steps"])
            for t, o in zip(batch.trials, output.outcomes, strict=False)
            if o.ok and o.wall_time_s is not None and (o.metrics or {}).get("steps")
        ]
        self.calibration = calibrate(samples, self.calibration)

    def _hard_limit(self, trials: list[ClaimedTrial]) -> float | None:
        return hard_limit_s(
            trials, self.config.hard_limit_factor, self.config.hard_limit_grace_seconds
        )

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
        self.ledger.own(batch.id, batch.theory_keys)
        try:
            handle = self.runner.submit(
                batch.workload,
                list(batch.trials),
                dict(batch.theory_wanted),
                batch.gpus,
                theory_only=batch.theory_only,
            )
        except Exception as exc:  # noqa: BLE001 - a refused submit is a failed batch
            self.ledger.release(batch.id)
            self._handle_failure(batch, exc)
            return
        self.inflight.append(InFlight(batch, handle))

    # -- collect and persist ---------------------------------------------------------
    def _collect(self) -> bool:
        if not self.inflight:
            return False
        timeout = 0.0 if len(self.inflight) < self.config.max_inflight_batches else 0.05
        done = self.runner.wait([flight.handle for flight in self.inflight], timeout)
        if not done:
            return False
        finished = [f for f in self.inflight if any(f.handle is h for h in done)]
        self.inflight = [f for f in self.inflight if f not in finished]
        for flight in finished:
            metrics.BATCH_SECONDS.labels(flight.batch.workload).observe(
                time.monotonic() - flight.submitted_at
            )
            try:
                output = self.runner.result(flight.handle)
            except Exception as exc:  # noqa: BLE001 - any batch failure is handled alike
                self._handle_failure(flight.batch, exc)
                continue
            finally:
                # After the failure handling, which keeps the trials that had finished.
                self.runner.forget(flight.batch.ids)
            self._queue_persist(flight.batch, output)
            self._learn_cost(flight.batch, output)
        return True

    def _queue_persist(self, batch: Batch, output: BatchOutput, *, flush: bool = True) -> None:
        """Queue the batch's results as one write (made at once unless ``flush`` is
        False); the ledger learns when it lands."""
        owner = self.owner
        if not batch.theory_only and len(output.outcomes) != len(batch.trials):
            self._handle_failure(
                batch,
                RuntimeError(
                    f"batch returned {len(output.outcomes)} outcomes for {len(batch.trials)} trials"
                ),
            )
            return

        def apply(session: Session) -> None:
            trial_store.save_theory(session, output.theory)
            if not batch.theory_only:
                keys = [t.theory_key for t in batch.trials]
                asymptotic = trial_store.stored_theory(session, keys)
                pairs = list(zip(batch.trials, output.outcomes, strict=True))
                transitions.finish_running(session, owner, pairs, asymptotic)
            # Trials of these keys stored earlier without the value get it now.
            trial_store.backfill_theory(
                session, {key: value.gen_error for key, value in output.theory.items()}
            )

        def landed() -> None:
            self.ledger.landed(output.theory)
            self.ledger.release(batch.id)

        self.writes.add(
            PendingWrite(
                f"results of batch {batch.id} ({len(batch.trials)} trials)",
                apply,
                claims=() if batch.theory_only else batch.trials,
                on_done=landed,
                on_dropped=lambda: self.ledger.release(batch.id),
            )
        )
        if flush:
            self.writes.flush(self.session_factory)

    def _handle_failure(self, batch: Batch, exc: BaseException) -> None:
        """Split, retry or fail (``failures.decide``); theory the batch owned is freed."""
        message = failures.describe(exc)
        if batch.theory_only:
            self.ledger.release(batch.id, failed=True)
            self.last_error = f"replica batch {batch.id} failed: {message}"
            log.warning("replica batch of %d keys failed: %s", len(batch.theory_keys), message)
            return
        rest = self._keep_finished(batch)
        if rest is not batch:
            if rest is not None:  # the rest goes on computing its keys
                self.ledger.transfer(batch.id, rest.id, rest.theory_keys)
            self.ledger.release(batch.id)  # the kept trials' keys
            if rest is None:
                log.warning("batch %s failed after all its trials finished: %s", batch.id, message)
                self.writes.flush(self.session_factory)
                return
            batch = rest
        decision = failures.decide(batch, exc, self.config.max_attempts)
        if isinstance(decision, failures.Split):
            log.warning("batch of %d failed (%s); splitting", len(batch.trials), message)
            for part in split(
                batch, self.config.hard_limit_factor, self.config.hard_limit_grace_seconds
            ):
                self.ledger.transfer(batch.id, part.id, part.theory_keys)
                self._submit(part)
            self.ledger.release(batch.id)
            return
        self.ledger.release(batch.id)
        owner, trial = self.owner, decision.trial
        if isinstance(decision, failures.Fail):
            outcome = TrialOutcome.failed(decision.message)

            def apply(session: Session) -> None:
                transitions.finish_running(session, owner, [(trial, outcome)])

            name = f"failure of trial {trial.trial_id}"
        else:

            def apply(session: Session) -> None:
                transitions.requeue_running(session, owner, [trial], decision.message)

            name = f"retry of trial {trial.trial_id}"
        self.writes.add(PendingWrite(name, apply, claims=(trial,)))
        self.writes.flush(self.session_factory)

    def _keep_finished(self, batch: Batch) -> Batch | None:
        """Queue the write of ``batch``'s trials that finished inside it, and return the
        batch of the rest (``batch`` itself when none finished; None when all did).

        A ``dln_finetune`` batch sends each trial's outcome with its ``done`` report
        (``workers.dln.progress``), so a batch that is stopped, killed past its hard limit
        or fails costs only its unfinished trials; the finished ones are written (guarded
        by their claims, like any result) and not run again.  Replica values the batch was
        to compute for them come from the next batch that needs them, or from
        reconciling.  The ledger is left as it is: a caller that goes on with the rest
        moves its keys to it.
        """
        if batch.theory_only:
            return batch
        reported = self.runner.finished(batch.ids)
        pairs = []
        for trial in batch.trials:
            if trial.trial_id in reported:
                try:
                    pairs.append((trial, kept_outcome(reported[trial.trial_id])))
                except Exception:  # noqa: BLE001 - a malformed report: the trial reruns
                    log.warning("unreadable outcome of trial %s; it runs again", trial.trial_id)
        if not pairs:
            return batch
        owner = self.owner

        def apply(session: Session) -> None:
            asymptotic = trial_store.stored_theory(session, [t.theory_key for t, _ in pairs])
            transitions.finish_running(session, owner, pairs, asymptotic)

        kept_ids = {trial.trial_id for trial, _ in pairs}
        self.writes.add(
            PendingWrite(
                f"{len(pairs)} trials that finished inside batch {batch.id}",
                apply,
                claims=tuple(trial for trial, _ in pairs),
            )
        )
        self.kept += len(pairs)
        log.info("batch %s ended early: %d finished trials kept", batch.id, len(pairs))
        rest = [trial for trial in batch.trials if trial.trial_id not in kept_ids]
        if not rest:
            return None
        return Batch(
            batch.workload,
            tuple(rest),
            {i: key for i, key in batch.theory_wanted.items() if i not in kept_ids},
            batch.gpus,
            self._hard_limit(rest),
        )

    # -- cancels, progress, hard limits ----------------------------------------------
    def _drop_cancelled(self) -> None:
        ids = [i for f in self.inflight if not f.batch.theory_only for i in f.batch.ids]
        with session_scope(self.session_factory) as session:
            status = trial_store.statuses(session, ids)
        keep = []
        for flight in self.inflight:
            batch = flight.batch
            if not batch.theory_only and all(
                status.get(i) == transitions.CANCELLED for i in batch.ids
            ):
                self.runner.cancel(flight.handle)
                self.runner.forget(batch.ids)
                self.ledger.release(batch.id)
            else:
                keep.append(flight)
        self.inflight = keep

    def _store_progress(self) -> None:
        """Copy running trials' latest reports into ``trials.progress``; kill batches
        past their hard time limit."""
        reports = self.runner.progress([i for f in self.inflight for i in f.batch.ids])
        if reports:
            with session_scope(self.session_factory) as session:
                progress_store.save_progress(session, self.owner, reports)
        late = overdue([f.batch for f in self.inflight], reports)
        for flight in [f for f in self.inflight if f.batch in late]:
            self._kill_overdue(flight)

    def _kill_overdue(self, flight: InFlight) -> None:
        batch = flight.batch
        self.runner.cancel(flight.handle)
        self.inflight = [f for f in self.inflight if f is not flight]
        rest = self._keep_finished(batch)
        self.runner.forget(batch.ids)
        self.ledger.release(batch.id)
        if rest is None:
            self.writes.flush(self.session_factory)
            return
        message = overdue_message(
            batch, self.config.hard_limit_factor, self.config.hard_limit_grace_seconds
        )
        log.warning("batch %s: %s", batch.ids, message)
        owner, outcome = self.owner, TrialOutcome.failed(message)

        def apply(session: Session) -> None:
            transitions.finish_running(session, owner, [(t, outcome) for t in rest.trials])

        self.writes.add(PendingWrite(f"hard-limit kill of batch {batch.id}", apply, rest.trials))
        self.writes.flush(self.session_factory)

    # -- adaptive refinement ------------------------------------------------------------
    def _refine(self) -> bool:
        """Next rounds of refine sweeps whose round finished; whether any changed."""
        return advance_refinements(self.session_factory, self.settings.limits)

    # -- replica values nobody is computing -------------------------------------------
    def _reconcile_theory(self) -> bool:
        """Backfill stored replica values onto finished trials that lack them, and submit
        a theory-only batch for keys nobody computes; returns whether it did anything."""
        if len(self.inflight) >= self.config.max_inflight_batches:
            return False
        exclude = self.ledger.inflight_keys | self.ledger.given_up()
        with session_scope(self.session_factory) as session:
            stored, orphans = trial_store.missing_theory(
                session, exclude, limit=self.config.batch_size
            )
            filled = trial_store.backfill_theory(session, stored)
        by_workload: dict[str, list[ClaimedTrial]] = defaultdict(list)
        for trial in orphans:
            by_workload[trial.workload].append(trial)
        for workload, trials in by_workload.items():
            wanted = {t.trial_id: t.theory_key for t in trials if t.theory_key}
            log.info("computing %d replica values that finished trials lack", len(wanted))
            self._submit(Batch(workload, tuple(trials), wanted, 0.0, None, theory_only=True))
        return bool(filled or orphans)


def _with_context(trial: ClaimedTrial, context: dict[str, Any]) -> ClaimedTrial:
    return replace(trial, context=context)
