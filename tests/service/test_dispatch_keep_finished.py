"""Trials that finished inside a batch that never returned are kept, not run again.

A ``dln_finetune`` batch sends each trial's outcome with its ``done`` progress report
(``workers.dln.progress``; the board keeps it apart: ``ProgressBoard.finished``).  When the
batch is stopped (``Dispatcher.stop``: SIGTERM, Ctrl-C), killed past its hard limit or
fails, the dispatcher writes those trials (``Dispatcher._keep_finished``) and only the rest
is released, failed or retried.  Counted with real SQLite and PostgreSQL: every trial
succeeds once, the kept ones are never run again, and their numbers equal a run of the
whole batch straight through.

The in-process runner here simulates a worker that finished the batch's first group and
then stopped, died or hung (the computation of that group is real; what cannot run here
in-process is a worker dying halfway through its own task).  The last test does it for
real: a real local Ray, a real batch of two datasets, stopped while the second one trains.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import Future
from dataclasses import replace

import pytest

from service.dispatch import Dispatcher
from service.runners import InlineRunner
from service.store import transitions
from service.store.session import session_scope
from tests.service.test_dispatch_faults import (
    SMALL,
    assert_all_succeeded_with_theory,
    engine,  # noqa: F401 - fixture
    factory,  # noqa: F401 - fixture
    rows,
    settings_for,
    submit,
)
from workers.records import ClaimedTrial
from workers.runtime import execute_batch


class FirstGroupOnly(InlineRunner):
    """The first batch it gets computes only its first group (really, reporting to the
    board), then never finishes, or fails with ``fail``; later batches (every batch with
    ``whole``) run whole.
    ``ran`` counts how often each trial was computed."""

    def __init__(self, *, fail: bool = False, whole: bool = False) -> None:
        super().__init__()
        self.fail, self.whole = fail, whole
        self.ran: Counter[int] = Counter()
        self.broken: list[ClaimedTrial] = []

    def submit(self, workload, trials, theory_wanted, gpus, *, theory_only=False):  # noqa: ANN001, ANN201
        if theory_only or self.whole or self.broken:
            if not theory_only:
                self.ran.update(t.trial_id for t in trials)
            return super().submit(workload, trials, theory_wanted, gpus, theory_only=theory_only)
        self.broken = list(trials)
        first = [t for t in trials if t.group_key == trials[0].group_key]
        assert len(first) < len(trials), "the batch must hold more than one group"
        execute_batch(workload, first, {}, self.board.report)
        self.ran.update(t.trial_id for t in first)
        future: Future = Future()
        if self.fail:
            future.set_exception(RuntimeError("worker died after its first group"))
        return future


def _straight(trials: list[ClaimedTrial]) -> dict[int, float]:
    """gen_error_sim of the same trials computed as one batch, straight through."""
    output = execute_batch("dln_finetune", trials, {})
    return {t.trial_id: o.gen_error_sim for t, o in zip(trials, output.outcomes, strict=True)}


def _assert_kept_equal_straight(runner: FirstGroupOnly, factory) -> list[int]:  # noqa: ANN001, F811
    """The kept trials (run once, in the broken batch) equal a straight run; their ids."""
    straight = _straight(runner.broken)
    first_group = runner.broken[0].group_key
    kept = [t.trial_id for t in runner.broken if t.group_key == first_group]
    by_id = {t.id: t for t in rows(factory)}
    for trial_id in kept:
        assert by_id[trial_id].gen_error_sim == pytest.approx(straight[trial_id], abs=1e-12)
    return kept


def test_stop_keeps_the_trials_that_finished_inside_a_running_batch(factory, database_url):  # noqa: F811
    settings = settings_for(database_url, batch_size=6)  # one batch: two groups of three
    submit(factory, SMALL, settings)
    runner = FirstGroupOnly()
    dispatcher = Dispatcher(factory, settings, runner, owner="stopped")
    dispatcher.step()
    assert len(dispatcher.inflight) == 1 and len(runner.broken) == 6

    assert dispatcher.stop(release=True) == 3
    assert dispatcher.kept_at_stop == 3
    first_group = runner.broken[0].group_key
    by_id = {t.id: t for t in rows(factory)}
    for trial in runner.broken:
        row = by_id[trial.trial_id]
        if trial.group_key == first_group:  # finished inside the batch: written
            assert (row.status, row.attempts, row.lease_owner) == ("succeeded", 1, None)
            assert row.gen_error_sim is not None and row.wall_time_s is None
            assert row.envelope and row.code_version == row.envelope["code_version"]
        else:  # still running at the stop: back to pending, the attempt given back
            assert (row.status, row.attempts, row.lease_owner) == ("pending", 0, None)
    finished_at = {i: by_id[i].finished_at for i in runner.ran}

    # A second dispatcher finishes the sweep without running a kept trial again.
    after = FirstGroupOnly(whole=True)
    Dispatcher(factory, settings, after, owner="second").run_until_idle(timeout=60)
    trials = rows(factory)
    assert_all_succeeded_with_theory(trials)  # kept trials got their replica value too
    assert set(after.ran) == {t.trial_id for t in runner.broken} - set(runner.ran)
    assert all(count == 1 for count in (runner.ran + after.ran).values())
    assert {i: t.finished_at for t in trials for i in [t.id] if i in finished_at} == finished_at
    _assert_kept_equal_straight(runner, factory)


def test_failed_batch_keeps_its_finished_trials_and_retries_the_rest(factory, database_url):  # noqa: F811
    settings = settings_for(database_url, batch_size=6)
    submit(factory, SMALL, settings)
    runner = FirstGroupOnly(fail=True)
    dispatcher = Dispatcher(factory, settings, runner)
    dispatcher.run_until_idle(timeout=60)
    trials = rows(factory)
    assert_all_succeeded_with_theory(trials)
    assert dispatcher.kept == 3
    # Every trial computed once: the first group in the batch that failed, the rest in
    # its retry (the attempt not counted: the batch, not the trial, failed).
    assert sorted(runner.ran) == sorted(t.id for t in trials)
    assert set(runner.ran.values()) == {1}
    assert {t.attempts for t in trials} == {1}
    _assert_kept_equal_straight(runner, factory)


def test_hard_limit_kill_fails_only_the_unfinished_trials(factory, database_url):  # noqa: F811
    settings = settings_for(database_url, batch_size=6)
    submit(factory, SMALL, settings)
    runner = FirstGroupOnly()
    dispatcher = Dispatcher(factory, settings, runner)
    dispatcher.step()
    flight = dispatcher.inflight[0]
    # What the hard-limit watchdog does to a batch past its limit (dln batches have none).
    flight.batch = replace(flight.batch, hard_limit_s=1.0)
    dispatcher._kill_overdue(flight)
    dispatcher.run_until_idle(timeout=60)
    first_group = runner.broken[0].group_key
    by_id = {t.id: t for t in rows(factory)}
    kept = [by_id[t.trial_id] for t in runner.broken if t.group_key == first_group]
    killed = [by_id[t.trial_id] for t in runner.broken if t.group_key != first_group]
    assert_all_succeeded_with_theory(kept)
    assert {t.status for t in killed} == {"failed"}
    assert all("hard time limit" in t.error for t in killed)
    assert set(runner.ran.values()) == {1} and len(runner.ran) == 3


def test_a_kept_result_is_guarded_by_its_claim(factory, database_url):  # noqa: F811
    """A stopped dispatcher whose claim was taken over writes nothing for it."""
    settings = settings_for(database_url, batch_size=6, lease_seconds=0.05)
    submit(factory, SMALL, settings)
    runner = FirstGroupOnly()
    dispatcher = Dispatcher(factory, settings, runner, owner="late")
    dispatcher.step()
    time.sleep(0.1)
    with session_scope(factory) as session:
        transitions.expire_leases(session, settings.dispatch.max_attempts)
        taken = transitions.claim_pending(
            session, "other", 10, 60.0, postgres=database_url.startswith("postgresql")
        )
    assert len(taken) == 6
    dispatcher.stop(release=True)
    by_id = {t.id: t for t in rows(factory)}
    assert {(t.status, t.lease_owner) for t in by_id.values()} == {("running", "other")}
    assert all(t.gen_error_sim is None for t in by_id.values())


@pytest.mark.slow
def test_stop_of_a_real_ray_batch_keeps_its_finished_dataset(factory, database_url, ray_runner):  # noqa: F811
    """Real local Ray, real batch of two datasets (one block each, run one after the
    other): stopped while the second trains, the first dataset's trials are written."""
    spec = {
        **SMALL,
        "name": "two-datasets",
        "params": {**SMALL["params"], "D": 400, "alpha": 0.5},
        # lr small and a tight threshold: each block trains for seconds
        "execution": {"lr": 0.05, "max_steps": 20000, "loss_threshold": 1e-12},
    }
    settings = settings_for(database_url, batch_size=6, progress_poll_seconds=0.1)
    submit(factory, spec, settings)
    dispatcher = Dispatcher(factory, settings, ray_runner, owner="ray-stopped")
    dispatcher.step()
    (flight,) = dispatcher.inflight
    trials = flight.batch.trials
    first = {t.trial_id for t in trials if t.group_key == trials[0].group_key}
    deadline = time.monotonic() + 120
    while True:  # until the first dataset's columns are done and the second's train
        reports = ray_runner.progress([t.trial_id for t in trials])
        phases = {i: report.get("phase") for i, report in reports.items()}
        if all(phases.get(i) == "done" for i in first) and any(
            phases.get(t.trial_id) == "finetune" for t in trials if t.trial_id not in first
        ):
            break
        assert ray_runner.wait([flight.handle], 0.0) == [], "the batch ended before the stop"
        assert time.monotonic() < deadline, phases
        time.sleep(0.05)
    released = dispatcher.stop(release=True)
    by_id = {t.id: t for t in rows(factory)}
    assert dispatcher.kept_at_stop == len(first) and released == len(trials) - len(first)
    for trial in trials:
        row = by_id[trial.trial_id]
        expected = "succeeded" if trial.trial_id in first else "pending"
        assert row.status == expected and row.lease_owner is None, (trial.trial_id, row.status)
    straight = _straight([t for t in trials if t.trial_id in first])
    for trial_id in first:
        assert by_id[trial_id].gen_error_sim == pytest.approx(straight[trial_id], abs=1e-12)
