"""Trials run in legs (execution ``leg_steps``): an unfinished trial goes back to pending
with its saved state and continues in a later batch, instead of restarting.

Counted with real SQLite and PostgreSQL: every trial succeeds once, with the numbers of
one run straight through (1e-12, float64); a leg uses no attempt (a trial needs more legs
than ``max_attempts`` here); the state is gone once the result is in; the end of a leg is
written only by the claim that ran it, once; a stopped dispatcher loses the leg in
flight, not the legs before it.  Batches run in-process (``InlineRunner``, which counts
what it computes); the last test runs a sweep in legs on a real local Ray.
"""

from __future__ import annotations

import math
from collections import Counter
from concurrent.futures import Future

import pytest
from sqlalchemy import func, select

from service.dispatch import Dispatcher
from service.runners import InlineRunner
from service.store import transitions
from service.store.models import TrialState
from service.store.session import session_scope
from service.store.sweeps import cancel_sweep
from tests.service.factories import small_finetune_spec
from tests.service.test_dispatch_faults import (
    assert_all_succeeded_with_theory,
    engine,  # noqa: F401 - fixture
    factory,  # noqa: F401 - fixture
    rows,
    settings_for,
    submit,
)
from workers.dln.gd_types import GDState
from workers.records import ClaimedTrial, TrialOutcome
from workers.workloads import WORKLOADS

LEG = 150
# Regime I, IV and a lazy setting at D = 40: 100 to 2,000 steps at lr 0.2, so most
# trials need several legs of 150 steps.
SPEC = small_finetune_spec(
    name="legs",
    params={
        **{k: v for k, v in small_finetune_spec()["params"].items() if k != "gamma_ft"},
        "c_pt": 1e-3,
    },
    axes={},
    zip=[{"lambda_pt": [-1.0, -0.99, 0.0], "gamma_ft": [1e-6, 0.0, 0.5]}],
    execution={"lr": 0.2, "max_steps": 2000, "leg_steps": LEG},
)

# The same trials without legs (``leg_steps`` is not in the key).
STRAIGHT = {**SPEC, "execution": {k: v for k, v in SPEC["execution"].items() if k != "leg_steps"}}


class CountingRunner(InlineRunner):
    """In-process batches; ``legs`` counts each trial's computations, ``starts`` the step
    each one started from."""

    def __init__(self) -> None:
        super().__init__()
        self.legs: Counter[int] = Counter()
        self.starts: dict[int, list[int]] = {}

    def submit(self, workload, trials, theory_wanted, gpus, *, theory_only=False):  # noqa: ANN001, ANN201
        if not theory_only:
            for trial in trials:
                self.legs[trial.trial_id] += 1
                self.starts.setdefault(trial.trial_id, []).append(trial.resume_step)
        return super().submit(workload, trials, theory_wanted, gpus, theory_only=theory_only)


def straight_through(found) -> dict[int, TrialOutcome]:  # noqa: ANN001
    """The same trials run in one batch without legs."""
    claims = [
        ClaimedTrial(
            t.id,
            1,
            "dln_finetune",
            t.params,
            t.seed,
            {**t.execution, "leg_steps": None},
            t.batch_key,
            t.group_key,
        )
        for t in found
    ]
    outcomes = WORKLOADS["dln_finetune"].run(claims, {}).outcomes
    assert not any(o.continues for o in outcomes)
    return {claim.trial_id: outcome for claim, outcome in zip(claims, outcomes, strict=True)}


def states_count(session_factory) -> int:  # noqa: ANN001
    with session_scope(session_factory) as session:
        return session.scalar(select(func.count()).select_from(TrialState))


def run_to_the_end(factory, settings, owner: str):  # noqa: ANN001, ANN201, F811
    """Run every pending trial in process: the runner (what it computed), the trials,
    each checked succeeded with its theory and no saved state left, and their results
    run straight through without legs."""
    runner = CountingRunner()
    Dispatcher(factory, settings, runner, owner=owner).run_until_idle(timeout=300)
    found = rows(factory)
    assert_all_succeeded_with_theory(found)
    assert states_count(factory) == 0
    return runner, found, straight_through(found)


def test_a_sweep_in_legs_equals_one_run_straight_through(factory, database_url):  # noqa: F811
    settings = settings_for(database_url, batch_size=6, max_attempts=2)
    submit(factory, SPEC, settings)
    runner, found, expected = run_to_the_end(factory, settings, "legs")
    most = 0
    for trial in found:
        reference = expected[trial.id]
        steps = trial.metrics["steps"]
        assert steps == reference.metrics["steps"] and trial.stop_reason == reference.stop_reason
        assert trial.gen_error_sim == pytest.approx(reference.gen_error_sim, rel=1e-12)
        assert trial.metrics["test_mse"] == pytest.approx(reference.metrics["test_mse"], rel=1e-12)
        # One computation per leg, each from where the last one stopped; no attempt used.
        legs = math.ceil(steps / LEG)
        assert runner.legs[trial.id] == legs
        assert runner.starts[trial.id] == [LEG * i for i in range(legs)]
        assert trial.attempts == 1 and trial.metrics["legs"] == legs
        assert trial.wall_time_s > 0
        most = max(most, legs)
    assert most > settings.dispatch.max_attempts, "no trial needed more legs than attempts"


def test_the_end_of_a_leg_is_written_once_by_its_own_claim(factory, database_url):  # noqa: F811
    settings = settings_for(database_url)
    regime_one = {**SPEC, "seeds": 1, "zip": [{"lambda_pt": [-1.0], "gamma_ft": [1e-6]}]}
    submit(factory, regime_one, settings)
    postgres = database_url.startswith("postgresql")

    def claim(owner: str) -> ClaimedTrial:
        with session_scope(factory) as session:
            (claimed,) = transitions.claim_pending(session, owner, 10, 60.0, postgres=postgres)
        return claimed

    def leg_end(claimed: ClaimedTrial) -> TrialOutcome:
        (outcome,) = WORKLOADS["dln_finetune"].run([claimed], {}).outcomes
        assert outcome.continues
        return outcome

    def write(claimed: ClaimedTrial, outcome: TrialOutcome, owner: str = "a") -> int:
        with session_scope(factory) as session:
            return transitions.finish_running(session, owner, [(claimed, outcome)])

    first = claim("a")
    assert first.resume_state is None and first.resume_step == 0
    first_end = leg_end(first)
    assert write(first, first_end) == 1
    assert write(first, first_end) == 0  # a replayed write (a retried commit) changes nothing
    second = claim("a")
    # Same owner and, the attempt given back, the same attempt: only the step tells the
    # two claims apart.
    assert (second.attempt, second.resume_step) == (first.attempt, LEG)
    assert GDState.from_bytes(second.resume_state).step == LEG
    assert write(first, first_end) == 0  # the first leg's write, replayed after the re-claim
    (row,) = rows(factory)
    assert (row.status, row.lease_owner) == ("running", "a")
    second_end = leg_end(second)
    assert write(second, second_end, owner="b") == 0  # not b's claim
    assert write(second, second_end) == 1
    with session_scope(factory) as session:
        saved = session.get(TrialState, row.id)
        assert (saved.step, saved.legs) == (2 * LEG, 2)
        assert saved.seconds == pytest.approx(first_end.wall_time_s + second_end.wall_time_s)


class StopsAfterLegs(CountingRunner):
    """Runs ``legs`` batches, then holds every later one forever (a worker still busy
    when its dispatcher is stopped)."""

    def __init__(self, legs: int) -> None:
        super().__init__()
        self.budget = legs

    def submit(self, workload, trials, theory_wanted, gpus, *, theory_only=False):  # noqa: ANN001, ANN201
        if self.budget <= 0:
            return Future()
        self.budget -= 1
        return super().submit(workload, trials, theory_wanted, gpus, theory_only=theory_only)


def test_a_stopped_dispatcher_loses_only_the_leg_in_flight(factory, database_url):  # noqa: F811
    settings = settings_for(database_url, batch_size=6)
    submit(factory, SPEC, settings)
    held = StopsAfterLegs(legs=2)
    dispatcher = Dispatcher(factory, settings, held, owner="stopped")
    for _ in range(10_000):
        if held.budget <= 0 and dispatcher.inflight:
            break  # the third leg's batch is in flight, held
        dispatcher.step()
    assert dispatcher.inflight, "every trial finished within two legs: nothing to stop"
    dispatcher.stop(release=True)
    found = rows(factory)
    assert {t.status for t in found} <= {"pending", "succeeded"}
    with session_scope(factory) as session:
        saved = {s.trial_id: s.step for s in session.scalars(select(TrialState))}
    assert saved and set(saved.values()) == {2 * LEG}
    after, found, expected = run_to_the_end(factory, settings, "after")
    for trial in found:
        assert trial.gen_error_sim == pytest.approx(expected[trial.id].gen_error_sim, rel=1e-12)
        if trial.id in saved:
            # It went on from the second leg's end, not from step 0.
            assert after.starts[trial.id][0] == 2 * LEG


def cancel(session_factory, sweep_id: str) -> None:  # noqa: ANN001
    with session_scope(session_factory) as session:
        cancel_sweep(session, sweep_id)


def test_a_trial_revived_by_a_submission_in_legs_runs_in_its_legs(factory, database_url):  # noqa: F811
    """A trial cancelled before it ran, asked for again with ``leg_steps``: the same key
    (legs change no number), so it is revived, and it runs in the new submission's legs,
    not with the execution it was first stored with."""
    settings = settings_for(database_url, batch_size=6, max_attempts=2)
    cancel(factory, submit(factory, STRAIGHT, settings).id)
    first = {t.id: (t.key, t.batch_key) for t in rows(factory)}
    assert {t.status for t in rows(factory)} == {"cancelled"}

    submit(factory, SPEC, settings)
    revived = rows(factory)
    assert {t.id: t.key for t in revived} == {i: key for i, (key, _) in first.items()}
    assert all(t.execution["leg_steps"] == LEG for t in revived)
    assert all(t.batch_key != first[t.id][1] for t in revived)  # never batched with the old
    runner, found, expected = run_to_the_end(factory, settings, "legs")
    assert max(runner.legs.values()) > 1
    for trial in found:
        assert runner.legs[trial.id] == math.ceil(trial.metrics["steps"] / LEG)
        assert trial.gen_error_sim == pytest.approx(expected[trial.id].gen_error_sim, rel=1e-12)


def test_a_trial_stopped_between_legs_keeps_them_when_asked_again_without(
    factory,  # noqa: F811
    database_url,
):
    """A sweep in legs cancelled after two legs, asked for again without ``leg_steps``:
    the trials with a saved state keep their legs and go on from it (no work lost); the
    others take the new submission's execution."""
    settings = settings_for(database_url, batch_size=6)
    sweep = submit(factory, SPEC, settings)
    held = StopsAfterLegs(legs=2)
    dispatcher = Dispatcher(factory, settings, held, owner="stopped")
    for _ in range(10_000):
        if held.budget <= 0 and dispatcher.inflight:
            break
        dispatcher.step()
    dispatcher.stop(release=True)
    cancel(factory, sweep.id)
    with session_scope(factory) as session:
        saved = {s.trial_id: s.step for s in session.scalars(select(TrialState))}
    unfinished = {t.id for t in rows(factory) if t.status == "cancelled"}
    assert saved and set(saved) <= unfinished

    submit(factory, STRAIGHT, settings)
    for trial in rows(factory):
        if trial.id in saved:
            assert trial.execution.get("leg_steps") == LEG, trial.id
        elif trial.id in unfinished:
            assert "leg_steps" not in trial.execution, trial.id
    after, found, expected = run_to_the_end(factory, settings, "after")
    for trial in found:
        assert trial.gen_error_sim == pytest.approx(expected[trial.id].gen_error_sim, rel=1e-12)
        if trial.id in saved:
            assert after.starts[trial.id][0] == saved[trial.id]  # from its saved step
        elif trial.id in unfinished:
            assert after.legs[trial.id] == 1  # straight through, as now asked


@pytest.mark.slow
def test_a_sweep_in_legs_on_a_real_ray(factory, database_url, ray_runner):  # noqa: F811
    settings = settings_for(database_url, batch_size=6, max_attempts=2)
    submit(factory, SPEC, settings)
    Dispatcher(factory, settings, ray_runner, owner="ray-legs").run_until_idle(timeout=300)
    found = rows(factory)
    assert_all_succeeded_with_theory(found)
    assert states_count(factory) == 0
    expected = straight_through(found)
    assert max(t.metrics["steps"] for t in found) > settings.dispatch.max_attempts * LEG
    for trial in found:
        assert trial.metrics["steps"] == expected[trial.id].metrics["steps"]
        assert trial.gen_error_sim == pytest.approx(expected[trial.id].gen_error_sim, rel=1e-12)
