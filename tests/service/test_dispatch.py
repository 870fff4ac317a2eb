"""The dispatcher against a real database (SQLite and PostgreSQL).

Batches run in-process through ``InlineRunner`` here so the claim / batch / persist /
retry / lease logic is tested deterministically on both backends; the same dispatcher
on a real local Ray is exercised in tests/test_e2e.py.
"""

from __future__ import annotations

import pytest
import torch
from sqlalchemy import func, select

from api_schemas.spec import SweepSpec
from service.dispatch import Dispatcher, group_into_batches
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
def factory(database_url: str):
    upgrade_to_head(database_url)
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


def settings_for(url: str, **dispatch) -> Settings:
    return Settings(database_url=url, dispatch=DispatchSettings(**dispatch))


def submit(factory, spec: dict, settings: Settings, key: str | None = None):
    with session_scope(factory) as session:
        sweep, _ = submit_sweep(session, SweepSpec.model_validate(spec), settings, "tester", key)
    return sweep


def read(factory, sweep_id: str):
    with session_scope(factory) as session:
        return sweep_store.read_sweep(session, sweep_id)


def test_runs_a_sweep_to_completion(factory, database_url) -> None:
    settings = settings_for(database_url, batch_size=4)
    sweep = submit(factory, SMALL, settings)
    Dispatcher(factory, settings, InlineRunner()).run_until_idle()
    done = read(factory, sweep.id)
    assert done.status == "succeeded" and done.counts.succeeded == 6
    with session_scope(factory) as session:
        rows = session.scalars(select(Trial)).all()
        for row in rows:
            assert row.gen_error_sim is not None and row.gen_error_theory is not None, (
                row.status,
                row.metrics,
                row.stop_reason,
                row.error,
            )
            assert row.gen_error_asymptotic is not None  # shared replica value
            assert row.residual_theory == pytest.approx(row.gen_error_sim - row.gen_error_theory)
            assert row.regime_theory in {"I", "II", "III", "IV"}
            assert row.envelope["torch"] and row.code_version and row.dtype == "float64"
            assert row.attempts == 1 and row.lease_owner is None


def test_overlapping_sweep_reruns_nothing(factory, database_url) -> None:
    settings = settings_for(database_url)
    first = submit(factory, SMALL, settings)
    Dispatcher(factory, settings, InlineRunner()).run_until_idle()
    with session_scope(factory) as session:
        before = {t.key: t.finished_at for t in session.scalars(select(Trial))}
    overlapping = {**SMALL, "name": "overlap", "axes": {"lambda_pt": [0.0, 0.5, 0.9]}}
    second = submit(factory, overlapping, settings)
    assert second.trial_count == 6 and second.cached_count == 4
    Dispatcher(factory, settings, InlineRunner()).run_until_idle()
    assert read(factory, second.id).status == "succeeded"
    with session_scope(factory) as session:
        after = {t.key: t.finished_at for t in session.scalars(select(Trial))}
    assert len(after) == 8  # 6 + 2 new, no duplicates
    assert all(after[key] == moment for key, moment in before.items())  # not rerun
    assert read(factory, first.id).status == "succeeded"


def test_priority_orders_claims(factory, database_url) -> None:
    settings = settings_for(database_url)
    low = submit(factory, {**SMALL, "name": "low", "priority": 0}, settings)
    high = submit(
        factory,
        {**SMALL, "name": "high", "priority": 5, "params": {**SMALL["params"], "c_pt": 0.5}},
        settings,
    )
    with session_scope(factory) as session:
        claimed = transitions.claim_pending(session, "me", 6, 60, postgres=False)
        assert {t.priority for t in claimed} == {5}
    assert read(factory, high.id).counts.running == 6
    assert read(factory, low.id).counts.pending == 6


def test_grouping_keeps_datasets_together(factory, database_url) -> None:
    settings = settings_for(database_url)
    submit(factory, {**SMALL, "seeds": 3}, settings)
    with session_scope(factory) as session:
        trials = list(session.scalars(select(Trial)))
    batches = group_into_batches(trials, batch_size=4)
    for batch in batches:
        assert len({t.batch_key for t in batch}) == 1
    # 3 seeds × 3 λ: groups of 3 never split across batches of 4.
    for batch in batches:
        for group in {t.group_key for t in batch}:
            assert sum(t.group_key == group for t in trials) == sum(
                t.group_key == group for t in batch
            )


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_failing_batch_is_split_and_trials_fail_with_their_error(
    factory, database_url, monkeypatch
) -> None:
    # Submit-time admission rejects cuda when this process knows a GPU-less Ray cluster;
    # here it must not know one, so that the failure happens in the worker.
    monkeypatch.setattr("service.runners.connected_cluster_gpus", lambda: None)
    settings = settings_for(database_url, batch_size=8, max_attempts=2)
    spec = {**SMALL, "execution": {**SMALL["execution"], "device": "cuda"}}
    sweep = submit(factory, spec, settings)
    dispatcher = Dispatcher(factory, settings, InlineRunner())
    dispatcher.run_until_idle()
    done = read(factory, sweep.id)
    assert done.status == "failed" and done.counts.failed == 6
    with session_scope(factory) as session:
        errors = {t.error for t in session.scalars(select(Trial))}
    assert len(errors) == 1 and "cuda" in errors.pop().lower()


def test_expired_leases_return_to_pending_and_stale_owner_cannot_write(
    factory, database_url
) -> None:
    settings = settings_for(database_url, lease_seconds=0.2, max_attempts=3)
    sweep = submit(factory, SMALL, settings)
    with session_scope(factory) as session:
        lost = transitions.claim_pending(session, "crashed", 100, 0.2, postgres=False)
    assert len(lost) == 6
    import time

    time.sleep(0.4)
    with session_scope(factory) as session:
        requeued, failed = transitions.expire_leases(session, settings.dispatch.max_attempts)
    assert (requeued, failed) == (6, 0)
    Dispatcher(factory, settings_for(database_url), InlineRunner()).run_until_idle()
    # The crashed owner's late write changes nothing: finished trials are immutable.
    with session_scope(factory) as session:
        changed = transitions.finish_running(
            session, "crashed", [(t, TrialOutcome.failed("late")) for t in lost]
        )
    assert changed == 0
    done = read(factory, sweep.id)
    assert done.status == "succeeded" and done.counts.succeeded == 6
    with session_scope(factory) as session:
        assert session.scalar(select(func.max(Trial.attempts))) == 2


def test_cancel_stops_pending_trials(factory, database_url) -> None:
    settings = settings_for(database_url)
    sweep = submit(factory, SMALL, settings)
    with session_scope(factory) as session:
        cancelled = sweep_store.cancel_sweep(session, sweep.id)
    assert cancelled.status == "cancelled" and cancelled.counts.cancelled == 6
    Dispatcher(factory, settings, InlineRunner()).run_until_idle()
    assert read(factory, sweep.id).counts.succeeded == 0
    # Asking again for cancelled trials revives them in the new sweep.
    again = submit(factory, {**SMALL, "name": "again"}, settings)
    Dispatcher(factory, settings, InlineRunner()).run_until_idle()
    assert read(factory, again.id).status == "succeeded"


def test_transition_table_is_closed() -> None:
    assert transitions.sources_of("running") == ["pending"]
    assert "succeeded" not in transitions.sources_of("pending")
    assert transitions.ALLOWED["succeeded"] == frozenset()
    assert transitions.derive_sweep_status({"succeeded": 2, "failed": 1}, False) == "partial"
    assert transitions.derive_sweep_status({"pending": 2}, False) == "pending"
    assert transitions.derive_sweep_status({"pending": 1, "succeeded": 1}, False) == "running"


def test_concurrent_dispatchers_claim_disjoint_trials(postgres_url) -> None:
    """Two API replicas on one PostgreSQL: FOR UPDATE SKIP LOCKED hands each its own rows."""
    upgrade_to_head(postgres_url)
    engine = make_engine(postgres_url)
    factory = make_session_factory(engine)
    submit(factory, SMALL, settings_for(postgres_url))
    first, second = factory(), factory()
    try:
        mine = transitions.claim_pending(first, "a", 3, 60, postgres=True)  # not committed
        theirs = transitions.claim_pending(second, "b", 6, 60, postgres=True)
        # The first claim takes one whole group of 3 (its other candidate row stays
        # locked until it commits, so the racing claim gets the rest of its group).
        assert len(mine) == 3 and len({t.group_key for t in mine}) == 1
        assert theirs and not {t.trial_id for t in mine} & {t.trial_id for t in theirs}
        first.commit()
        second.commit()
        rest = transitions.claim_pending(first, "a", 6, 60, postgres=True)
        first.commit()
        claimed = [t.trial_id for t in mine + theirs + rest]
        assert len(claimed) == len(set(claimed)) == 6
    finally:
        first.close()
        second.close()
        engine.dispose()


def test_cuda_batches_ask_ray_for_a_gpu(factory, database_url) -> None:
    from service.dispatch import gpus_for

    settings = settings_for(database_url)
    submit(factory, {**SMALL, "execution": {"device": "cuda"}}, settings)
    submit(factory, {**SMALL, "name": "cpu", "params": {**SMALL["params"], "c_pt": 0.5}}, settings)
    with session_scope(factory) as session:
        gpus = {t.execution["device"]: gpus_for(t) for t in session.scalars(select(Trial))}
    assert gpus == {"cuda": 1.0, "cpu": 0.0}


def test_theory_sweep_after_a_simulation_sweep_of_the_same_parameters(
    factory, database_url
) -> None:
    """The simulation sweep stores the replica values first; a dln_theory sweep over the
    same parameter sets must still run (its trials' result *is* that value)."""
    settings = settings_for(database_url)
    submit(factory, SMALL, settings)
    Dispatcher(factory, settings, InlineRunner()).run_until_idle()
    params = {k: v for k, v in SMALL["params"].items() if k != "D"}
    theory = submit(
        factory,
        {
            "name": "theory",
            "workload": "dln_theory",
            "params": params,
            "axes": {"lambda_pt": [-0.5, 0.0, 0.5]},
        },
        settings,
    )
    Dispatcher(factory, settings, InlineRunner()).run_until_idle()
    assert read(factory, theory.id).status == "succeeded"
    with session_scope(factory) as session:
        sims = {
            t.lambda_pt: t.gen_error_asymptotic
            for t in session.scalars(select(Trial).where(Trial.workload == "dln_finetune"))
        }
        thys = {
            t.lambda_pt: t.gen_error_asymptotic
            for t in session.scalars(select(Trial).where(Trial.workload == "dln_theory"))
        }
    assert sims == pytest.approx(thys)


class LastFirstRunner(InlineRunner):
    """Reports one finished batch per round, the most recently submitted first: the
    out-of-order completion a Ray cluster produces."""

    def wait(self, handles, timeout):  # noqa: ANN001, ANN201
        return [handles[-1]] if handles else []


def test_replica_value_reaches_every_seed_when_batches_finish_out_of_order(
    factory, database_url
) -> None:
    settings = settings_for(database_url, batch_size=3)
    submit(factory, {**SMALL, "seeds": 3}, settings)
    dispatcher = Dispatcher(factory, settings, LastFirstRunner())
    dispatcher.run_until_idle()
    with session_scope(factory) as session:
        rows = list(session.scalars(select(Trial)))
    assert len(rows) == 9 and {row.status for row in rows} == {"succeeded"}
    for row in rows:
        assert row.gen_error_asymptotic is not None
        assert row.residual_asymptotic == pytest.approx(
            row.gen_error_sim - row.gen_error_asymptotic
        )
    # One replica solve per parameter set, not one per batch.
    assert len({row.theory_key for row in rows}) == 3
    assert not dispatcher.ledger.inflight_keys


def test_from_scratch_lambda_has_no_effect_and_c_does(factory, database_url) -> None:
    """THEORY.md §4, on stored results: trained from scratch (pt_mode=scratch) the
    implicit bias is √k = 2c whatever λ, so the finite-sample theory of one instance is
    the same for every λ and the trained network's error barely moves; c changes both."""
    settings = settings_for(database_url)
    spec = small_finetune_spec(
        name="scratch",
        params={**small_finetune_spec()["params"], "c_pt": 1e-3, "gamma_ft": 0.0},
        axes={"lambda_pt": [-0.5, 0.0, 0.5], "c_pt": [1e-3, 1.0]},
        execution={"lr": 0.2, "max_steps": 20000, "pt_mode": "scratch"},
    )
    spec["params"].pop("c_pt")
    sweep = submit(factory, spec, settings)
    Dispatcher(factory, settings, InlineRunner()).run_until_idle()
    assert read(factory, sweep.id).status == "succeeded"
    with session_scope(factory) as session:
        rows = list(session.scalars(select(Trial)))
    by = {(row.c_pt, row.lambda_pt, row.seed): row for row in rows}
    for c_pt in (1e-3, 1.0):
        for seed in (0, 1):
            same = [by[(c_pt, lam, seed)] for lam in (-0.5, 0.0, 0.5)]
            theory = [row.gen_error_theory for row in same]
            assert max(theory) - min(theory) < 1e-9 * max(theory)
            sims = [row.gen_error_sim for row in same]
            assert max(sims) - min(sims) < 0.05 * max(sims)
            assert len({row.gen_error_asymptotic for row in same}) == 1
            assert {row.pd_theory for row in same} == {0.0}
        rich, lazy = by[(1e-3, 0.0, 0)], by[(1.0, 0.0, 0)]
    assert rich.gen_error_theory < 0.8 * lazy.gen_error_theory  # c does matter
    assert rich.gen_error_asymptotic < lazy.gen_error_asymptotic
