"""A run stopped by its step budget continues from its GDState as if never stopped."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tests.workers.dln.test_simulate import ft_job  # the same job builder
from workers.config import TaskStats
from workers.dln.gd_types import GDState
from workers.dln.simulate import GDOptions, run_gradient_descent
from workers.dln.tasks import Dataset, make_dataset

torch.set_num_threads(1)

TASK = TaskStats(rho_pt=0.1, rho_ft=0.1, omega=0.0)


@pytest.fixture(scope="module")
def data() -> Dataset:
    return make_dataset(TASK, D=100, alpha=0.3, seed=0, n_test=200)


# (budget of the first leg, total): off and on the check schedule (check_every = 50).
@pytest.mark.parametrize(("first", "total"), [(1234, 4000), (1500, 4000), (1, 3000), (3300, 4000)])
@pytest.mark.parametrize("form", ["residual", "gram"])
@pytest.mark.parametrize("stall_tol", [1e-6, 1e-3])
def test_resumed_run_equals_one_straight_run(
    data: Dataset, first: int, total: int, form: str, stall_tol: float
) -> None:
    # Regime I (λ = −1, γ = 1e−6: rich and slow), regime IV and a lazy network that stops
    # on the loss threshold at 3200 steps.  With stall_tol 1e-6 the first two end at the
    # budget; with 1e-3 they stall (700 and 3600 steps), so the stall rule's memory must
    # survive the resume.
    jobs = [
        ft_job(data, 1e-3, -1.0, 1e-6),
        ft_job(data, 1e-3, -0.99, 0.0),
        ft_job(data, 1e-3, 0.0, 0.0),
    ]
    options = GDOptions(lr=0.3, max_steps=total, gradient_form=form, stall_tol=stall_tol)
    straight = run_gradient_descent(jobs, options)
    leg = run_gradient_descent(jobs, dataclasses.replace(options, max_steps=first))
    unfinished = [i for i, r in enumerate(leg) if r.stop_reason == "max_steps"]
    assert unfinished
    assert all((leg[i].state is None) == (i not in unfinished) for i in range(len(jobs)))
    resumed_jobs = [dataclasses.replace(jobs[i], resume=leg[i].state) for i in unfinished]
    resumed = run_gradient_descent(resumed_jobs, options)
    reasons = set()
    for i, result in zip(unfinished, resumed, strict=True):
        expected = straight[i]
        reasons.add(expected.stop_reason)
        assert result.steps == expected.steps and result.stop_reason == expected.stop_reason
        scale = np.max(np.abs(expected.beta))
        assert np.max(np.abs(result.beta - expected.beta)) <= 1e-12 * scale
        assert result.train_loss == pytest.approx(expected.train_loss, rel=1e-9, abs=1e-300)
        assert result.gen_error == pytest.approx(expected.gen_error, rel=1e-12)
        assert result.invariant_drift == pytest.approx(
            expected.invariant_drift, rel=1e-9, abs=1e-15
        )
        for name in ("w_plus", "v_plus", "w_minus", "v_minus"):
            got, want = getattr(result.weights, name), getattr(expected.weights, name)
            assert np.max(np.abs(got - want)) <= 1e-12 * max(1.0, np.max(np.abs(want)))
    assert ("loss_threshold" in reasons) == (first < 3200 <= total)
    assert ("stalled" in reasons) == (stall_tol == 1e-3)
    for i in set(range(len(jobs))) - set(unfinished):
        assert leg[i].steps == straight[i].steps and np.array_equal(leg[i].beta, straight[i].beta)


def test_state_round_trips_through_arrays(data: Dataset) -> None:
    job = ft_job(data, 1e-3, -1.0, 1e-6)
    [leg] = run_gradient_descent([job], GDOptions(lr=0.3, max_steps=120))
    assert leg.stop_reason == "max_steps" and leg.state is not None
    again = GDState.from_arrays(leg.state.to_arrays())
    assert again.step == 120 and again.stall_count == leg.state.stall_count
    assert np.array_equal(again.s_minus, leg.state.s_minus)
    assert np.array_equal(again.beta_prev, leg.state.beta_prev)


def test_mixed_resume_steps_run_in_separate_blocks(data: Dataset) -> None:
    job = ft_job(data, 1e-3, -1.0, 1e-6)
    options = GDOptions(lr=0.3, max_steps=600)
    [a] = run_gradient_descent([job], dataclasses.replace(options, max_steps=100))
    [b] = run_gradient_descent([job], dataclasses.replace(options, max_steps=333))
    [straight] = run_gradient_descent([job], options)
    both = run_gradient_descent(
        [dataclasses.replace(job, resume=a.state), dataclasses.replace(job, resume=b.state)],
        options,
    )
    for result in both:
        assert result.steps == straight.steps
        assert np.max(np.abs(result.beta - straight.beta)) <= 1e-12 * np.max(np.abs(straight.beta))
