"""Pretrain → (shared checkpoint) → rescale / re-init head → fine-tune → measure.

Every nonlinear workload is a :class:`FinetuneProblem` (data, model, losses); this
driver owns what they share: the content-addressed pretraining checkpoint, the time
budget, progress, NaN / time-limit / out-of-memory flags, per-layer weight changes and
the empirical regime label.  Config + seed in, a metrics dict out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from workers.nets.checkpoints import CheckpointStore, get_or_build
from workers.nets.common import (
    EMPIRICAL_CLASSIFIER_VERSION,
    canonical_key,
    cosine,
    empirical_regime,
    group_changes,
    relative_change,
    snapshot,
)
from workers.nets.training import (
    CLEAN_STOPS,
    STOP_OOM,
    Clock,
    LoopResult,
    OptimConfig,
    ProgressFn,
    Reporter,
    evaluation,
    is_out_of_memory,
    train_loop,
)


class FinetuneProblem(Protocol):
    """What a workload supplies.  Models are built on ``device`` from seeded CPU draws."""

    workload: str
    version: str
    device: str
    amp: bool
    pt_optim: OptimConfig
    ft_optim: OptimConfig
    pt_samples: int
    ft_samples: int

    def pretrain_config(self) -> dict[str, Any]: ...
    def build_pt_model(self) -> torch.nn.Module: ...
    def head_names(self, model: torch.nn.Module) -> list[str]: ...
    def layer_groups(self, model: torch.nn.Module) -> dict[str, list[str]]: ...
    def pt_loss(self, model: torch.nn.Module, step: int) -> torch.Tensor: ...
    def pt_eval(self, model: torch.nn.Module) -> dict[str, float]: ...
    def build_ft_model(self, pt_state: dict[str, torch.Tensor]) -> torch.nn.Module: ...
    def ft_loss(self, model: torch.nn.Module, step: int) -> torch.Tensor: ...
    def ft_eval(self, model: torch.nn.Module) -> dict[str, float]: ...
    def extra_metrics(
        self, pt_state: dict[str, torch.Tensor], model: torch.nn.Module
    ) -> dict[str, Any]: ...


def pretrain_key(problem: FinetuneProblem) -> str:
    return canonical_key(
        {"workload": problem.workload, "version": problem.version, **problem.pretrain_config()}
    )


def _earlier(model: torch.nn.Module, head: list[str]) -> list[str]:
    return [name for name, _ in model.named_parameters() if name not in set(head)]


def _steps_of(optim: OptimConfig, total: int) -> int:
    return total if optim.batch_size is None else min(optim.batch_size, total)


@dataclass(frozen=True)
class _PhaseRun:
    """One training phase: its outcome and the weights before and after it."""

    outcome: LoopResult
    start: dict[str, torch.Tensor]
    end: dict[str, torch.Tensor]
    earlier: list[str]  # every parameter outside the head
    groups: dict[str, list[str]]
    samples: int  # training samples seen


def _train_phase(
    problem: FinetuneProblem,
    model: torch.nn.Module,
    phase: str,
    clock: Clock,
    report: Reporter,
) -> _PhaseRun:
    """Train ``model`` on the ``phase`` ("pretrain" or "finetune") loss of ``problem``."""
    if phase == "pretrain":
        loss_at, optim, total = problem.pt_loss, problem.pt_optim, problem.pt_samples
    else:
        loss_at, optim, total = problem.ft_loss, problem.ft_optim, problem.ft_samples
    names = [name for name, _ in model.named_parameters()]
    start = snapshot(model, names)
    outcome = train_loop(
        model.parameters(),
        lambda step: loss_at(model, step),
        optim,
        clock=clock,
        report=report,
        phase=phase,
        device=problem.device,
        amp=problem.amp,
        samples_per_step=_steps_of(optim, total),
        samples_per_epoch=total,
    )
    return _PhaseRun(
        outcome=outcome,
        start=start,
        end=snapshot(model, names),
        earlier=_earlier(model, problem.head_names(model)),
        groups=problem.layer_groups(model),
        samples=outcome.steps_done * _steps_of(optim, total),
    )


def _pretrain(problem: FinetuneProblem, clock: Clock, report: Reporter) -> tuple[dict, bool]:
    clock.start()
    model = problem.build_pt_model()
    run = _train_phase(problem, model, "pretrain", clock, report)
    outcome = run.outcome
    complete = outcome.stop_reason in CLEAN_STOPS
    meta: dict[str, Any] = {
        "stop_reason": outcome.stop_reason,
        "final_loss": outcome.final_loss,
        "steps_done": outcome.steps_done,
        "wall_s": outcome.wall_s,
        "samples": run.samples,
        "movement": relative_change(run.start, run.end, run.earlier),
        "weight_change": group_changes(run.start, run.end, run.groups),
    }
    if complete:
        with evaluation(model):
            meta.update({f"eval_{k}": v for k, v in problem.pt_eval(model).items()})
    state = {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}
    return {"state": state, "meta": meta}, complete


def run_finetune(
    problem: FinetuneProblem,
    *,
    store: CheckpointStore | None,
    time_limit_s: float | None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """One trial.  Never raises for divergence, time limit or out-of-memory: those come
    back as ``stop_reason`` ∈ {diverged, time_limit, oom} with ``diverged`` set."""
    clock = Clock(time_limit_s)
    report = Reporter(progress, clock)
    started = time.perf_counter()
    try:
        metrics = _run(problem, store, clock, report)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        metrics = {"stop_reason": STOP_OOM, "diverged": False, "error": str(exc)[:500]}
    metrics["wall_time_s"] = time.perf_counter() - started
    metrics["compute_s"] = clock.elapsed
    return metrics


def _run(
    problem: FinetuneProblem, store: CheckpointStore | None, clock: Clock, report: Reporter
) -> dict[str, Any]:
    key = pretrain_key(problem)
    report("pretrain", force=True, step=0)
    payload, built_here = get_or_build(
        store,
        key,
        lambda: _pretrain(problem, clock, report),
        on_wait=lambda: report("waiting_for_pretraining", force=True),
    )
    clock.start()
    pt_meta = dict(payload["meta"])
    base: dict[str, Any] = {
        "pretrain_key": key,
        "pretrained_here": built_here,
        "pretrain": pt_meta,
        "samples_trained": pt_meta["samples"] if built_here else 0,
    }
    if pt_meta["stop_reason"] not in CLEAN_STOPS:
        return {
            **base,
            "phase": "pretrain",
            "stop_reason": pt_meta["stop_reason"],
            "diverged": pt_meta["stop_reason"] == "diverged",
        }

    model = problem.build_ft_model(payload["state"])
    run = _train_phase(problem, model, "finetune", clock, report)
    outcome, start, end, earlier = run.outcome, run.start, run.end, run.earlier
    metrics: dict[str, Any] = {
        **base,
        "phase": "finetune",
        "stop_reason": outcome.stop_reason,
        "diverged": outcome.stop_reason == "diverged",
        "ft_steps_done": outcome.steps_done,
        "ft_final_train_loss": outcome.final_loss,
        "ft_loss_curve": outcome.losses,
        "ft_wall_s": outcome.wall_s,
        "samples_trained": base["samples_trained"] + run.samples,
        "weight_change": group_changes(start, end, run.groups),
    }
    if outcome.stop_reason == "diverged":
        return metrics
    with evaluation(model):
        evaluated = problem.ft_eval(model)
        metrics.update(problem.extra_metrics(payload["state"], model))
    if not all(v == v and abs(v) != float("inf") for v in evaluated.values()):
        metrics.update(stop_reason="diverged", diverged=True)
    metrics.update(evaluated)
    ft_movement = relative_change(start, end, earlier)
    retained = cosine(start, end, earlier)
    regime = empirical_regime(ft_movement, pt_meta.get("movement"), retained)
    metrics.update(
        ft_movement=ft_movement,
        pt_movement=pt_meta.get("movement"),
        retained_cosine=retained,
        regime=regime.label if regime else None,
        l_order=regime.l_order if regime else None,
        pd=regime.pd if regime else None,
        classifier_version=EMPIRICAL_CLASSIFIER_VERSION,
    )
    report("done", force=True, loss=metrics.get("test_loss"))
    return metrics
