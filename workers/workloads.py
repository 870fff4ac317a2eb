"""The workload registry: one entry per workload, each implementing :class:`Workload`.

A workload is a batch function over :class:`~workers.records.ClaimedTrial` records plus
the facts the dispatcher needs to group its trials: which parameters define a shared
dataset or theory curve (``group_fields``), which define its replica prediction
(``theory_fields``), and an evaluator version that enters every trial key, so a change of
the science invalidates the cache.  The nonlinear entries are built from the problem
classes of ``workers/nets`` (their own ``workload`` and ``version``).

Admission checks return neutral :class:`~workers.records.AdmissionProblem` records (a
field path inside the spec, a message, the setting behind a limit); the service turns
them into 422s.  The wire side of each workload (its parameter and execution models)
is ``api_schemas.workloads.WORKLOAD_SCHEMAS``; a test holds the two registries equal.
"""

from __future__ import annotations

import functools
import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from workers.config import InitParams, TaskStats
from workers.envelope import resolve_device
from workers.records import AdmissionProblem, BatchOutput, ClaimedTrial, TheoryValue, TrialOutcome

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
ProgressFn = Callable[[int, dict[str, Any]], None]


@dataclass(frozen=True)
class AdmissionContext:
    """What the service knows at submit time, for a workload's admission checks."""

    cifar100_dir: str | None = None
    # GPUs of the Ray cluster the API is connected to; None when it does not know.
    cluster_gpus: float | None = None
    max_steps: int | None = None


@runtime_checkable
class Workload(Protocol):
    """What the service and the dispatcher need of a workload.

    ``run(trials, theory_wanted, progress)`` evaluates one batch: ``theory_wanted`` maps a
    trial id to the theory key whose replica prediction the batch computes alongside
    (absent: already stored or being computed elsewhere); ``progress(trial_id, payload)``
    receives progress reports when ``accepts_progress``.  It returns one outcome per
    trial, in order; an exception means the batch failed (the dispatcher splits and
    retries).  ``theory_only(trials, theory_wanted)`` computes just the replica values.
    """

    name: str
    evaluator_version: str
    # Trials with equal group_fields (and execution options) have the same shape and may
    # share one Ray task; trials that differ only in varying_within_group (and share the
    # seed) share one dataset or one theory curve.
    group_fields: tuple[str, ...]
    varying_within_group: tuple[str, ...]
    theory_fields: tuple[str, ...]
    # Most trials per Ray task (None: the dispatcher's batch_size setting).
    max_batch_size: int | None
    accepts_progress: bool
    # True when the theory prediction *is* the trial's result (dln_theory): its key is
    # always asked for, even when another sweep already stored the value.
    theory_is_result: bool

    def run(
        self,
        trials: Sequence[ClaimedTrial],
        theory_wanted: Mapping[int, str],
        progress: ProgressFn | None = None,
    ) -> BatchOutput: ...

    def cost_per_trial_s(self, params: dict[str, Any], execution: dict[str, Any]) -> float: ...

    def num_gpus(self, execution: dict[str, Any]) -> float: ...

    def time_limit_s(self, execution: dict[str, Any]) -> float | None: ...

    def admission_problems(
        self, params: dict[str, Any], execution: dict[str, Any], context: AdmissionContext
    ) -> list[AdmissionProblem]: ...


def _on_cuda(execution: Mapping[str, Any]) -> bool:
    return str(execution.get("device", "cpu")).startswith("cuda")


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


TheoryRequest = tuple[TaskStats, InitParams, float, float]


def theory_curves(requests: Mapping[str, TheoryRequest]) -> dict[str, TheoryValue]:
    """Replica predictions for ``{theory_key: (task, init, alpha, gamma_ext)}``.

    Keys sharing (task, init, gamma_ext) are solved as one α curve, so continuation
    along α is used exactly as in THEORY.md §3.
    """
    from workers.theory.asymptotics import generalization_curve

    by_curve: dict[tuple[TaskStats, InitParams, float], list[tuple[str, float]]] = defaultdict(list)
    for theory_key, (task, init, alpha, gamma_ext) in requests.items():
        by_curve[(task, init, gamma_ext)].append((theory_key, alpha))
    out: dict[str, TheoryValue] = {}
    for (task, init, gamma_ext), members in by_curve.items():
        alphas = sorted({alpha for _, alpha in members})
        curve = generalization_curve(task, init, alphas, gamma_ext=gamma_ext)
        index = {alpha: i for i, alpha in enumerate(curve.alpha.tolist())}
        for theory_key, alpha in members:
            point = {k: _nan_to_none(v) for k, v in curve.point(index[alpha]).items()}
            out[theory_key] = TheoryValue(
                gen_error=point.get("gen_error"),
                reliable=bool(point.get("reliable", True)),
                details=point,
            )
    return out


@dataclass(frozen=True)
class _DLNWorkload:
    """What the two diagonal-network workloads share: replica theory per trial."""

    name: str
    evaluator_version: str
    group_fields: tuple[str, ...]
    varying_within_group: tuple[str, ...]
    theory_fields: tuple[str, ...] = THEORY_FIELDS
    max_batch_size: int | None = None
    accepts_progress: bool = False
    theory_is_result: bool = False

    def theory_request(self, trial: ClaimedTrial) -> TheoryRequest:
        """The replica problem behind the trial's theory key."""
        task, init = task_and_init(trial.params)
        if trial.execution.get("pt_mode") == "scratch":
            from workers.theory.potential import scratch_equivalent

            init = scratch_equivalent(init)
        gamma_ext = float(trial.execution.get("gamma_ext", DEFAULT_GAMMA_EXT))
        return task, init, float(trial.params["alpha"]), gamma_ext

    def theory_only(
        self, trials: Sequence[ClaimedTrial], theory_wanted: Mapping[int, str]
    ) -> BatchOutput:
        """Just the replica values of ``theory_wanted`` (no trial is evaluated)."""
        started = time.perf_counter()
        requests = {
            theory_wanted[t.trial_id]: self.theory_request(t)
            for t in trials
            if t.trial_id in theory_wanted
        }
        theory = theory_curves(requests) if requests else {}
        return BatchOutput(outcomes=(), theory=theory, wall_time_s=time.perf_counter() - started)

    def num_gpus(self, execution: dict[str, Any]) -> float:
        """One whole GPU per batch when the device is cuda."""
        return 1.0 if _on_cuda(execution) else 0.0

    def time_limit_s(self, execution: dict[str, Any]) -> float | None:
        return None

    def admission_problems(
        self, params: dict[str, Any], execution: dict[str, Any], context: AdmissionContext
    ) -> list[AdmissionProblem]:
        return []


@dataclass(frozen=True)
class DLNTheory(_DLNWorkload):
    """The replica generalization error at one α per trial (THEORY.md §3)."""

    def run(
        self,
        trials: Sequence[ClaimedTrial],
        theory_wanted: Mapping[int, str],
        progress: ProgressFn | None = None,
    ) -> BatchOutput:
        """One replica α-curve per distinct config in the batch."""
        from workers.theory.regimes import CLASSIFIER_VERSION, theory_regime

        started = time.perf_counter()
        regimes = {}
        for trial in trials:
            task, init = task_and_init(trial.params)
            if (task, init) not in regimes:
                regimes[(task, init)] = theory_regime(task, init)
        theory = theory_curves({theory_wanted[t.trial_id]: self.theory_request(t) for t in trials})
        elapsed = time.perf_counter() - started
        outcomes = []
        for trial in trials:
            prediction = theory[theory_wanted[trial.trial_id]]
            regime = regimes[task_and_init(trial.params)]
            outcomes.append(
                TrialOutcome.succeeded(
                    gen_error_asymptotic=prediction.gen_error,
                    regime_theory=regime.label,
                    l_order_theory=regime.l_order,
                    pd_theory=regime.pd,
                    classifier_version=CLASSIFIER_VERSION,
                    metrics=prediction.details,
                    device="cpu",
                    dtype="float64",
                    wall_time_s=elapsed / max(1, len(trials)),
                )
            )
        return BatchOutput(outcomes=tuple(outcomes), theory=theory, wall_time_s=elapsed)

    def cost_per_trial_s(self, params: dict[str, Any], execution: dict[str, Any]) -> float:
        return 0.02


@dataclass(frozen=True)
class DLNFinetune(_DLNWorkload):
    """GD simulation of PT → FT plus the finite-sample theory per trial (THEORY.md §1–2).

    Reports per-trial progress (phase, step, loss: ``workers.dln.progress``)."""

    accepts_progress: bool = True

    def run(
        self,
        trials: Sequence[ClaimedTrial],
        theory_wanted: Mapping[int, str],
        progress: ProgressFn | None = None,
    ) -> BatchOutput:
        """All trials in one batched GD call; replica values where asked."""
        from workers.dln.evaluate import (
            FinetuneLeg,
            FinetuneTrial,
            TrainOptions,
            evaluate_finetune_batch,
        )
        from workers.dln.gd_types import GDState

        started = time.perf_counter()
        execution = dict(trials[0].execution)
        if any(dict(trial.execution) != execution for trial in trials[1:]):
            # The batched simulator runs one lr / step budget; the batch key keeps
            # trials of different executions apart, so this is a dispatcher bug.
            raise ValueError("a dln_finetune batch must share one execution (lr, max_steps, …)")
        execution["device"] = resolve_device(execution.get("device", "cpu"))
        options = TrainOptions(**execution)
        finetune_trials = []
        for trial in trials:
            task, init = task_and_init(trial.params)
            finetune_trials.append(
                FinetuneTrial(
                    task=task,
                    init=init,
                    D=int(trial.params["D"]),
                    alpha=float(trial.params["alpha"]),
                    seed=int(trial.seed or 0),
                    alpha_pt=float(trial.params.get("alpha_pt", 1.0)),
                    n_test=int(trial.params.get("n_test", 1000)),
                    resume=GDState.from_bytes(trial.resume_state) if trial.resume_state else None,
                )
            )
        report = None
        if progress is not None:
            ids = [trial.trial_id for trial in trials]

            def report(index: int, payload: dict[str, Any]) -> None:
                progress(ids[index], payload)

        results = evaluate_finetune_batch(finetune_trials, options, report)
        outcomes = []
        for trial, result in zip(trials, results, strict=True):
            if isinstance(result, FinetuneLeg):
                outcomes.append(
                    TrialOutcome.continuing(
                        result.state.to_bytes(), result.steps, result.wall_time_s
                    )
                )
                continue
            record = result.to_record()
            # A trial run in legs: its compute time is all of them.
            record["wall_time_s"] = (record["wall_time_s"] or 0.0) + trial.resume_seconds
            if options.leg_steps is not None:
                record["legs"] = trial.resume_legs + 1
            outcomes.append(TrialOutcome.from_metrics(record))
        theory = self.theory_only(trials, theory_wanted).theory if theory_wanted else {}
        return BatchOutput(
            outcomes=tuple(outcomes), theory=theory, wall_time_s=time.perf_counter() - started
        )

    def cost_per_trial_s(self, params: dict[str, Any], execution: dict[str, Any]) -> float:
        """Single-core seconds at ``max_steps`` steps (``workers.dln.cost``'s defaults)."""
        from workers.dln.cost import DEFAULT_MAX_STEPS, network_seconds, trial_samples

        steps = int(execution.get("max_steps", DEFAULT_MAX_STEPS))
        return network_seconds(trial_samples(params), params["D"], steps)


@dataclass(frozen=True)
class NetWorkload:
    """A nonlinear fine-tuning workload, one trial per Ray task, built from its problem
    class in ``workers/nets`` (name and evaluator version are the class's own)."""

    problem: type
    group_fields: tuple[str, ...] = ()
    varying_within_group: tuple[str, ...] = ()
    # No replica theory for nonlinear networks: no theory key.
    theory_fields: tuple[str, ...] = ()
    max_batch_size: int | None = 1
    accepts_progress: bool = True
    theory_is_result: bool = False

    @property
    def name(self) -> str:
        return self.problem.workload

    @property
    def evaluator_version(self) -> str:
        return self.problem.version

    def run(
        self,
        trials: Sequence[ClaimedTrial],
        theory_wanted: Mapping[int, str],
        progress: ProgressFn | None = None,
    ) -> BatchOutput:
        """One trial after another (batches hold one trial: ``max_batch_size`` 1)."""
        from workers.nets.trials import run_net_trial

        started = time.perf_counter()
        outcomes = []
        for trial in trials:
            report = functools.partial(progress, trial.trial_id) if progress else None
            outcomes.append(
                run_net_trial(
                    self.name, trial.params, trial.seed, trial.execution, trial.context, report
                )
            )
        return BatchOutput(outcomes=tuple(outcomes), wall_time_s=time.perf_counter() - started)

    def theory_only(
        self, trials: Sequence[ClaimedTrial], theory_wanted: Mapping[int, str]
    ) -> BatchOutput:
        return BatchOutput(outcomes=())

    def cost_per_trial_s(self, params: dict[str, Any], execution: dict[str, Any]) -> float:
        """Rough single-core seconds: pretraining is shared, so count fine-tuning only."""
        steps = int(params.get("steps", 100))
        width = int(params.get("width", 32))
        return 1e-4 * steps * max(1.0, width / 32)

    def num_gpus(self, execution: dict[str, Any]) -> float:
        return float(execution.get("num_gpus", 1.0)) if _on_cuda(execution) else 0.0

    def time_limit_s(self, execution: dict[str, Any]) -> float | None:
        value = execution.get("time_limit_s")
        return float(value) if value is not None else None

    def admission_problems(
        self, params: dict[str, Any], execution: dict[str, Any], context: AdmissionContext
    ) -> list[AdmissionProblem]:
        """Step limits, GPUs in the connected cluster, and the dataset being present."""
        problems: list[AdmissionProblem] = []
        if context.max_steps is not None:
            for name in ("steps", "pt_steps"):
                if int(params.get(name, 0)) > context.max_steps:
                    problems.append(
                        AdmissionProblem(
                            ("params", name),
                            f"{name} {params[name]} exceeds the limit {context.max_steps}",
                            "limit_exceeded",
                            setting="limits.max_steps",
                        )
                    )
        if execution.get("device") == "cuda" and context.cluster_gpus is not None:
            wanted = float(execution.get("num_gpus", 1.0))
            if context.cluster_gpus <= 0:
                problems.append(
                    AdmissionProblem(
                        ("execution", "device"),
                        "device 'cuda' requested but the Ray cluster has no GPU; "
                        "use device 'cpu' or 'auto', or add GPU workers",
                        "device_unavailable",
                    )
                )
            elif wanted > context.cluster_gpus:
                problems.append(
                    AdmissionProblem(
                        ("execution", "num_gpus"),
                        f"num_gpus {wanted} per trial exceeds the {context.cluster_gpus:g} "
                        "GPU(s) of the Ray cluster; no trial could ever be scheduled",
                        "device_unavailable",
                    )
                )
        if "data_dir" in self.problem.context_fields:
            from workers.nets.data import cifar100_problem

            problem = cifar100_problem(context.cifar100_dir)
            if problem is not None:
                problems.append(
                    AdmissionProblem(
                        ("workload",), problem, "dataset_missing", setting="data.cifar100_dir"
                    )
                )
        return problems


def _net_workloads() -> tuple[NetWorkload, ...]:
    from workers.nets.trials import PROBLEMS

    return tuple(NetWorkload(problem) for problem in PROBLEMS.values())


WORKLOADS: dict[str, Workload] = {
    workload.name: workload
    for workload in (
        DLNFinetune(
            name="dln_finetune",
            # 2: regimes-v2 labels and the empirical label at the representative group;
            # 3: the empirical beta_FT read from the FT function's energy
            # (workers.theory.regimes.empirical_regime, law=)
            evaluator_version="dln-finetune-3",
            group_fields=("D", "alpha", "n_test", "alpha_pt"),
            varying_within_group=("c_pt", "lambda_pt", "gamma_ft", "readout_convention"),
        ),
        DLNTheory(
            name="dln_theory",
            evaluator_version="replica-1",
            group_fields=(),
            varying_within_group=("alpha",),
            theory_is_result=True,
        ),
        *_net_workloads(),
    )
}
