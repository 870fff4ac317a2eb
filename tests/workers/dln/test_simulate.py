"""Tests of the batched GD simulator (THEORY.md §1 model, §2 implicit bias, §5 stopping)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workers.config import InitParams, TaskStats
from workers.dln.pretrain import finetune_start, oracle_pretrained_weights
from workers.dln.simulate import GDJob, GDOptions, run_gradient_descent
from workers.dln.tasks import Dataset, make_dataset

torch.set_num_threads(1)

TASK = TaskStats(rho_pt=0.1, rho_ft=0.1, omega=0.5)


def ft_job(data: Dataset, c: float, lam: float, gamma: float) -> GDJob:
    pt = oracle_pretrained_weights(data.beta_pt_star, c, lam)
    start = finetune_start(pt.w_plus, pt.w_minus, InitParams(c, lam, gamma))
    return GDJob(data.X_ft, data.y_ft, start, data.beta_ft_star, data.X_test, data.y_test)


@pytest.fixture(scope="module")
def data() -> Dataset:
    return make_dataset(TASK, D=100, alpha=0.5, seed=0, n_test=200)


@pytest.fixture(scope="module")
def other_data() -> Dataset:
    return make_dataset(TASK, D=100, alpha=0.5, seed=1, n_test=200)


@pytest.mark.parametrize(("c", "gamma", "lr"), [(300.0, 0.0, 0.003), (1e-3, 100.0, 3e-4)])
def test_lazy_limits_give_the_min_l2_interpolator(
    data: Dataset, c: float, gamma: float, lr: float
) -> None:
    options = GDOptions(lr=lr, max_steps=20_000, loss_threshold=1e-16, stall_tol=0.0)
    result = run_gradient_descent([ft_job(data, c, 0.0, gamma)], options)[0]
    assert result.stop_reason == "loss_threshold"
    pinv = np.linalg.pinv(data.X_ft) @ data.y_ft
    assert np.linalg.norm(result.beta - pinv) / np.linalg.norm(pinv) < 1e-3


def test_gd_matches_the_finite_sample_implicit_bias(data: Dataset) -> None:
    from workers.theory.implicit_bias import solve_implicit_bias
    from workers.theory.potential import sqrt_k_from_weights

    job = ft_job(data, 1e-2, -0.5, 0.3)
    options = GDOptions(lr=0.1, max_steps=100_000, loss_threshold=1e-8, stall_tol=0.0)
    result = run_gradient_descent([job], options)[0]
    assert result.stop_reason == "loss_threshold"
    init = job.init
    sqrt_k = sqrt_k_from_weights(init.w_plus, init.v_plus, init.w_minus, init.v_minus)
    theory = solve_implicit_bias(data.X_ft, data.y_ft, sqrt_k)
    assert np.linalg.norm(result.beta - theory.beta) / np.linalg.norm(theory.beta) < 1e-2
    assert 0.0 < result.invariant_drift < 0.1
    assert result.gen_error == pytest.approx(np.mean((result.beta - data.beta_ft_star) ** 2))


CONFIGS = [(1e-2, -0.5, 0.3), (1e-3, 0.0, 0.0), (0.3, 0.5, 1.0), (1e-3, -0.9, 0.0)]


@pytest.mark.parametrize(
    ("stack", "form"), [(False, "residual"), (True, "residual"), (False, "gram"), (True, "gram")]
)
def test_batching_is_exact_and_order_is_preserved(
    data: Dataset, other_data: Dataset, stack: bool, form: str
) -> None:
    options = GDOptions(
        lr=0.3, max_steps=3000, loss_threshold=1e-6, stack_datasets=stack, gradient_form=form
    )
    # Interleave two datasets; the networks stop at different steps, which exercises
    # freezing and compaction of the batch.
    jobs = [ft_job(d, *cfg) for cfg in CONFIGS for d in (data, other_data)]
    batch = run_gradient_descent(jobs, options)
    alone = [run_gradient_descent([job], options)[0] for job in jobs]
    assert len({r.steps for r in batch}) > 1
    for together, single in zip(batch, alone, strict=True):
        assert together.steps == single.steps
        assert together.stop_reason == single.stop_reason
        np.testing.assert_allclose(together.beta, single.beta, rtol=0, atol=1e-10)


def test_divergence_is_flagged_per_network(data: Dataset) -> None:
    options = GDOptions(lr=0.5, max_steps=2000, loss_threshold=1e-6)
    # At D = 100 a readout of gamma = 10 makes lr = 0.5 unstable (sqrt_k ~ gamma^2).
    stable = [ft_job(data, 1e-2, -0.5, 0.3), ft_job(data, 1e-3, 0.0, 0.0)]
    unstable = ft_job(data, 1e-3, 0.0, 10.0)
    batch = run_gradient_descent([stable[0], unstable, stable[1]], options)
    assert batch[1].stop_reason == "diverged" and batch[1].diverged
    assert np.isnan(batch[1].gen_error)
    for result, job in zip((batch[0], batch[2]), stable, strict=True):
        single = run_gradient_descent([job], options)[0]
        assert not result.diverged
        np.testing.assert_allclose(result.beta, single.beta, rtol=0, atol=1e-10)


def test_huge_learning_rate_diverges_without_exception(data: Dataset) -> None:
    result = run_gradient_descent([ft_job(data, 1e-2, 0.0, 1.0)], GDOptions(lr=1e6))[0]
    assert result.stop_reason == "diverged"
    assert result.steps <= 50


def test_max_steps_and_fixed_step_mode(data: Dataset) -> None:
    job = ft_job(data, 1e-3, 0.0, 0.0)
    capped = run_gradient_descent([job], GDOptions(lr=0.1, max_steps=7, loss_threshold=0.0))[0]
    assert capped.stop_reason == "max_steps" and capped.steps == 7
    fixed = GDOptions(lr=0.1, max_steps=300, early_stopping=False)
    result = run_gradient_descent([job], fixed)[0]
    assert result.steps == 300 and result.stop_reason in ("loss_threshold", "max_steps")


def test_stall_rule(data: Dataset) -> None:
    options = GDOptions(lr=0.3, max_steps=100_000, loss_threshold=0.0, stall_tol=1e-6)
    result = run_gradient_descent([ft_job(data, 1e-2, -0.5, 0.3)], options)[0]
    assert result.stop_reason == "stalled"
    assert result.train_loss < 1e-8


def test_float32_agrees_with_float64(data: Dataset) -> None:
    job = ft_job(data, 1e-2, -0.5, 0.3)
    results = [
        run_gradient_descent([job], GDOptions(lr=0.3, max_steps=500, dtype=dt))[0]
        for dt in ("float64", "float32")
    ]
    np.testing.assert_allclose(results[1].beta, results[0].beta, atol=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": float("inf")}, "lr"),
        ({"max_steps": 0}, "max_steps"),
        ({"dtype": "float16"}, "dtype"),
        ({"device": "tpu"}, "device"),
        ({"loss_threshold": -1.0}, "loss_threshold"),
        ({"gradient_form": "normal_equations"}, "gradient_form"),
    ],
)
def test_bad_options_name_the_field(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name} "):
        GDOptions(**kwargs)  # type: ignore[arg-type]


def naive_gd(job: GDJob, lr: float, steps: int) -> tuple[np.ndarray, ...]:
    """Textbook GD on the four weights with the loss mean((X beta - y)^2)."""
    X, y, n = job.X, job.y, job.X.shape[0]
    wp, vp = job.init.w_plus.copy(), job.init.v_plus.copy()
    wm, vm = job.init.w_minus.copy(), job.init.v_minus.copy()
    for _ in range(steps):
        g = (2.0 / n) * X.T @ (X @ (wp * vp - wm * vm) - y)
        wp, vp, wm, vm = wp - lr * g * vp, vp - lr * g * wp, wm + lr * g * vm, vm + lr * g * wm
    return wp, vp, wm, vm


@pytest.mark.parametrize("form", ["residual", "gram"])
def test_simulator_is_textbook_gd_on_the_four_weights(data: Dataset, form: str) -> None:
    """Both ways of forming X^T (X beta - y) are the textbook GD trajectory."""
    job = ft_job(data, 1e-2, -0.5, 0.3)
    lr, steps = 0.3, 400
    options = GDOptions(lr=lr, max_steps=steps, early_stopping=False, gradient_form=form)
    result = run_gradient_descent([job], options)[0]
    wp, vp, wm, vm = naive_gd(job, lr, steps)
    w = result.weights
    for ours, reference in ((w.w_plus, wp), (w.v_plus, vp), (w.w_minus, wm), (w.v_minus, vm)):
        np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result.beta, wp * vp - wm * vm, rtol=1e-9, atol=1e-12)
    # Every invariant is multiplied by the same factor; the drift is its distance from 1.
    start, end = job.init.invariants(), (wp**2 - vp**2, wm**2 - vm**2, wp * wm + vp * vm)
    ratio = end[2] / start[2]
    np.testing.assert_allclose(end[0] / start[0], ratio, rtol=1e-8)
    assert result.invariant_drift == pytest.approx(np.max(np.abs(ratio - 1)), rel=1e-6)


def test_gram_form_is_chosen_only_where_it_saves_flops() -> None:
    from workers.dln._block import _use_gram

    auto = GDOptions()
    assert _use_gram(auto, G=1, n=200, D=256)  # alpha 0.78: 2 D^2 m is 64% of 4 n D m
    assert not _use_gram(auto, G=1, n=128, D=256)  # equal flops: no gain measured
    assert not _use_gram(auto, G=1, n=100, D=1000)  # alpha = 0.1: the residual form is 5x fewer
    assert not _use_gram(auto, G=64, n=4000, D=5000)  # K would not fit the block budget
    assert _use_gram(GDOptions(gradient_form="gram"), G=1, n=10, D=1000)
    assert not _use_gram(GDOptions(gradient_form="residual"), G=1, n=128, D=256)
