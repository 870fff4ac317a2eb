"""The simulator contract the sweep service calls: fine-tuning trials in, records out.

:func:`evaluate_finetune_batch` runs a list of :class:`FinetuneTrial` in one go:

1. one dataset per distinct ``(task, D, alpha, seed, n_test, alpha_pt)`` (THEORY.md §1);
2. pretraining -- "oracle" (weights reconstructed from ``beta*_PT``) or "trained" (GD on
   ``alpha_pt * D`` PT samples, one network per distinct dataset and ``(c_pt, lambda_pt)``);
3. the FT start (first layers summed, readout re-initialized), then every FT network
   trained in one batched GD call (networks sharing a dataset are matrix columns);
4. per network: ``sqrt_k`` from the actual post-re-init weights, the finite-sample
   implicit-bias prediction on the same ``(X, y)`` (THEORY.md §2), the theory regime of
   ``(task, init)`` and the empirical regime of the trained network (THEORY.md §4).

Records are JSON-safe (NaN/inf -> ``None``).  ``wall_time_s`` is the trial's share of
the batch's measured wall time ``T`` in proportion to its gradient-descent work:

    wall_time_s_i = T * w_i / sum_j w_j,   w_i = max(steps_i, 1) * n_i * D_i

(a step of one column costs ``~4 n D`` flops in the residual form, ``n = round(alpha D)``),
so a 50-step run shows 1/500 of the time of a 25,000-step run of the same shape, and the
shares add up to the batch's time.  The shared work (datasets, pretraining, the theory
solves) is spread the same way.  Progress reports per trial: ``workers.dln.progress``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from workers.config import InitParams, TaskStats, validate_alpha
from workers.dln.gd_types import LEG_END, GDState
from workers.dln.pretrain import (
    finetune_start,
    oracle_pretrained_weights,
    pretrain_job,
    pt_init_weights,
)
from workers.dln.progress import BatchProgress, IndexReport
from workers.dln.simulate import (
    DTYPES,
    GDJob,
    GDOptions,
    GDResult,
    PathwayWeights,
    resolve_device,
    result_of_record,
    run_gradient_descent,
)
from workers.dln.step_size import stable_lr
from workers.dln.tasks import Dataset, make_dataset
from workers.theory.implicit_bias import solve_implicit_bias
from workers.theory.potential import scratch_equivalent, sqrt_k_from_weights
from workers.theory.regimes import (
    CLASSIFIER_VERSION,
    RegimePoint,
    empirical_regime,
    measured_reuse,
    representative_law,
    theory_regime,
)

# "scratch": no pretraining and no re-init: the network trains on the FT task from its
# PT initialization (a single task, THEORY.md §4 "from scratch"); gamma_ft is unused.
PT_MODES = ("oracle", "trained", "scratch")


@dataclass(frozen=True)
class FinetuneTrial:
    """One fine-tuning experiment: task statistics, init knobs, size, sample ratio, seed."""

    task: TaskStats
    init: InitParams
    D: int
    alpha: float
    seed: int
    alpha_pt: float = 1.0
    n_test: int = 1000
    # Where an earlier leg of this trial stopped (``TrainOptions.leg_steps``): its FT
    # network continues from there; None starts it fresh.
    resume: GDState | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not _is_integer(self.D) or self.D < 1:
            raise ValueError(f"D must be an integer >= 1, got {self.D!r}")
        validate_alpha(self.alpha, "alpha")
        validate_alpha(self.alpha_pt, "alpha_pt")
        if not _is_integer(self.seed) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not _is_integer(self.n_test) or self.n_test < 1:
            raise ValueError(f"n_test must be an integer >= 1, got {self.n_test!r}")

    @property
    def dataset_key(self) -> tuple[object, ...]:
        return (self.task, self.D, self.alpha, self.seed, self.n_test, self.alpha_pt)


@dataclass(frozen=True)
class TrainOptions:
    """GD settings for PT and FT (THEORY.md §5: lr 0.5, train MSE < 1e-4, stall 1e-6).

    The loss is ``mean((f(x) - y)^2)`` without a 1/2 (see ``workers.dln.simulate``).
    ``loss_threshold`` 1e-4 is the paper's rule; it floors the simulated generalization
    error around 1e-5..1e-3 (THEORY.md §5), so tighten it when errors below ~1e-2 matter.
    The paper used ``lr = 0.05`` near ``lambda_pt = -1``; ``lr_stability_fraction``
    replaces a fixed FT ``lr`` by a fraction of each instance's stability bound
    (``workers.dln.step_size``), which regime I needs at D = 5000.  The "trained" PT mode uses
    ``pt_lr``, ``pt_max_steps`` and the tighter ``pt_loss_threshold``.

    Step budget and stability (measured): GD needs O(n/lr) steps, so at D = 2000,
    alpha = 0.3, lr = 0.5 the rich settings (c_pt <= 1e-3 with lambda_pt <= 0, lambda_pt
    -> -1) are still above the threshold after 40,000 steps and end as "max_steps"; raise
    ``max_steps`` for them.  ``lr = 0.5`` is stable when ``lr * 2(1+sqrt(alpha))^2/n *
    max_i sqrt(k_i + 4 beta_i^2) < 2``: fine at the paper's D = 5000, but at small D a
    lazy readout (gamma_ft = 10, sqrt_k ~ 100) diverges and is reported as "diverged".
    The stall rule compares beta across one ``check_every`` interval (default 50 steps),
    which is stricter than the paper's per-epoch 1e-6 test.
    """

    lr: float = 0.5
    max_steps: int = 20000
    loss_threshold: float = 1e-4
    stall_tol: float = 1e-6
    pt_mode: str = "oracle"
    pt_lr: float = 0.5
    pt_max_steps: int = 20000
    pt_loss_threshold: float = 1e-8
    check_every: int = 50
    dtype: str = "float64"
    device: str = "cpu"
    # Fine-tuning steps one batch adds to a trial (None: all of them): an unfinished
    # trial ends its leg as a :class:`FinetuneLeg` and continues later from its state.
    leg_steps: int | None = None
    # The FT step size rule: None uses ``lr``; a fraction f in (0, 1] gives each trial
    # f times the stability bound of its own instance (``workers.dln.step_size``).
    lr_stability_fraction: float | None = None

    def __post_init__(self) -> None:
        fraction = self.lr_stability_fraction
        if fraction is not None and not (
            _is_number(fraction) and math.isfinite(fraction) and 0 < fraction <= 1
        ):
            raise ValueError(
                f"lr_stability_fraction must lie in (0, 1] or be None, got {fraction!r}"
            )
        if self.leg_steps is not None and (not _is_integer(self.leg_steps) or self.leg_steps < 1):
            raise ValueError(f"leg_steps must be an integer >= 1 or None, got {self.leg_steps!r}")
        for name in ("lr", "pt_lr"):
            value = getattr(self, name)
            if not (_is_number(value) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        for name in ("max_steps", "pt_max_steps", "check_every"):
            value = getattr(self, name)
            if not _is_integer(value) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("loss_threshold", "stall_tol", "pt_loss_threshold"):
            value = getattr(self, name)
            if not (_is_number(value) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.pt_mode not in PT_MODES:
            raise ValueError(f"pt_mode must be one of {', '.join(PT_MODES)}, got {self.pt_mode!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        resolve_device(self.device)

    def gd_options(self, *, finetune: bool) -> GDOptions:
        """Simulator options for the FT phase or the trained-PT phase."""
        return GDOptions(
            lr=self.lr if finetune else self.pt_lr,
            max_steps=self.max_steps if finetune else self.pt_max_steps,
            loss_threshold=self.loss_threshold if finetune else self.pt_loss_threshold,
            stall_tol=self.stall_tol,
            check_every=self.check_every,
            dtype=self.dtype,
            device=self.device,
            leg_steps=self.leg_steps if finetune else None,
        )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _is_integer(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


@dataclass(frozen=True, eq=False)
class FinetuneOutcome:
    """Result of one trial.  :meth:`to_record` gives the JSON record the service stores.

    The array fields (``beta_sim``, ``beta_theory``, ``beta_pt_hat``, ``sqrt_k``) are for
    in-process callers and tests; they are not part of the record.
    """

    gen_error_sim: float
    test_mse: float
    gen_error_theory: float
    beta_rel_diff: float
    train_loss: float
    steps: int
    stop_reason: str
    diverged: bool
    invariant_drift: float
    wall_time_s: float
    regime_theory: str
    l_order_theory: float
    pd_theory: float
    regime_empirical: str | None
    l_order_empirical: float
    pd_empirical: float
    theory_converged: bool
    theory_residual: float
    support_reuse: float
    device: str
    dtype: str
    classifier_version: str
    # The FT step size this trial ran with (``TrainOptions.lr`` or its stability rule).
    lr: float
    beta_sim: np.ndarray = field(repr=False)
    beta_theory: np.ndarray = field(repr=False)
    beta_pt_hat: np.ndarray = field(repr=False)
    sqrt_k: np.ndarray = field(repr=False)

    def to_record(self) -> dict[str, float | int | str | bool | None]:
        """Plain JSON scalars, non-finite floats as ``None``; array fields are left out."""
        record: dict[str, float | int | str | bool | None] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, np.ndarray):
                continue
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            record[spec.name] = value
        return record


@dataclass(frozen=True, eq=False)
class FinetuneLeg:
    """A trial whose leg ended before it finished (``TrainOptions.leg_steps``): no result
    yet, the state its FT network continues from (``FinetuneTrial.resume``), and its
    step count, train loss and share of the batch's wall time so far."""

    state: GDState
    steps: int
    train_loss: float
    wall_time_s: float = 0.0


def finetune_lr(data: Dataset, start: PathwayWeights, options: TrainOptions) -> float:
    """The FT step size of one trial: ``options.lr``, or under ``lr_stability_fraction``
    that fraction of the instance's stability bound (``workers.dln.step_size``: ``n``,
    ``D``, ``sqrt_k`` of the FT start, the teacher ``beta*_FT`` as the solution's scale)."""
    if options.lr_stability_fraction is None:
        return options.lr
    n, D = data.X_ft.shape
    sqrt_k = sqrt_k_from_weights(start.w_plus, start.v_plus, start.w_minus, start.v_minus)
    return stable_lr(n, D, sqrt_k, data.beta_ft_star, options.lr_stability_fraction)


def theory_init(init: InitParams, options: TrainOptions) -> InitParams:
    """The knobs the theory should see: ``init`` itself, or from scratch its
    equivalent (``workers.theory.potential.scratch_equivalent``)."""
    return scratch_equivalent(init) if options.pt_mode == "scratch" else init


def evaluate_finetune_batch(
    trials: Sequence[FinetuneTrial],
    options: TrainOptions,
    progress: IndexReport | None = None,
) -> list[FinetuneOutcome | FinetuneLeg]:
    """Pretrain, re-initialize and fine-tune every trial; outcomes in trial order.

    With ``options.leg_steps`` a trial trains at most that many steps further (from
    ``FinetuneTrial.resume`` or from step 0); one still unfinished then comes back as a
    :class:`FinetuneLeg` to continue later, and the leg that finishes it gives the same
    outcome as one uninterrupted run (``tests/workers/dln/test_legs.py``).

    Implements the pipeline of THEORY.md §1 (PT, FT start), §2 (finite-sample
    prediction ``argmin_{X beta = y} Q_k`` with ``sqrt_k`` from the post-re-init
    weights) and §4 (theory and empirical regimes).  Datasets, trained PT networks and
    theory regimes are computed once per distinct key; all FT networks share one
    batched GD call.  Divergence is reported per trial, never raised.
    ``progress(index, payload)`` receives per-trial reports (``workers.dln.progress``).
    """
    start = time.perf_counter()
    board = BatchProgress(progress, len(trials), options.max_steps)
    board.phase("preparing")
    datasets: dict[tuple[object, ...], Dataset] = {}
    for trial in trials:
        if trial.dataset_key not in datasets:
            datasets[trial.dataset_key] = make_dataset(
                trial.task,
                D=trial.D,
                alpha=trial.alpha,
                seed=trial.seed,
                n_test=trial.n_test,
                alpha_pt=trial.alpha_pt,
                with_pt_data=options.pt_mode == "trained",
            )
    if options.pt_mode == "trained":
        board.phase("pretrain")
    pretrained = _pretrain(trials, datasets, options)

    ft_jobs: list[GDJob] = []
    for trial, (pt_weights, _) in zip(trials, pretrained, strict=True):
        data = datasets[trial.dataset_key]
        start_weights = (
            pt_weights
            if options.pt_mode == "scratch"
            else finetune_start(pt_weights.w_plus, pt_weights.w_minus, trial.init)
        )
        ft_jobs.append(
            GDJob(
                X=data.X_ft,
                y=data.y_ft,
                init=start_weights,
                beta_star=data.beta_ft_star,
                X_test=data.X_test,
                y_test=data.y_test,
                resume=trial.resume,
                lr=finetune_lr(data, start_weights, options),
            )
        )
    regime_cache: dict[tuple[TaskStats, InitParams], RegimePoint] = {}

    def outcome_at(index: int, result: GDResult) -> FinetuneOutcome:
        trial = trials[index]
        key = (trial.task, trial.init)
        if key not in regime_cache:
            regime_cache[key] = theory_regime(trial.task, theory_init(trial.init, options))
        return _outcome(
            trial, ft_jobs[index], result, pretrained[index][1], regime_cache[key], options
        )

    # A column's outcome is computed when it stops (not after the whole batch) and sent
    # with its "done" report, so the trials that finished survive a batch that is
    # stopped, killed or lost later; the same outcome is returned at the end.
    early: dict[int, FinetuneOutcome] = {}
    early_results: dict[int, GDResult] = {}

    def outcome_when_done(index: int, record: tuple) -> dict[str, Any] | None:
        if record[4] == LEG_END:
            return None  # the end of a leg, not a result
        try:
            result = result_of_record(ft_jobs[index], record)
            early[index] = outcome_at(index, result)
        except Exception:  # noqa: BLE001 - recomputed (and raised, if it must) at the end
            return None
        early_results[index] = result
        return {**early[index].to_record(), "wall_time_s": None}

    board.outcome_of = outcome_when_done if progress is not None else None
    board.phase("queued_in_batch")
    ft_results = run_gradient_descent(
        ft_jobs,
        options.gd_options(finetune=True),
        board.observe if progress else None,
        known=early_results,
    )
    outcomes: list[FinetuneOutcome | FinetuneLeg] = []
    for index, result in enumerate(ft_results):
        if result.stop_reason == LEG_END:
            outcomes.append(FinetuneLeg(result.state, result.steps, result.train_loss))
        else:
            outcomes.append(early[index] if index in early else outcome_at(index, result))
    return step_shares(outcomes, trials, time.perf_counter() - start)


def step_shares(
    outcomes: Sequence[FinetuneOutcome | FinetuneLeg],
    trials: Sequence[FinetuneTrial],
    seconds: float,
) -> list[FinetuneOutcome | FinetuneLeg]:
    """Each outcome with ``wall_time_s = seconds * w_i / sum w`` (module docstring); a
    resumed trial's ``w_i`` counts the steps of this batch only."""
    work = [
        max(outcome.steps - (trial.resume.step if trial.resume else 0), 1)
        * max(1, round(trial.alpha * trial.D))
        * trial.D
        for outcome, trial in zip(outcomes, trials, strict=True)
    ]
    total = sum(work) or 1
    return [
        _with_wall_time(outcome, seconds * w / total)
        for outcome, w in zip(outcomes, work, strict=True)
    ]


def _pretrain(
    trials: Sequence[FinetuneTrial],
    datasets: dict[tuple[object, ...], Dataset],
    options: TrainOptions,
) -> list[tuple[PathwayWeights, np.ndarray]]:
    """Per trial: (post-PT weights, beta_hat_PT), oracle or trained (batched, deduplicated).

    From scratch the "post-PT" weights are the PT initialization and beta_hat_PT = 0.
    """
    if options.pt_mode == "scratch":
        return [
            (pt_init_weights(trial.init.c_pt, trial.init.lambda_pt, trial.D), np.zeros(trial.D))
            for trial in trials
        ]
    if options.pt_mode == "oracle":
        out = []
        for trial in trials:
            beta_star = datasets[trial.dataset_key].beta_pt_star
            weights = oracle_pretrained_weights(beta_star, trial.init.c_pt, trial.init.lambda_pt)
            out.append((weights, beta_star))
        return out
    keys = [(trial.dataset_key, trial.init.c_pt, trial.init.lambda_pt) for trial in trials]
    unique = list(dict.fromkeys(keys))
    jobs = []
    for dataset_key, c_pt, lambda_pt in unique:
        data = datasets[dataset_key]
        jobs.append(pretrain_job(data.X_pt, data.y_pt, c_pt, lambda_pt))
    results: dict[object, GDResult] = dict(
        zip(unique, run_gradient_descent(jobs, options.gd_options(finetune=False)), strict=True)
    )
    return [(results[key].weights, results[key].beta) for key in keys]


def _outcome(
    trial: FinetuneTrial,
    job: GDJob,
    result: GDResult,
    beta_pt_hat: np.ndarray,
    regime: RegimePoint,
    options: TrainOptions,
) -> FinetuneOutcome:
    init = job.init
    sqrt_k = sqrt_k_from_weights(init.w_plus, init.v_plus, init.w_minus, init.v_minus)
    beta_star = job.beta_star
    try:
        theory = solve_implicit_bias(job.X, job.y, sqrt_k)
        beta_theory, converged, residual = theory.beta, theory.converged, theory.residual
    except ValueError:
        # sqrt_k == 0 somewhere (a first layer that cancelled to 0 with gamma = 0).
        beta_theory, converged, residual = np.full_like(sqrt_k, np.nan), False, math.nan
    gen_theory = float(np.mean((beta_theory - beta_star) ** 2))
    nan = math.nan
    rel_diff = reuse = l_emp = pd_emp = nan
    label_emp: str | None = None
    beta_sim = result.beta
    if not result.diverged and np.all(np.isfinite(beta_sim)):
        norm = float(np.linalg.norm(beta_theory))
        if norm > 0:
            rel_diff = float(np.linalg.norm(beta_sim - beta_theory)) / norm
        # Supports as in regimes.measured_reuse: |beta| > 1e-3 max|beta|.
        reuse = measured_reuse(beta_sim, beta_pt_hat).reuse
        try:
            emp = empirical_regime(
                beta_ft=beta_sim,
                beta_pt=beta_pt_hat,
                sqrt_k=sqrt_k,
                init=theory_init(trial.init, options),
                law=representative_law(trial.task),
            )
        except ValueError:  # beta_sim identically zero: nothing to classify
            emp = None
        if emp is not None:
            label_emp, l_emp, pd_emp = emp.label, float(emp.l_order), float(emp.pd)
    return FinetuneOutcome(
        gen_error_sim=result.gen_error,
        test_mse=result.test_mse,
        gen_error_theory=gen_theory,
        beta_rel_diff=rel_diff,
        train_loss=result.train_loss,
        steps=int(result.steps),
        stop_reason=result.stop_reason,
        diverged=result.diverged,
        invariant_drift=result.invariant_drift,
        wall_time_s=result.wall_time_s,
        regime_theory=regime.label,
        l_order_theory=float(regime.l_order),
        pd_theory=float(regime.pd),
        regime_empirical=label_emp,
        l_order_empirical=l_emp,
        pd_empirical=pd_emp,
        theory_converged=bool(converged),
        theory_residual=float(residual),
        support_reuse=reuse,
        device=options.device,
        dtype=options.dtype,
        classifier_version=str(CLASSIFIER_VERSION),
        lr=float(job.lr if job.lr is not None else options.lr),
        beta_sim=beta_sim,
        beta_theory=beta_theory,
        beta_pt_hat=beta_pt_hat,
        sqrt_k=sqrt_k,
    )


def _with_wall_time(
    outcome: FinetuneOutcome | FinetuneLeg, seconds: float
) -> FinetuneOutcome | FinetuneLeg:
    return replace(outcome, wall_time_s=seconds)
