"""Fair share at claim time: the pure allocation, and a real dispatcher on SQLite and
PostgreSQL (one and two dispatchers).

The dispatcher runs with a runner that returns an outcome at once instead of computing
it: what is under test is which trials each claim takes, and 5,100 replica curves would
take minutes without saying anything more about that.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from concurrent.futures import Future

import pytest
from sqlalchemy import select

from api_schemas.spec import SweepSpec
from service.dispatch import Dispatcher
from service.scheduling.fair_share import Queue, allocate, claim_rank, factor
from service.settings import DispatchSettings, Settings
from service.store import users as user_store
from service.store.migrate import upgrade_to_head
from service.store.models import Trial, User
from service.store.session import make_engine, make_session_factory, session_scope
from service.sweeps import submit_sweep
from workers.records import BatchOutput, TheoryValue, TrialOutcome


def test_factor_is_slurms() -> None:
    assert factor(Queue("a", 1, 0), 0, 2) == 1.0
    assert factor(Queue("a", 1, 50), 100, 2) == pytest.approx(0.5)  # exactly at its share
    assert factor(Queue("a", 1, 100), 100, 2) == pytest.approx(0.25)


def test_allocation_tracks_shares_and_serves_newcomers_first() -> None:
    assert allocate([Queue("a", 3, 0), Queue("b", 1, 0)], 40) == [("a", 30), ("b", 10)]
    assert allocate([Queue("a", 1, 5000), Queue("b", 1, 0)], 100) == [("b", 100)]
    # A running-trials cap is honoured and the rest goes to the others.
    assert allocate([Queue("a", 1, 0, free_slots=2), Queue("b", 1, 0)], 40) == [
        ("b", 38),
        ("a", 2),
    ] or allocate([Queue("a", 1, 0, free_slots=2), Queue("b", 1, 0)], 40) == [("a", 2), ("b", 38)]
    assert allocate([Queue("a", 1, 0, free_slots=0)], 40) == []


def test_claim_rank_orders_classes_then_priority() -> None:
    ranks = [claim_rank("ci", 0), claim_rank("interactive", 100), claim_rank("batch", 100)]
    assert ranks == sorted(ranks)
    assert claim_rank("batch", 100) < claim_rank("batch", -100)


class InstantRunner:
    """Returns succeeded outcomes at submit (see the module docstring); records which
    owner each round's trials belong to."""

    def __init__(self) -> None:
        self.claims: list[tuple[int, str]] = []  # (dispatcher round, owner) per trial
        self.round = 0

    def start(self) -> None: ...
    def shutdown(self) -> None: ...
    def describe(self) -> str:
        return "instant"

    def submit(self, workload, trials, theory_wanted, gpus, *, theory_only=False):  # noqa: ANN001, ANN201
        self.claims += [(self.round, t.owner) for t in trials]
        outcomes = tuple(TrialOutcome.succeeded(gen_error_asymptotic=0.5) for _ in trials)
        theory = {key: TheoryValue(0.5) for key in theory_wanted.values()}
        future: Future = Future()
        future.set_result(BatchOutput(outcomes=() if theory_only else outcomes, theory=theory))
        return future

    def wait(self, handles, timeout):  # noqa: ANN001, ANN201
        return list(handles)

    def result(self, handle):  # noqa: ANN001, ANN201
        return handle.result()

    def cancel(self, handle) -> None: ...  # noqa: ANN001
    def progress(self, trial_ids):  # noqa: ANN001, ANN201
        return {}

    def finished(self, trial_ids):  # noqa: ANN001, ANN201
        return {}

    def forget(self, trial_ids) -> None: ...  # noqa: ANN001
    def cluster_gpus(self):  # noqa: ANN201
        return None


def theory_spec(name: str, lambdas: int, gammas: int) -> dict:
    """``lambdas × gammas`` trials; the name sets c_pt, so two users share no trial."""
    c_pt = 1e-3 * (1 + sum(map(ord, name)) % 97)
    return {
        "name": name,
        "workload": "dln_theory",
        "params": {"rho_pt": 0.1, "rho_ft": 0.1, "omega": 0.5, "c_pt": c_pt, "alpha": 0.3},
        "axes": {
            "lambda_pt": {"kind": "linspace", "start": -0.9, "stop": 0.9, "num": lambdas},
            "gamma_ft": {"kind": "logspace", "start": 1e-3, "stop": 10, "num": gammas},
        },
    }


@pytest.fixture
def factory(database_url: str):
    upgrade_to_head(database_url)
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


def settings_for(url: str) -> Settings:
    return Settings(
        database_url=url,
        dispatch=DispatchSettings(
            claim_size=40, batch_size=10, max_inflight_batches=4, theory_reconcile_seconds=60
        ),
    )


def submit(factory, settings: Settings, owner: str, spec: dict) -> None:  # noqa: ANN001
    with session_scope(factory) as session:
        submit_sweep(session, SweepSpec.model_validate(spec), settings, owner, None)


def set_share(factory, owner: str, share: float) -> None:  # noqa: ANN001
    with session_scope(factory) as session:
        user_store.ensure_user(session, owner, share=share)
        session.execute(User.__table__.update().where(User.name == owner).values(share=share))


def test_a_newcomer_starts_in_the_next_claim_round(factory, database_url) -> None:
    """User A queues 5,000 trials; user B then submits 100: B's trials are in the very
    next round, and B is served before A until B's usage reaches its share."""
    settings = settings_for(database_url)
    submit(factory, settings, "alice", theory_spec("a", 50, 100))
    runner = InstantRunner()
    dispatcher = Dispatcher(factory, settings, runner)
    for round_ in range(3):
        runner.round = round_
        dispatcher.step()
    assert {owner for _, owner in runner.claims} == {"alice"}
    submit(factory, settings, "bob", theory_spec("b", 10, 10))
    runner.round = 3
    dispatcher.step()
    in_round = Counter(owner for r, owner in runner.claims if r == 3)
    assert in_round["bob"] > 0, in_round
    for round_ in range(4, 12):
        runner.round = round_
        dispatcher.step()
    bob_rounds = sorted({r for r, owner in runner.claims if owner == "bob"})
    assert bob_rounds[0] == 3
    assert sum(1 for _, owner in runner.claims if owner == "bob") == 100


@pytest.mark.parametrize("dispatchers", [1, 2])
def test_claims_track_the_configured_shares(factory, database_url, dispatchers) -> None:
    """Shares 3:1, both users with plenty of work: over the rounds where both have
    pending trials, each user's fraction of the claimed trials is within 10% of its
    share.  Two dispatchers take turns on the same database (SKIP LOCKED on PostgreSQL)."""
    if dispatchers == 2 and not database_url.startswith("postgresql"):
        pytest.skip("several dispatchers are a PostgreSQL deployment")
    settings = settings_for(database_url)
    set_share(factory, "alice", 3.0)
    set_share(factory, "bob", 1.0)
    submit(factory, settings, "alice", theory_spec("a", 20, 50))  # 1000 trials
    submit(factory, settings, "bob", theory_spec("b", 20, 50))
    runner = InstantRunner()
    fleet = [Dispatcher(factory, settings, runner) for _ in range(dispatchers)]
    for round_ in range(20):  # 20 × 40 = 800 claimed: both queues stay non-empty
        runner.round = round_
        fleet[round_ % dispatchers].step()
    claimed = Counter(owner for _, owner in runner.claims)
    total = sum(claimed.values())
    assert total == 800
    assert claimed["alice"] / total == pytest.approx(0.75, rel=0.10)
    assert claimed["bob"] / total == pytest.approx(0.25, rel=0.10)
    with session_scope(factory) as session:
        states = defaultdict(Counter)
        for owner, status in session.execute(select(Trial.owner, Trial.status)):
            states[owner][status] += 1
    assert states["alice"]["succeeded"] == claimed["alice"]
    assert states["bob"]["succeeded"] == claimed["bob"]


def test_running_quota_is_enforced_at_claim(factory, database_url) -> None:
    settings = settings_for(database_url)
    submit(factory, settings, "alice", theory_spec("a", 5, 20))
    with session_scope(factory) as session:
        session.execute(
            User.__table__.update().where(User.name == "alice").values(max_running_trials=7)
        )
    from service.store import transitions
    from service.store.claims import ClaimPolicy

    postgres = database_url.startswith("postgresql")
    policy = ClaimPolicy(half_life_s=3600)
    with session_scope(factory) as session:
        first = transitions.claim_pending(
            session, "d", 40, 60, postgres=postgres, fair_share=policy
        )
    with session_scope(factory) as session:
        second = transitions.claim_pending(
            session, "d", 40, 60, postgres=postgres, fair_share=policy
        )
    assert (len(first), len(second)) == (7, 0)


def test_get_sweep_says_why_it_waits(factory, database_url) -> None:
    from service.store import sweeps as sweep_store
    from service.sweeps import claim_policy

    settings = settings_for(database_url)
    submit(factory, settings, "alice", theory_spec("a", 5, 20))
    submit(factory, settings, "bob", theory_spec("b", 5, 10))
    runner = InstantRunner()
    Dispatcher(factory, settings, runner).step()
    with session_scope(factory) as session:
        sweep_id = (
            session.scalar(select(Trial.id))
            and sweep_store.list_sweeps(session, limit=10, offset=0, submitter="alice").items[0].id
        )
        read = sweep_store.read_sweep(session, sweep_id, wait_policy=claim_policy(settings))
    waiting = read.waiting
    assert waiting is not None and waiting.owner == "alice"
    assert waiting.rank in (1, 2) and 0 < waiting.fair_share_factor <= 1
    assert waiting.queued_ahead == 0 and waiting.share_fraction == pytest.approx(0.5)
