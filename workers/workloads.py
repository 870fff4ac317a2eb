"""The workload registry: how each workload's trials are grouped and evaluated.

A workload is a pure batch function plus the facts the dispatcher needs to group its
trials: which parameters define a shared dataset or theory curve (``group_fields``),
which define its asymptotic theory prediction (``theory_fields``), and an evaluator
version that enters every trial key, so a change of the science invalidates the cache.

Adding a workload = one ``Workload`` entry here and its parameter model in
``api_schemas/workloads.py``; the service, the dispatcher and the store need no change.
"""

from __future__ import annotations

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
    run: Callable[[Sequence[TrialItem], dict[int, str]], BatchOutput]
    cost_per_trial_s: Callable[[dict[str, Any], dict[str, Any]], float]


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def task_and_init(params: dict[str, Any]) -> tuple[TaskStats, InitParams]:
    """Build validated science records from a trial's (already schema-checked) params."""
    task_kwargs = {key: params[key] for key in ("a_pt", "ft_norm", "q", "sigma0") if key in params}
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
    from workers.dln.evaluate import FinetuneTrial, TrainOptions, evaluate_finetune_batch

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
                init,
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
            run=_run_dln_theory,
            cost_per_trial_s=lambda params, execution: 0.02,
        ),
    )
}
