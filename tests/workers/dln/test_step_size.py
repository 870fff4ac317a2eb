"""The stability rule for the FT step size (workers/dln/step_size.py) and regime I's
independence of the step.

Independent computations: the bound against the top eigenvalue of the linearized GD map
on the instance itself (numpy ``eigvalsh``), GD on either side of it, and regime I's
solution at the paper's small step against the rule's large one and against the
finite-sample implicit-bias prediction (the damped-Newton dual of THEORY.md §2).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from workers.config import InitParams, TaskStats
from workers.dln.evaluate import FinetuneTrial, TrainOptions, evaluate_finetune_batch
from workers.dln.pretrain import finetune_start, oracle_pretrained_weights
from workers.dln.simulate import GDJob, GDOptions, run_gradient_descent
from workers.dln.step_size import stability_bound, stable_lr
from workers.dln.tasks import Dataset, make_dataset
from workers.theory.potential import sqrt_k_from_weights

torch.set_num_threads(1)

TASK = TaskStats(rho_pt=0.1, rho_ft=0.1, omega=0.5, teacher_norm="exact")
REGIME_I = InitParams(1e-3, -1.0, 1e-6)


def start_of(data: Dataset, init: InitParams) -> GDJob:
    pt = oracle_pretrained_weights(data.beta_pt_star, init.c_pt, init.lambda_pt)
    start = finetune_start(pt.w_plus, pt.w_minus, init)
    return GDJob(data.X_ft, data.y_ft, start, data.beta_ft_star, data.X_test, data.y_test)


def sqrt_k_of(job: GDJob) -> np.ndarray:
    init = job.init
    return sqrt_k_from_weights(init.w_plus, init.v_plus, init.w_minus, init.v_minus)


def test_the_bound_is_the_instance_s_top_eigenvalue_at_the_largest_metric() -> None:
    """lr_max = n / ((1+sqrt(alpha))^2 M): 2 / lr_max is the top eigenvalue of
    M (2/n) X^T X up to the Marchenko-Pastur edge's finite-size error, and bounds the
    linearized GD map diag(m) (2/n) X^T X for any metric m <= M."""
    D, n = 600, 150
    X = np.random.default_rng(0).normal(0.0, 1.0 / math.sqrt(D), (n, D))
    metric = np.random.default_rng(1).uniform(0.1, 3.0, D)
    lr_max = stability_bound(n, D, sqrt_k=metric, beta_scale=np.zeros(D))
    top_gram = float(np.linalg.eigvalsh(X @ X.T)[-1])
    top_uniform = metric.max() * 2.0 / n * top_gram
    assert 2.0 / lr_max == pytest.approx(top_uniform, rel=0.1)
    root = np.sqrt(metric)
    linearized = (root[:, None] * (2.0 / n) * (X.T @ X)) * root[None, :]
    assert float(np.linalg.eigvalsh(linearized)[-1]) <= top_uniform * (1 + 1e-12)
    # beta enters as sqrt(k + 4 beta^2): a teacher value 5 gives the metric 10.
    beta = np.zeros(D)
    beta[3] = 5.0
    assert stability_bound(n, D, np.zeros(D), beta) == pytest.approx(
        n / ((1 + math.sqrt(n / D)) ** 2 * 10.0)
    )
    assert stable_lr(n, D, metric, 0.0, 0.5) == pytest.approx(0.5 * lr_max)
    for bad in (0.0, 1.5, math.nan):
        with pytest.raises(ValueError, match="fraction"):
            stable_lr(n, D, metric, 0.0, bad)


def test_the_loss_falls_monotonically_below_the_bound_and_not_above_it() -> None:
    """A lazy start (gamma = 10: sqrt(k) = 100 on every coordinate) makes the metric
    uniform, where the bound is tight and the model nearly linear: at 0.8 of it the train
    loss falls at every step (as GD on a quadratic below 2/lambda_max); at 1.5 of it the
    top direction is unstable and the loss rises (a two-layer network can still recover
    from such a spike by shrinking its weights, so divergence is not the test)."""
    data = make_dataset(TASK, D=400, alpha=0.25, seed=0, n_test=100)
    job = start_of(data, InitParams(1e-3, 0.0, 10.0))
    n, D = data.X_ft.shape
    lr_max = stability_bound(n, D, sqrt_k_of(job), data.beta_ft_star)
    options = GDOptions(max_steps=300, loss_threshold=0.0, stall_tol=0.0, check_every=1)
    for factor, monotone in ((0.8, True), (1.5, False)):
        losses: list[float] = []
        job_at = GDJob(**{**job.__dict__, "lr": factor * lr_max})
        run_gradient_descent(
            [job_at],
            options,
            lambda step, training, done, seen=losses: seen.extend(training.values()),
        )
        rises = np.diff(losses) > 0
        assert bool(not rises.any()) is monotone, (factor, losses[:10])


def test_jobs_with_their_own_lr_equal_their_separate_runs() -> None:
    """Two step sizes on one X run as two blocks; each equals a run of its own."""
    data = make_dataset(TASK, D=200, alpha=0.3, seed=2, n_test=50)
    job = start_of(data, InitParams(1e-2, 0.0, 0.5))
    options = GDOptions(lr=0.5, max_steps=3_000)
    mixed = run_gradient_descent([job, GDJob(**{**job.__dict__, "lr": 0.2})], options)
    alone_default = run_gradient_descent([job], options)[0]
    alone_small = run_gradient_descent([job], GDOptions(lr=0.2, max_steps=3_000))[0]
    assert mixed[0].steps == alone_default.steps and mixed[1].steps == alone_small.steps
    np.testing.assert_allclose(mixed[0].beta, alone_default.beta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(mixed[1].beta, alone_small.beta, rtol=0, atol=1e-12)
    assert mixed[0].steps != mixed[1].steps
    with pytest.raises(ValueError, match="lr"):
        GDJob(**{**job.__dict__, "lr": -1.0})


@pytest.mark.slow
def test_regime_one_at_the_rule_s_step_is_the_l1_limit() -> None:
    """Regime I (sqrt(k) = gamma^2 = 1e-12: the l1 limit of Q_k) at half the stability
    bound, 37x the paper's lr 0.05 here, run to train MSE 1e-10: within 1.5% of the
    finite-sample prediction (THEORY.md §2) in beta and in error, although its invariants
    drift 25x more.  At the paper's lr and stopping rule (MSE 1e-4) the gap is 4x
    larger: the stopping rule, not the step, limits the agreement (measured at D = 400 and
    600: beta 0.7% and 0.3% from the prediction at the rule's step, 6.5% and 3.5% at the
    paper's threshold with either step)."""
    trial = FinetuneTrial(task=TASK, init=REGIME_I, D=400, alpha=0.25, seed=3, n_test=400)
    tight = TrainOptions(
        lr_stability_fraction=0.5, max_steps=400_000, loss_threshold=1e-10, stall_tol=0.0
    )
    paper = TrainOptions(lr=0.05, max_steps=1_000_000)
    (rule,) = evaluate_finetune_batch([trial], tight)
    (small,) = evaluate_finetune_batch([trial], paper)
    assert rule.stop_reason == small.stop_reason == "loss_threshold"
    assert rule.lr > 30 * small.lr and rule.steps < small.steps / 3
    assert rule.invariant_drift > 20 * small.invariant_drift
    assert rule.beta_rel_diff < 0.015
    assert rule.gen_error_sim == pytest.approx(rule.gen_error_theory, rel=0.015)
    assert small.beta_rel_diff > 4 * rule.beta_rel_diff
    for outcome in (rule, small):
        assert outcome.regime_empirical == outcome.regime_theory == "I"


def test_the_rule_sets_each_trial_s_lr_from_its_own_instance() -> None:
    """Under the rule a trial's lr is half its instance's bound (recomputed here from the
    same dataset); without it, the options' lr; and the option is validated."""
    trial = FinetuneTrial(task=TASK, init=REGIME_I, D=300, alpha=0.2, seed=1, n_test=50)
    options = TrainOptions(lr_stability_fraction=0.5, max_steps=50)
    (outcome,) = evaluate_finetune_batch([trial], options)
    data = make_dataset(TASK, D=300, alpha=0.2, seed=1, n_test=50)
    job = start_of(data, REGIME_I)
    expected = 0.5 * stability_bound(60, 300, sqrt_k_of(job), data.beta_ft_star)
    assert outcome.lr == pytest.approx(expected, rel=1e-12)
    assert outcome.to_record()["lr"] == outcome.lr
    (plain,) = evaluate_finetune_batch([trial], TrainOptions(lr=0.3, max_steps=50))
    assert plain.lr == 0.3
    for bad in (0.0, 2.0, math.inf):
        with pytest.raises(ValueError, match="lr_stability_fraction"):
            TrainOptions(lr_stability_fraction=bad)
