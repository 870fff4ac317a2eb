"""Faults injected into the dispatcher, then counted (SQLite and PostgreSQL, real store).

Each test ends by counting: every trial finished, none run twice except those whose batch
was in flight when the fault hit, none overwritten, and every succeeded ``dln_finetune``
trial carries its shared replica value (``gen_error_asymptotic``).  Batches run
in-process (``InlineRunner`` and small subclasses of it that fail, hold or reorder
batches): the runner is the thing the faults are injected into.  Killing real processes
is in ``tests/test_dispatch_kill.py``.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import replace

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from api_schemas.spec import SweepSpec
from service.dispatch import Dispatcher
from service.runners import InlineRunner
from service.settings import DispatchSettings, Settings
from service.store import sweeps as sweep_store
from service.store import transitions
from service.store.migrate import upgrade_to_head
from service.store.models import Trial
from service.store.session import make_engine, make_session_factory, session_scope
from service.sweeps import submit_sweep
from tests.service.factories import small_finetune_spec
from workers.records import TrialOutcome

SMALL = small_finetune_spec()


@pytest.fixture
def engine(database_url: str):
    upgrade_to_head(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine):
    return make_session_factory(engine)


def settings_for(url: str, **dispatch) -> Settings:
    dispatch.setdefault("theory_reconcile_seconds", 0.05)
    return Settings(database_url=url, dispatch=DispatchSettings(**dispatch))


def submit(factory, spec: dict, settings: Settings):
    with session_scope(factory) as session:
        sweep, _ = submit_sweep(session, SweepSpec.model_validate(spec), settings, "tester", None)
    return sweep


def rows(factory) -> list[Trial]:
    with session_scope(factory) as session:
        found = list(session.scalars(select(Trial).order_by(Trial.id)))
        session.expunge_all()
    return found


def assert_all_succeeded_with_theory(trials: list[Trial]) -> None:
    assert {t.status for t in trials} == {"succeeded"}, [(t.id, t.status, t.error) for t in trials]
    for trial in trials:
        assert trial.gen_error_asymptotic is not None, trial.id
        assert trial.residual_asymptotic == pytest.approx(
            trial.gen_error_sim - trial.gen_error_asymptotic
        )
        assert trial.lease_owner is None


class FirstAttemptFails(InlineRunner):
    """Every trial's first execution raises (a transient worker failure)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[int] = set()
        self.executions = 0

    def submit(self, workload, trials, theory_wanted, gpus, *, theory_only=False):  # noqa: ANN001, ANN201
        ids = {t.trial_id for t in trials}
        if not theory_only and not ids <= self.seen:
            self.seen |= ids
            future: Future = Future()
            future.set_exception(ConnectionError("worker lost (injected)"))
            return future
        self.executions += len(trials)
        return super().submit(workload, trials, theory_wanted, gpus, theory_only=theory_only)


@pytest.mark.parametrize("batch_size", [8, 1])
def test_transient_batch_failure_loses_no_replica_value(factory, database_url, batch_size) -> None:
    """Issue 9's repro: first attempt raises, the second succeeds.  Batches of several
    trials are split and retried under the same claim (attempts stay 1); single trials go
    back to pending (attempts 2).  Every replica value is there at the end.  A batch never
    splits a group, so the single-trial case varies α (a group field): every trial is a
    group of its own."""
    settings = settings_for(database_url, batch_size=batch_size, max_attempts=3)
    spec = SMALL
    if batch_size == 1:
        params = {k: v for k, v in SMALL["params"].items() if k != "alpha"}
        spec = {**SMALL, "params": {**params, "lambda_pt": 0.0}, "axes": {"alpha": [0.3, 0.5, 0.7]}}
    sweep = submit(factory, spec, settings)
    runner = FirstAttemptFails()
    Dispatcher(factory, settings, runner).run_until_idle(timeout=120)
    trials = rows(factory)
    assert len(trials) == 6
    assert_all_succeeded_with_theory(trials)
    expected_attempts = 1 if batch_size > 1 else 2
    assert {t.attempts for t in trials} == {expected_attempts}
    assert runner.executions == 6  # each trial computed exactly once after its failure
    with session_scope(factory) as session:
        assert sweep_store.read_sweep(session, sweep.id).status == "succeeded"


class Counting(InlineRunner):
    """Counts trial executions (theory-only batches excluded)."""

    def __init__(self) -> None:
        super().__init__()
        self.executions = 0

    def submit(self, workload, trials, theory_wanted, gpus, *, theory_only=False):  # noqa: ANN001, ANN201
        if not theory_only:
            self.executions += len(trials)
        return super().submit(workload, trials, theory_wanted, gpus, theory_only=theory_only)


class FailsForSeed(InlineRunner):
    """Batches holding a trial of ``seed`` raise ``ValueError`` (a permanent error)."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = seed

    def submit(self, workload, trials, theory_wanted, gpus, *, theory_only=False):  # noqa: ANN001, ANN201
        if not theory_only and any(t.seed == self.seed for t in trials):
            future: Future = Future()
            future.set_exception(ValueError("bad config (injected)"))
            return future
        return super().submit(workload, trials, theory_wanted, gpus, theory_only=theory_only)


def test_replica_value_reaches_trials_whose_key_owner_failed(factory, database_url) -> None:
    """The batch asked for a key fails for good; the trials of that key that succeeded
    elsewhere still get the value (a theory-only batch computes it)."""
    settings = settings_for(database_url, batch_size=1, max_attempts=2)
    submit(factory, SMALL, settings)
    Dispatcher(factory, settings, FailsForSeed(seed=0)).run_until_idle(timeout=120)
    trials = rows(factory)
    failed = [t for t in trials if t.seed == 0]
    assert {t.status for t in failed} == {"failed"}
    assert all("bad config" in t.error for t in failed)
    assert all(t.attempts == 1 for t in failed)  # permanent: not retried
    assert_all_succeeded_with_theory([t for t in trials if t.seed == 1])


class Holding(InlineRunner):
    """Computes at submit, but reports batches holding a trial of ``seed`` as unfinished
    until ``release()``: a batch still in flight on a slow worker."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = seed
        self.held: list[Future] = []
        self.released = False

    def submit(self, workload, trials, theory_wanted, gpus, *, theory_only=False):  # noqa: ANN001, ANN201
        future = super().submit(workload, trials, theory_wanted, gpus, theory_only=theory_only)
        if any(t.seed == self.seed for t in trials):
            self.held.append(future)
        return future

    def wait(self, handles, timeout):  # noqa: ANN001, ANN201
        return [h for h in handles if h.done() and (self.released or h not in self.held)]

    def release(self) -> None:
        self.released = True

    def finished(self, trial_ids):  # noqa: ANN001, ANN201
        """Nothing has finished inside a held batch (its computation at submit is a
        shortcut of the test, not something a worker reported)."""
        return {}


def _drive(dispatcher: Dispatcher, until, timeout: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "condition not reached"
        dispatcher.step()
        time.sleep(0.01)


def test_cancelled_batch_releases_its_replica_values(factory, database_url) -> None:
    """Sweep A's held batch owns the replica keys; sweep B shares them and finishes
    first without the values.  A is cancelled: the keys are freed and B gets them."""
    settings = settings_for(database_url, batch_size=3)
    first = submit(factory, {**SMALL, "seeds": [0]}, settings)
    runner = Holding(seed=0)
    dispatcher = Dispatcher(factory, settings, runner)
    _drive(dispatcher, lambda: runner.held)
    submit(factory, {**SMALL, "name": "b", "seeds": [1]}, settings)
    with session_scope(factory) as session:
        sweep_store.cancel_sweep(session, first.id)
    dispatcher.run_until_idle(timeout=60)
    trials = rows(factory)
    assert {t.status for t in trials if t.seed == 0} == {"cancelled"}
    assert_all_succeeded_with_theory([t for t in trials if t.seed == 1])
    assert not dispatcher.ledger.inflight_keys


def test_killed_batch_releases_its_replica_values(factory, database_url) -> None:
    """A batch killed past its hard limit fails its trials and frees its keys."""
    settings = settings_for(database_url, batch_size=3)
    submit(factory, SMALL, settings)
    runner = Holding(seed=0)
    dispatcher = Dispatcher(factory, settings, runner)
    _drive(dispatcher, lambda: runner.held and len(dispatcher.inflight) == 1)
    held = dispatcher.inflight[0]
    assert held.batch.theory_wanted, "the held batch owns the replica keys"
    # What the hard-limit watchdog does to a batch past its limit (dln batches have none;
    # nonlinear trials are too slow to hold here).
    held.batch = replace(held.batch, hard_limit_s=1.0)
    dispatcher._kill_overdue(held)
    dispatcher.run_until_idle(timeout=60)
    trials = rows(factory)
    killed = [t for t in trials if t.seed == 0]
    assert {t.status for t in killed} == {"failed"}
    assert all("hard time limit" in t.error for t in killed)
    assert_all_succeeded_with_theory([t for t in trials if t.seed == 1])


def _is_result_write(statement: str) -> bool:
    """The bulk UPDATE of ``transitions.finish_running`` (not the claim, not a backfill)."""
    return statement.startswith("UPDATE trials SET status") and "gen_error_sim" in statement


def _inject_failures(engine, count: int, matches) -> dict:  # noqa: ANN001
    """Make the next ``count`` statements for which ``matches(sql)`` holds raise
    OperationalError inside the driver's transaction (rolled back as a real one is)."""
    state = {"left": count, "raised": 0}

    @event.listens_for(engine, "before_cursor_execute")
    def _fail(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if state["left"] > 0 and matches(statement.lstrip()):
            state["left"] -= 1
            state["raised"] += 1
            raise OperationalError(
                statement, parameters, Exception("database is locked (injected)")
            )

    return state


@pytest.mark.parametrize("failures", [1, 4])
def test_database_error_while_persisting_loses_nothing(engine, factory, database_url, failures):
    """The write of finished results fails ``failures`` times: the outputs are kept and
    written on later rounds (with backoff); no trial is rerun, none waits for its lease
    to expire, and every replica value lands."""
    settings = settings_for(
        database_url, batch_size=3, lease_seconds=60, persist_backoff_seconds=0.05
    )
    submit(factory, SMALL, settings)
    runner = Counting()
    dispatcher = Dispatcher(factory, settings, runner)
    state = _inject_failures(engine, failures, _is_result_write)
    started = time.monotonic()
    dispatcher.run_until_idle(timeout=50)
    assert time.monotonic() - started < settings.dispatch.lease_seconds / 2
    assert state["raised"] == failures
    trials = rows(factory)
    assert len(trials) == 6
    assert_all_succeeded_with_theory(trials)
    assert {t.attempts for t in trials} == {1}  # not rerun
    assert runner.executions == 6
    assert dispatcher.writes.dropped == 0


def test_database_error_while_saving_theory_loses_nothing(engine, factory, database_url):
    """The replica values' insert fails: the same write is retried, values included."""
    settings = settings_for(database_url, batch_size=6, persist_backoff_seconds=0.05)
    submit(factory, SMALL, settings)
    state = _inject_failures(
        engine, 2, lambda sql: sql.startswith("INSERT INTO theory_predictions")
    )
    dispatcher = Dispatcher(factory, settings, InlineRunner())
    dispatcher.run_until_idle(timeout=50)
    assert state["raised"] == 2
    trials = rows(factory)
    assert_all_succeeded_with_theory(trials)
    assert {t.attempts for t in trials} == {1}


def test_late_result_of_an_expired_claim_is_discarded(factory, database_url) -> None:
    """Dispatcher A's batch outlives its lease; B re-claims and finishes the trials; A's
    late result then changes nothing (guarded by owner and attempt)."""
    settings = settings_for(database_url, batch_size=6, lease_seconds=0.3, max_attempts=3)
    submit(factory, SMALL, settings)
    slow = Holding(seed=0)
    late = Dispatcher(factory, settings, slow, owner="slow")
    _drive(late, lambda: slow.held)
    time.sleep(0.5)  # A's lease runs out (A takes no rounds: no renewal)
    fast = Dispatcher(factory, settings_for(database_url, lease_seconds=60), InlineRunner())
    fast.run_until_idle(timeout=60)
    before = {t.id: (t.finished_at, t.attempts, t.gen_error_sim) for t in rows(factory)}
    assert {attempts for _, attempts, _ in before.values()} == {2}
    slow.release()
    _drive(late, lambda: not late.inflight and not len(late.writes))
    after = {t.id: (t.finished_at, t.attempts, t.gen_error_sim) for t in rows(factory)}
    assert after == before  # nothing overwritten
    assert_all_succeeded_with_theory(rows(factory))


def test_stale_claim_cannot_write_even_for_the_same_owner(factory, database_url) -> None:
    """A trial re-claimed by the *same* dispatcher after its lease expired: the first
    claim's late write is discarded; only the current claim's lands."""
    settings = settings_for(database_url)
    submit(factory, SMALL, settings)
    with session_scope(factory) as session:
        first = transitions.claim_pending(session, "me", 6, 0.05, postgres=False)
    time.sleep(0.1)
    with session_scope(factory) as session:
        assert transitions.expire_leases(session, 3) == (6, 0)
        second = transitions.claim_pending(session, "me", 6, 60, postgres=False)
    assert [c.attempt for c in second] == [2] * 6
    with session_scope(factory) as session:
        stale = [(c, TrialOutcome.failed("stale")) for c in first]
        assert transitions.finish_running(session, "me", stale) == 0
        assert transitions.renew_leases(session, "me", first, 60) == 0
        assert transitions.requeue_running(session, "me", first, "stale") == 0
        fresh = [(c, TrialOutcome.succeeded(gen_error_sim=0.5)) for c in second]
        assert transitions.finish_running(session, "me", fresh) == 6
    assert {t.status for t in rows(factory)} == {"succeeded"}


def test_every_transition_is_checked_against_the_table() -> None:
    with pytest.raises(transitions.IllegalTransition):
        transitions._leaving([transitions.SUCCEEDED], transitions.PENDING)
    with pytest.raises(transitions.IllegalTransition):
        transitions._leaving([transitions.PENDING], transitions.SUCCEEDED)
    transitions._leaving([transitions.FAILED, transitions.CANCELLED], transitions.PENDING)
