"""One nonlinear trial: validated params + execution + seed in, a :class:`TrialOutcome` out.

This is the seam between the workload registry (``workers/workloads.py``) and the pure
models: it builds the workload's :class:`~workers.nets.pipeline.FinetuneProblem` (looked
up in :data:`PROBLEMS` by the class's own ``workload`` name), runs it, and maps its
metrics onto the result columns:

- ``gen_error_sim`` = the fine-tuning **test loss** (MSE for ``relu_finetune``,
  cross-entropy for the two classifiers), so result filters, sorts and summaries work
  across every workload;
- ``regime_empirical`` / ``l_order_empirical`` / ``pd_empirical``: the measured label
  of :func:`workers.nets.common.empirical_regime`;
- ``stop_reason`` ∈ {steps, loss_threshold, time_limit, diverged, oom} and
  ``diverged``; a trial stopped early is a *succeeded* trial with these flags (and
  whatever metrics it reached), never a crash;
- everything else (accuracies, per-layer weight changes, alignments, the pretraining
  summary, whether this trial pretrained or reused a checkpoint) in ``metrics``.
"""

from __future__ import annotations

import math
from typing import Any

from workers.envelope import resolve_device
from workers.nets.checkpoints import CheckpointStore
from workers.nets.pipeline import run_finetune
from workers.nets.relu_mlp import ReluProblem
from workers.nets.resnet_cifar import CifarProblem
from workers.nets.training import OptimConfig, ProgressFn
from workers.nets.transformer_modadd import ModularProblem
from workers.records import TrialOutcome

# Every nonlinear workload, by the name its problem class declares.
PROBLEMS: dict[str, type] = {
    problem.workload: problem for problem in (ReluProblem, ModularProblem, CifarProblem)
}


def _optim(params: dict[str, Any], phase: str) -> OptimConfig:
    prefix = "pt_" if phase == "pt" else ""
    lr = params.get(f"{prefix}lr") or params["lr"]
    batch = int(params.get(f"{prefix}batch_size") or 0)
    return OptimConfig(
        optimizer=params["optimizer"],
        lr=float(lr),
        steps=int(params[f"{prefix}steps"]),
        momentum=float(params.get("momentum", 0.0)),
        weight_decay=float(params.get("weight_decay", 0.0)),
        batch_size=batch or None,
        loss_threshold=float(params.get("loss_threshold", 0.0)) if phase == "ft" else 0.0,
    )


def build_problem(
    workload: str,
    params: dict[str, Any],
    seed: int,
    *,
    device: str,
    amp: bool,
    context: dict[str, Any],
):  # noqa: ANN201 - one of the FinetuneProblem classes
    """The problem of ``workload`` with its config taken from ``params`` (and, for the
    fields its class names in ``context_fields``, from the deployment ``context``)."""
    problem = PROBLEMS.get(workload)
    if problem is None:
        raise ValueError(f"unknown nonlinear workload {workload!r}")
    from_context = {}
    for name, key in problem.context_fields.items():
        if not context.get(key):
            raise ValueError(f"no {key} configured for {workload} (the deployment's {key})")
        from_context[name] = context[key]
    names = [n for n in problem.config_class.__dataclass_fields__ if n not in from_context]
    config = problem.config_class(
        **from_context, **{name: params[name] for name in names if name in params}
    )
    return problem(config, seed, _optim(params, "pt"), _optim(params, "ft"), device=device, amp=amp)


def _json_safe(value: Any) -> Any:
    """Non-finite floats → None, tuples → lists (PostgreSQL JSON rejects NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def run_net_trial(
    workload: str,
    params: dict[str, Any],
    seed: int | None,
    execution: dict[str, Any],
    context: dict[str, Any],
    progress: ProgressFn | None = None,
) -> TrialOutcome:
    """Run one trial and return its outcome (see the module docstring for the columns)."""
    import torch

    device = resolve_device(str(execution.get("device", "cpu")))
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available on this worker")
    amp = bool(execution.get("amp", True)) and device.startswith("cuda")
    problem = build_problem(
        workload, params, int(seed or 0), device=device, amp=amp, context=context
    )
    checkpoint_dir = context.get("checkpoint_dir")
    store = CheckpointStore(checkpoint_dir) if checkpoint_dir else None
    metrics = _json_safe(
        run_finetune(
            problem,
            store=store,
            time_limit_s=execution.get("time_limit_s"),
            progress=progress,
        )
    )
    return TrialOutcome.from_metrics(
        metrics,
        gen_error_sim=metrics.get("test_loss"),
        regime_empirical=metrics.get("regime"),
        l_order_empirical=metrics.get("l_order"),
        pd_empirical=metrics.get("pd"),
        diverged=bool(metrics.get("diverged")),
        device=device,
        dtype="bfloat16-autocast" if amp else "float32",
    )
