"""The shared loop's guards: NaN, time limit and out-of-memory become flagged results."""

from __future__ import annotations

import math

import pytest
import torch

from workers.nets import pipeline
from workers.nets.relu_mlp import ReluConfig, ReluProblem
from workers.nets.training import Clock, OptimConfig, Reporter, is_out_of_memory, train_loop

from .conftest import QUICK


def quadratic(steps: int = 50, lr: float = 0.1) -> tuple[torch.nn.Parameter, OptimConfig]:
    return torch.nn.Parameter(torch.tensor([3.0])), OptimConfig("sgd", lr=lr, steps=steps)


def test_loop_runs_all_steps_and_reports_progress() -> None:
    weight, config = quadratic()
    reports: list[dict] = []
    clock = Clock(None)
    clock.start()
    result = train_loop(
        [weight],
        lambda step: (weight**2).sum(),
        config,
        clock=clock,
        report=Reporter(reports.append, clock, every_s=0.0),
        phase="finetune",
        samples_per_step=10,
        samples_per_epoch=20,
    )
    assert result.stop_reason == "steps" and result.steps_done == 50
    assert result.final_loss < 1e-3
    assert reports[-1]["phase"] == "finetune" and reports[-1]["stop"] == "steps"
    assert reports[0]["epoch"] == 0.5 and "started_at" in reports[0]


def test_non_finite_loss_stops_with_diverged() -> None:
    weight, config = quadratic(lr=5.0)  # GD on w² with lr 5 multiplies w by -9 per step
    clock = Clock(None)
    result = train_loop(
        [weight],
        lambda step: torch.exp((weight**2).sum()),
        config,
        clock=clock,
        report=Reporter(None, clock),
        phase="pt",
    )
    assert result.stop_reason == "diverged" and not math.isfinite(result.final_loss)


def test_time_limit_stops_the_loop() -> None:
    weight, config = quadratic(steps=10**6)
    clock = Clock(0.05)
    clock.start()
    result = train_loop(
        [weight],
        lambda step: (weight**2).sum(),
        config,
        clock=clock,
        report=Reporter(None, clock),
        phase="ft",
    )
    assert result.stop_reason == "time_limit" and 0 < result.steps_done < 10**6


def relu_problem(**overrides) -> ReluProblem:
    config = ReluConfig(D=8, width=16, n_pt=64, n_ft=16, n_test=64, **overrides)
    return ReluProblem(config, 0, QUICK, QUICK)


def test_diverging_pretraining_is_a_flagged_result() -> None:
    problem = relu_problem(c_pt=1e3)
    problem.pt_optim = OptimConfig("sgd", lr=50.0, steps=30)
    metrics = pipeline.run_finetune(problem, store=None, time_limit_s=None)
    assert metrics["stop_reason"] == "diverged" and metrics["diverged"] is True
    assert metrics["phase"] == "pretrain" and "test_loss" not in metrics


def test_time_limit_is_a_flagged_result() -> None:
    problem = relu_problem()
    problem.ft_optim = OptimConfig("sgd", lr=0.1, steps=10**7)
    metrics = pipeline.run_finetune(problem, store=None, time_limit_s=0.5)
    assert metrics["stop_reason"] == "time_limit" and metrics["diverged"] is False
    assert metrics["test_loss"] is not None  # evaluated where it stopped


def test_out_of_memory_is_a_flagged_result(monkeypatch) -> None:
    """Mocked: there is no GPU here, so the CUDA allocator's error is raised by hand."""
    problem = relu_problem()

    def exhausted(model, step):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(problem, "ft_loss", exhausted)
    metrics = pipeline.run_finetune(problem, store=None, time_limit_s=None)
    assert metrics["stop_reason"] == "oom" and "out of memory" in metrics["error"]
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_other_errors_still_raise(monkeypatch) -> None:
    problem = relu_problem()
    monkeypatch.setattr(problem, "ft_loss", lambda model, step: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        pipeline.run_finetune(problem, store=None, time_limit_s=None)
