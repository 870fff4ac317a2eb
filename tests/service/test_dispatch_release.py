"""A clean stop of the dispatcher (SQLite and PostgreSQL, real store, in-process batches).

``Dispatcher.stop()`` writes what already finished and hands the rest back at once:
running trials go back to pending with their attempt given back
(``transitions.release_running``, guarded by owner and attempt and stamped for the event
log), and a second dispatcher finishes the sweep without running a finished trial again.
The real processes (``sweeps serve`` on SIGTERM) are in ``tests/test_dispatch_kill.py``.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import func, select

from service.dispatch import Dispatcher
from service.runners import InlineRunner
from service.store import transitions
from service.store.models import Trial
from service.store.session import session_scope
from tests.service.test_dispatch_faults import (
    SMALL,
    Holding,
    assert_all_succeeded_with_theory,
    engine,  # noqa: F401 - fixture
    factory,  # noqa: F401 - fixture
    rows,
    settings_for,
    submit,
)


class Late(Holding):
    """Batches holding a trial of ``seed`` never finish; the others finish, but the loop
    sees each of them only on the second look after its submit (the task ended between
    the loop's last look and the stop)."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.looks: dict[int, int] = {}

    def wait(self, handles, timeout):  # noqa: ANN001, ANN201
        ready = []
        for handle in super().wait(handles, timeout):
            self.looks[id(handle)] = self.looks.get(id(handle), 0) + 1
            if self.looks[id(handle)] > 1:
                ready.append(handle)
        return ready


def test_release_gives_the_attempt_back_and_is_guarded(factory, database_url) -> None:  # noqa: F811
    settings = settings_for(database_url)
    submit(factory, SMALL, settings)
    with session_scope(factory) as session:
        claimed = transitions.claim_pending(
            session, "me", 2, 60.0, postgres=database_url.startswith("postgresql")
        )
    with session_scope(factory) as session:
        seq_before = session.scalar(select(func.max(Trial.updated_seq)))
        # Not this owner's claim, or an older attempt of it: nothing changes.
        assert transitions.release_running(session, "other", claimed) == 0
        stale = [replace(claim, attempt=claim.attempt - 1) for claim in claimed]
        assert transitions.release_running(session, "me", stale) == 0
        # (a claim takes whole groups, so it may hold more than the 2 asked for)
        assert transitions.release_running(session, "me", claimed) == len(claimed) >= 2
        # A second release of the same claims finds nothing running.
        assert transitions.release_running(session, "me", claimed) == 0
    released = {t.id: t for t in rows(factory) if t.id in {c.trial_id for c in claimed}}
    for trial in released.values():
        assert (trial.status, trial.attempts, trial.lease_owner) == ("pending", 0, None)
        assert trial.lease_expires_at is None and trial.started_at is None
        assert trial.updated_seq > seq_before  # stamped: the event stream sees it


def test_stop_writes_finished_batches_and_releases_the_rest(factory, database_url) -> None:  # noqa: F811
    settings = settings_for(database_url, batch_size=3, max_inflight_batches=8)
    submit(factory, SMALL, settings)  # 3 λ_PT × seeds 0, 1: one batch per seed
    runner = Late(seed=1)
    first = Dispatcher(factory, settings, runner, owner="first")
    first.step()  # claims and submits both batches; sees neither finished
    assert {t.status for t in rows(factory)} == {"running"}
    assert first.stop() == 3  # the held batch's trials
    assert first.released == 3

    stopped = {t.id: t for t in rows(factory)}
    done = [t for t in stopped.values() if t.seed == 0]
    back = [t for t in stopped.values() if t.seed == 1]
    # The batch that had ended is written, not thrown away ...
    assert_all_succeeded_with_theory(done)
    assert all(t.attempts == 1 for t in done)
    # ... and the one still running is pending at once: no lease to wait for, and the
    # interrupted attempt does not count.
    assert [(t.status, t.attempts, t.lease_owner) for t in back] == [("pending", 0, None)] * 3

    second = Dispatcher(factory, settings, InlineRunner(), owner="second")
    second.run_until_idle(timeout=60)
    after = {t.id: t for t in rows(factory)}
    assert_all_succeeded_with_theory(list(after.values()))
    for trial in done:  # not run again
        assert (after[trial.id].attempts, after[trial.id].finished_at) == (1, trial.finished_at)
    assert all(after[t.id].attempts == 1 for t in back)  # run once, by the second


def test_stop_without_release_leaves_the_leases(factory, database_url) -> None:  # noqa: F811
    """A simulated crash (``release=False``) hands nothing back: the leases expire."""
    settings = settings_for(database_url, batch_size=3, max_inflight_batches=8)
    submit(factory, SMALL, settings)
    first = Dispatcher(factory, settings, Holding(seed=1), owner="first")
    first.step()
    assert first.stop(release=False) == 0
    held = [t for t in rows(factory) if t.seed == 1]
    assert {(t.status, t.lease_owner) for t in held} == {("running", "first")}
