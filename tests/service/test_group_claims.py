"""Claims and batches keep the trials that share a dataset (or a theory curve) together.

Counted, not assumed: the dataset generator of the simulator (``make_dataset``, as the
batch evaluator calls it) is wrapped by a counter, and a reduced Exp 1 (the paper's
settings: 8 of its 10 configs share the ω = 0.5 dataset of each (seed, α)) runs through
the real dispatcher and store at the batch sizes 7, 10, 64 and 512.  Every dataset is
drawn exactly once, and every batch holds whole groups.  Real SQLite and PostgreSQL; the
two-dispatcher race runs on PostgreSQL.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict

import pytest
from sqlalchemy import select

from api_schemas.spec import SweepSpec
from service.dispatch import Dispatcher
from service.runners import InlineRunner
from service.settings import DispatchSettings, Settings
from service.store import transitions
from service.store.claims import ClaimPolicy
from service.store.migrate import upgrade_to_head
from service.store.models import Trial, User
from service.store.session import make_engine, make_session_factory, session_scope
from service.sweeps import submit_sweep

# Exp 1 (examples/paper/exp1.yaml): ω, c_PT, λ_PT, γ_FT one at a time around a baseline.
EXP1_ZIP = {
    "omega": [0.5, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
    "c_pt": [1e-3, 1e-3, 1e-3, 1e-6, 1.0, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3],
    "lambda_pt": [0.0, 0.0, 0.0, 0.0, 0.0, -1.0, -0.99, 0.99, 0.0, 0.0],
    "gamma_ft": [0.0, 0.0, 0.0, 0.0, 0.0, 1e-6, 0.0, 0.0, 1.0, 10.0],
}


def exp1_spec(seeds: int = 3) -> dict:
    """10 settings × 2 α × ``seeds``: per (seed, α) one 8-config group (ω = 0.5) and two
    single-config groups (ω = 0, 1)."""
    return {
        "name": "exp1-tiny",
        "workload": "dln_finetune",
        "params": {"teacher_norm": "exact", "D": 30, "rho_pt": 0.1, "rho_ft": 0.1, "n_test": 20},
        "zip": [EXP1_ZIP],
        "axes": {"alpha": [0.3, 0.5]},
        "seeds": seeds,
        "execution": {"lr": 0.2, "max_steps": 200},
    }


@pytest.fixture
def factory(database_url: str):
    upgrade_to_head(database_url)
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


def submit(factory, spec: dict, settings: Settings, owner: str = "anonymous") -> None:  # noqa: ANN001
    with session_scope(factory) as session:
        submit_sweep(session, SweepSpec.model_validate(spec), settings, owner, None)


class RecordingRunner(InlineRunner):
    """The in-process runner, remembering the trials of every batch it ran."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list] = []

    def submit(self, workload, trials, theory_wanted, gpus, *, theory_only=False):  # noqa: ANN001, ANN201
        if not theory_only:
            self.batches.append(list(trials))
        return super().submit(workload, trials, theory_wanted, gpus, theory_only=theory_only)


@pytest.fixture
def generations(monkeypatch):
    """Counts ``make_dataset`` calls of the batch evaluator, by dataset."""
    import workers.dln.evaluate as evaluate

    counts: Counter = Counter()
    original = evaluate.make_dataset

    def counting(task, **kwargs):  # noqa: ANN001, ANN202
        counts[(task.omega, kwargs["alpha"], kwargs["seed"])] += 1
        return original(task, **kwargs)

    monkeypatch.setattr(evaluate, "make_dataset", counting)
    return counts


@pytest.mark.parametrize("batch_size", [7, 10, 64, 512])
def test_each_dataset_is_generated_once_at_every_batch_size(
    factory, database_url, generations, batch_size
) -> None:
    settings = Settings(
        database_url=database_url,
        dispatch=DispatchSettings(batch_size=batch_size, max_inflight_batches=2),
    )
    submit(factory, exp1_spec(), settings)
    runner = RecordingRunner()
    Dispatcher(factory, settings, runner).run_until_idle(timeout=300)
    with session_scope(factory) as session:
        rows = session.execute(select(Trial.status, Trial.group_key)).all()
    assert Counter(status for status, _ in rows) == {"succeeded": 60}
    groups = Counter(key for _, key in rows)
    assert sorted(Counter(groups.values()).items()) == [(1, 12), (8, 6)]
    # 3 ω × 2 α × 3 seeds datasets, each drawn exactly once.
    assert len(generations) == 18 and set(generations.values()) == {1}
    for batch in runner.batches:
        assert len(batch) <= batch_size or len({t.group_key for t in batch}) == 1
        for key in {t.group_key for t in batch}:
            assert sum(t.group_key == key for t in batch) == groups[key]


def test_a_group_larger_than_the_limit_is_claimed_whole_and_alone(factory, database_url) -> None:
    settings = Settings(database_url=database_url)
    submit(factory, exp1_spec(seeds=1), settings)  # 20 trials: groups 8, 1, 1 per α
    postgres = database_url.startswith("postgresql")
    sizes = []
    for _ in range(10):
        with session_scope(factory) as session:
            claimed = transitions.claim_pending(session, "d", 3, 60, postgres=postgres)
        if not claimed:
            break
        sizes.append(sorted(Counter(t.group_key for t in claimed).values()))
    # The first group of each α is the 8-config one (setting 0 comes first): alone; the
    # limit 3 then packs the single-config groups.
    assert sizes == [[8], [1, 1], [8], [1, 1]]


def test_the_limit_bounds_groups_and_priorities_stay_apart(factory, database_url) -> None:
    settings = Settings(database_url=database_url)
    submit(factory, exp1_spec(seeds=2), settings)
    boosted = {**exp1_spec(seeds=2), "name": "boosted", "priority": 5}
    boosted["zip"] = [{**EXP1_ZIP, "gamma_ft": [g + 0.5 for g in EXP1_ZIP["gamma_ft"]]}]
    submit(factory, boosted, settings)  # same datasets, other configs, higher priority
    postgres = database_url.startswith("postgresql")
    with session_scope(factory) as session:
        claimed = transitions.claim_pending(session, "d", 20, 60, postgres=postgres)
    assert {t.priority for t in claimed} == {5}
    per_group = Counter(t.group_key for t in claimed)
    assert sum(per_group.values()) <= 20
    with session_scope(factory) as session:
        pending = Counter(
            session.scalars(
                select(Trial.group_key).where(Trial.status == "pending", Trial.priority == 5)
            )
        )
    assert not set(per_group) & set(pending)  # no boosted group left half-claimed


def test_the_running_quota_still_caps_a_group(factory, database_url) -> None:
    settings = Settings(database_url=database_url)
    submit(factory, exp1_spec(seeds=1), settings, owner="alice")
    with session_scope(factory) as session:
        session.execute(
            User.__table__.update().where(User.name == "alice").values(max_running_trials=5)
        )
    postgres = database_url.startswith("postgresql")
    with session_scope(factory) as session:
        claimed = transitions.claim_pending(
            session, "d", 40, 60, postgres=postgres, fair_share=ClaimPolicy(3600)
        )
    assert len(claimed) == 5


def test_racing_fair_share_dispatchers_claim_whole_groups_once(postgres_url) -> None:
    """Four threads claim on one PostgreSQL with fair share (user rows locked per claim):
    no trial is claimed twice, every trial is claimed, and no group is split."""
    upgrade_to_head(postgres_url)
    engine = make_engine(postgres_url)
    factory = make_session_factory(engine)
    settings = Settings(database_url=postgres_url)
    for owner, seeds in (("alice", 6), ("bob", 4)):
        spec = exp1_spec(seeds=seeds)
        if owner == "bob":  # other datasets: no trial in common with alice's
            spec["params"] = {**spec["params"], "rho_pt": 0.2}
        submit(factory, spec, settings, owner=owner)
    policy = ClaimPolicy(3600)
    claims: list[list] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def claimer(name: str) -> None:
        try:
            while True:
                with session_scope(factory) as session:
                    got = transitions.claim_pending(
                        session, name, 7, 60, postgres=True, fair_share=policy
                    )
                if not got:
                    return
                with lock:
                    claims.append(got)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(f"d{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    engine.dispose()
    assert not errors, errors
    ids = [t.trial_id for claim in claims for t in claim]
    assert len(ids) == len(set(ids)) == 200
    claim_of: dict[str, set[int]] = defaultdict(set)
    for index, claim in enumerate(claims):
        for trial in claim:
            claim_of[trial.group_key].add(index)
    assert all(len(found) == 1 for found in claim_of.values())
