"""The workload registry: how each workload's trials are grouped and evaluated.

A workload is a pure batch function plus the facts the dispatcher needs to group its
trials: which parameters define a shared dataset or theory curve (``group_fields``),
which define its asymptotic theory prediction (``theory_fields``), and an evaluator
version that enters every trial key, so a change of the science invalidates the cache.

Adding a workload = one ``Workload`` entry here and its parameter model in
``api_schemas/workloads.py``; the service, the dispatcher and the store need no change.
"""

from __future__ import annotations

import functools
import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from workers.config import InitParams, TaskStats
from workers.envelope import resolve_device

Record = dict[str, Any]
DEFAULT_GAMMA_EXT = 1e-6
# Parameters that determine the replica prediction (THEORY.md §3); with gamma_ext they
# form the theory key shared by every seed and every D of one parameter set.
THEORY_FIELDS = (
    "rho_pt",
    "rho_ft",
    "omega",
    "rho_ft_shared",
    "rho_ft_new",
    "a_pt",
    "ft_norm",
    "q",
    "sigma0",
    "c_pt",
    "lambda_pt",
    "gamma_ft",
    "readout_convention",
    "alpha",
)


@dataclass(frozen=True)
class TrialItem:
    """What crosses into a Ray task for one trial: plain data, no ORM, no engine."""

    trial_id: int
    params: dict[str, Any]
    seed: int | None
    execution: dict[str, Any]
    # Deployment facts the trial needs but that are not part of its config (and so not
    # of its key): the shared checkpoint directory, the CIFAR-100 directory.
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchOutput:
    """Per-trial records (same order as the items) and any theory predictions computed.

    A record holds ``status`` ("succeeded" | "failed"), ``error`` for failures, and the
    result fields of the store (gen errors, regimes, …); ``theory`` maps a theory key
    to ``{"gen_error", "reliable", "details"}``.
    """

    records: list[Record]
    theory: dict[str, Record] = field(default_factory=dict)
    wall_time_s: float = 0.0


@dataclass(frozen=True)
class AdmissionContext:
    """What the service knows at submit time, for a workload's admission checks."""

    cifar100_dir: str | None = None
    # GPUs of the Ray cluster the API is connected to; None when it does not know.
    cluster_gpus: float | None = None
    max_steps: int | None = None


ErrorDetail = dict[str, Any]
ProgressFn = Callable[[int, dict[str, Any]], None]


def _gpus_if_cuda(execution: dict[str, Any]) -> float:
    """The diagonal-network batches: one whole GPU when the device is cuda."""
    return 1.0 if str(execution.get("device", "cpu")).startswith("cuda") else 0.0


@dataclass(frozen=True)
class Workload:
    name: str
    evaluator_version: str
    # Trials with equal group_fields (and execution options) have the same shape and
    # may share one Ray task; trials that differ only in varying_within_group (and share
    # the seed) share one dataset or one theory curve.
    group_fields: tuple[str, ...]
    varying_within_group: tuple[str, ...]
    theory_fields: tuple[str, ...]
    # run(items, theory_wanted): theory_wanted maps a trial id to the theory key whose
    # replica prediction the batch should compute alongside (absent: already stored).
    run: Callable[..., BatchOutput]
    cost_per_trial_s: Callable[[dict[str, Any], dict[str, Any]], float]
    # Most trials per Ray task (None: the dispatcher's batch_size setting).
    max_batch_size: int | None = None
    # GPUs one batch asks Ray for, given its execution options (device auto is resolved
    # by the dispatcher to cuda or cpu before this is asked).
    num_gpus: Callable[[dict[str, Any]], float] = _gpus_if_cuda
    # Submit-time checks needing the deployment (dataset present, GPUs in the cluster):
    # (params, execution, context) -> pydantic-style errors; None: no checks.
    admission_errors: (
        Callable[[dict[str, Any], dict[str, Any], AdmissionContext], list[ErrorDetail]] | None
    ) = None
    # run(items, theory_wanted, progress=fn(trial_id, payload)) when True.
    accepts_progress: bool = False
    # True when the theory prediction *is* the trial's result (dln_theory): its key is
    # always sent in theory_wanted, even when another sweep already stored the value.
    theory_is_result: bool = False
    # Per-trial compute limit from the execution options (None: no limit).
    time_limit_s: Callable[[dict[str, Any]], float | None] = lambda execution: None


def theory_parameters(
    workload: Workload, params: dict[str, Any], execution: dict[str, Any]
) -> dict[str, Any]:
    """The parameters that determine a trial's replica prediction (its theory key).

    From scratch (``pt_mode: scratch``) the prediction is that of the equivalent
    fine-tuning knobs (``workers.theory.potential.scratch_equivalent``), so such trials
    share their theory with any sweep of those knobs.
    """
    values = {name: params.get(name) for name in workload.theory_fields}
    if execution.get("pt_mode") == "scratch" and "c_pt" in values:
        from workers.theory.potential import scratch_equivalent

        _, init = task_and_init(params)
        equivalent = scratch_equivalent(init)
        values.update(
            lambda_pt=equivalent.lambda_pt,
            gamma_ft=equivalent.gamma_ft,
            readout_convention=equivalent.readout_convention,
        )
    return values


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def task_and_init(params: dict[str, Any]) -> tuple[TaskStats, InitParams]:
    """Build validated science records from a trial's (already schema-checked) params."""
    task_kwargs = {
        key: params[key]
        for key in ("a_pt", "ft_norm", "q", "sigma0", "teacher_norm")
        if key in params
    }
    if params.get("rho_ft_shared") is not None:
        task = TaskStats.from_paper_parameterization(
            params["rho_pt"], params["rho_ft_shared"], params["rho_ft_new"], **task_kwargs
        )
    else:
        task = TaskStats(params["rho_pt"], params["rho_ft"], params["omega"], **task_kwargs)
    init = InitParams(
        params["c_pt"],
        params["lambda_pt"],
        params["gamma_ft"],
        params.get("readout_convention", "per_path_sqrt2"),
    )
    return task, init


def _theory_curves(
    requests: dict[str, tuple[TaskStats, InitParams, float, float]],
) -> dict[str, Record]:
    """Replica predictions for ``{theory_key: (task, init, alpha, gamma_ext)}``.

    Keys sharing (task, init, gamma_ext) are solved as one α curve, so continuation
    along α is used exactly as in THEORY.md §3.
    """
    from workers.theory.asymptotics import generalization_curve

    by_curve: dict[tuple[TaskStats, InitParams, float], list[tuple[str, float]]] = defaultdict(list)
    for theory_key, (task, init, alpha, gamma_ext) in requests.items():
        by_curve[(task, init, gamma_ext)].append((theory_key, alpha))
    out: dict[str, Record] = {}
    for (task, init, gamma_ext), members in by_curve.items():
        alphas = sorted({alpha for _, alpha in members})
        curve = generalization_curve(task, init, alphas, gamma_ext=gamma_ext)
        index = {alpha: i for i, alpha in enumerate(curve.alpha.tolist())}
        for theory_key, alpha in members:
            point = {k: _nan_to_none(v) for k, v in curve.point(index[alpha]).items()}
            out[theory_key] = {
                "gen_error": point.get("gen_error"),
                "reliable": bool(point.get("reliable", True)),
                "details": point,
            }
    return out


def _run_dln_theory(items: Sequence[TrialItem], theory_wanted: dict[int, str]) -> BatchOutput:
    """One replica α-curve per distinct config in the batch (THEORY.md §3)."""
    from workers.theory.regimes import CLASSIFIER_VERSION, theory_regime

    started = time.perf_counter()
    requests = {}
    regimes = {}
    for item in items:
        task, init = task_and_init(item.params)
        gamma_ext = float(item.execution.get("gamma_ext", DEFAULT_GAMMA_EXT))
        requests[theory_wanted[item.trial_id]] = (
            task,
            init,
            float(item.params["alpha"]),
            gamma_ext,
        )
        if (task, init) not in regimes:
            regimes[(task, init)] = theory_regime(task, init)
    theory = _theory_curves(requests)
    records = []
    for item in items:
        task, init = task_and_init(item.params)
        prediction = theory[theory_wanted[item.trial_id]]
        regime = regimes[(task, init)]
        records.append(
            {
                "status": "succeeded",
                "gen_error_asymptotic": prediction["gen_error"],
                "regime_theory": regime.label,
                "l_order_theory": _nan_to_none(regime.l_order),
                "pd_theory": _nan_to_none(regime.pd),
                "classifier_version": CLASSIFIER_VERSION,
                "metrics": prediction["details"],
                "device": "cpu",
                "dtype": "float64",
            }
        )
    elapsed = time.perf_counter() - started
    for record in records:
        record["wall_time_s"] = elapsed / max(1, len(records))
    return BatchOutput(records=records, theory=theory, wall_time_s=elapsed)


FINETUNE_RESULT_COLUMNS = (
    "gen_error_sim",
    "gen_error_theory",
    "regime_theory",
    "regime_empirical",
    "l_order_theory",
    "pd_theory",
    "l_order_empirical",
    "pd_empirical",
    "diverged",
    "stop_reason",
    "wall_time_s",
    "device",
    "dtype",
    "classifier_version",
)


def _run_dln_finetune(items: Sequence[TrialItem], theory_wanted: dict[int, str]) -> BatchOutput:
    """GD simulation + finite-sample theory per trial; replica values where asked."""
    from workers.dln.evaluate import (
        FinetuneTrial,
        TrainOptions,
        evaluate_finetune_batch,
        theory_init,
    )

    started = time.perf_counter()
    execution = dict(items[0].execution)
    execution["device"] = resolve_device(execution.get("device", "cpu"))
    options = TrainOptions(**execution)
    trials = []
    theory_requests = {}
    for item in items:
        task, init = task_and_init(item.params)
        trials.append(
            FinetuneTrial(
                task=task,
                init=init,
                D=int(item.params["D"]),
                alpha=float(item.params["alpha"]),
                seed=int(item.seed or 0),
                alpha_pt=float(item.params.get("alpha_pt", 1.0)),
                n_test=int(item.params.get("n_test", 1000)),
            )
        )
        if item.trial_id in theory_wanted:
            theory_requests[theory_wanted[item.trial_id]] = (
                task,
                theory_init(init, options),
                float(item.params["alpha"]),
                DEFAULT_GAMMA_EXT,
            )
    outcomes = evaluate_finetune_batch(trials, options)
    records = []
    for outcome in outcomes:
        metrics = outcome.to_record()
        record: Record = {"status": "succeeded", "metrics": metrics}
        for column in FINETUNE_RESULT_COLUMNS:
            record[column] = metrics.get(column)
        records.append(record)
    theory = _theory_curves(theory_requests) if theory_requests else {}
    return BatchOutput(records=records, theory=theory, wall_time_s=time.perf_counter() - started)


def _finetune_cost(params: dict[str, Any], execution: dict[str, Any]) -> float:
    """Single-core seconds, from the batched simulator's ~1e9 flop/s in float64."""
    n = max(1, round(float(params["alpha"]) * int(params["D"])))
    flops = 4.0 * n * int(params["D"]) * int(execution.get("max_steps", 20_000))
    return flops / 1e9


NET_WORKLOADS = ("relu_finetune", "transformer_modular_finetune", "resnet_cifar_finetune")


def _net_runner(workload: str) -> Callable[..., BatchOutput]:
    """One nonlinear trial after another (batches hold one trial: max_batch_size=1)."""

    def run(
        items: Sequence[TrialItem],
        theory_wanted: dict[int, str],
        progress: ProgressFn | None = None,
    ) -> BatchOutput:
        from workers.nets.trials import run_net_trial

        started = time.perf_counter()
        records = []
        for item in items:
            report = None
            if progress is not None:
                report = functools.partial(progress, item.trial_id)
            records.append(
                run_net_trial(
                    workload, item.params, item.seed, item.execution, item.context, report
                )
            )
        return BatchOutput(records=records, wall_time_s=time.perf_counter() - started)

    return run


def _net_gpus(execution: dict[str, Any]) -> float:
    if not str(execution.get("device", "cpu")).startswith("cuda"):
        return 0.0
    return float(execution.get("num_gpus", 1.0))


def _net_admission(workload: str):  # noqa: ANN202 - returns the admission check
    def check(
        params: dict[str, Any], execution: dict[str, Any], context: AdmissionContext
    ) -> list[ErrorDetail]:
        errors: list[ErrorDetail] = []
        if context.max_steps is not None:
            for name in ("steps", "pt_steps"):
                if int(params.get(name, 0)) > context.max_steps:
                    errors.append(
                        {
                            "loc": ["body", "params", name],
                            "msg": f"{name} {params[name]} exceeds the limit {context.max_steps} "
                            "(SWEEPS_LIMITS__MAX_STEPS)",
                            "type": "limit_exceeded",
                        }
                    )
        if execution.get("device") == "cuda" and context.cluster_gpus is not None:
            wanted = float(execution.get("num_gpus", 1.0))
            if context.cluster_gpus <= 0:
                errors.append(
                    {
                        "loc": ["body", "execution", "device"],
                        "msg": "device 'cuda' requested but the Ray cluster has no GPU; "
                        "use device 'cpu' or 'auto', or add GPU workers",
                        "type": "device_unavailable",
                    }
                )
            elif wanted > context.cluster_gpus:
                errors.append(
                    {
                        "loc": ["body", "execution", "num_gpus"],
                        "msg": f"num_gpus {wanted} per trial exceeds the {context.cluster_gpus:g} "
                        "GPU(s) of the Ray cluster; no trial could ever be scheduled",
                        "type": "device_unavailable",
                    }
                )
        if workload == "resnet_cifar_finetune":
            from workers.nets.data import cifar100_problem

            problem = cifar100_problem(context.cifar100_dir)
            if problem is not None:
                errors.append(
                    {"loc": ["body", "workload"], "msg": problem, "type": "dataset_missing"}
                )
        return errors

    return check


def _net_cost(params: dict[str, Any], execution: dict[str, Any]) -> float:
    """Rough single-core seconds: pretraining is shared, so count fine-tuning only."""
    steps = int(params.get("steps", 100))
    width = int(params.get("width", 32))
    return 1e-4 * steps * max(1.0, width / 32)


def _net_time_limit(execution: dict[str, Any]) -> float | None:
    value = execution.get("time_limit_s")
    return float(value) if value is not None else None


WORKLOADS: dict[str, Workload] = {
    workload.name: workload
    for workload in (
        Workload(
            name="dln_finetune",
            evaluator_version="dln-finetune-1",
            group_fields=("D", "alpha", "n_test", "alpha_pt"),
            varying_within_group=("c_pt", "lambda_pt", "gamma_ft", "readout_convention"),
            theory_fields=THEORY_FIELDS,
            run=_run_dln_finetune,
            cost_per_trial_s=_finetune_cost,
        ),
        Workload(
            name="dln_theory",
            evaluator_version="replica-1",
            group_fields=(),
            varying_within_group=("alpha",),
            theory_fields=THEORY_FIELDS,
            theory_is_result=True,
            run=_run_dln_theory,
            cost_per_trial_s=lambda params, execution: 0.02,
        ),
        *(
            Workload(
                name=name,
                evaluator_version=version,
                group_fields=(),
                varying_within_group=(),
                # No replica theory for nonlinear networks: no theory key.
                theory_fields=(),
                run=_net_runner(name),
                cost_per_trial_s=_net_cost,
                max_batch_size=1,
                num_gpus=_net_gpus,
                admission_errors=_net_admission(name),
                accepts_progress=True,
                time_limit_s=_net_time_limit,
            )
            for name, version in (
                ("relu_finetune", "relu-finetune-1"),
                ("transformer_modular_finetune", "transformer-modular-1"),
                ("resnet_cifar_finetune", "resnet-cifar-1"),
            )
        ),
    )
}
