"""Batched full-batch gradient descent for two-pathway diagonal linear networks.

Model (THEORY.md §1): ``f(x) = beta . x`` with ``beta_i = w+_i v+_i - w-_i v-_i``.

Loss convention: ``L = mean_over_samples (f(x) - y)^2`` -- no factor 1/2, the same as
``torch.nn.functional.mse_loss``, which the reference research code trains with.  Hence
``dL/dbeta = (2/n) X^T r`` and an ``lr`` here means what it means there: the paper's
``lr = 0.5`` (THEORY.md §5) is stable for ``x ~ N(0, I/D)``, whose Hessian in ``beta``
has top eigenvalue about ``2 (1 + sqrt(alpha))^2 / n``.

Batching: every network is one column of ``D x m`` matrices.  Networks whose
:class:`GDJob` share the same ``X`` object share the two products per step
(``X @ B`` and ``X^T @ R``); several datasets of the same shape can also be stacked
along a leading batch axis (``torch.baddbmm``/``torch.bmm``), which is the default on
CUDA.  The loop itself (``workers.dln._block``) runs GD in an exact two-number-per-
coordinate form ("pathway factors"); the four weights, ``beta`` and the invariant drift
are recovered from it exactly.

Stopping (THEORY.md §5), checked every ``check_every`` steps to keep the inner loop
cheap: train MSE below ``loss_threshold``; "stalled" when the relative change of beta
over one check interval stays below ``stall_tol`` at two consecutive checks; a
non-finite loss or a loss above ``divergence_factor`` times the initial one flags
"diverged".  A finished network is frozen by copying out its result and zeroing its
weights: all-zero weights are a fixed point of the update, so it cannot disturb (or be
disturbed by) the columns that keep training, and a NaN column cannot spread.

Threads: the library never calls ``torch.set_num_threads``; callers that run many
processes (Ray workers, tests, benchmarks) should pin it to 1 themselves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from workers.dln._block import BlockRun, CheckObserver, RawRecord, pathway_factors_start
from workers.dln.gd_types import (
    DTYPES,
    GDJob,
    GDOptions,
    GDState,
    PathwayWeights,
    resolve_device,
)


@dataclass(frozen=True, eq=False)
class GDResult:
    """Outcome of one network; ``wall_time_s`` is its share of its block's time."""

    beta: np.ndarray
    weights: PathwayWeights
    train_loss: float
    steps: int
    stop_reason: str
    gen_error: float
    test_mse: float
    invariant_drift: float
    wall_time_s: float
    # Where a run stopped by its step budget can continue from (GDJob.resume); else None.
    state: GDState | None = None

    @property
    def diverged(self) -> bool:
        return self.stop_reason == "diverged"


def run_gradient_descent(
    jobs: Sequence[GDJob],
    options: GDOptions,
    observer: CheckObserver | None = None,
    *,
    known: Mapping[int, GDResult] | None = None,
) -> list[GDResult]:
    """Train every job by full-batch GD on ``mean((X beta - y)^2)``; results in job order.

    Grouping is automatic: jobs sharing an ``X`` object (and a step size, ``GDJob.lr``)
    become columns of one block, and (when stacking) blocks of equal ``(n, D)`` are
    stacked along a batch axis.  Blocks
    run one after another; ``observer(step, training, finished)`` is called at every
    stopping check of the running block (job indices into ``jobs``), so a caller can
    report which networks train now, their step and loss.  ``known`` holds results the
    observer already recovered from a finished column's record (``result_of_record``, by
    job index; it may fill while the run goes on): they are reused, with the block's
    wall-time share, instead of being recovered twice.
    """
    device = resolve_device(options.device)
    stack = options.stack_datasets if options.stack_datasets is not None else device.type == "cuda"
    by_dataset: dict[tuple[int, int | None, float], list[int]] = {}
    for index, job in enumerate(jobs):
        step = job.resume.step if job.resume is not None else None
        lr = options.lr if job.lr is None else job.lr
        by_dataset.setdefault((id(job.X), step, lr), []).append(index)
    buckets: dict[object, list[list[int]]] = {}
    for (_, step, lr), members in by_dataset.items():
        # Jobs resuming from different steps, or with different step sizes, run in
        # different blocks (one step counter and one lr per block).
        shape = jobs[members[0]].X.shape if stack else id(jobs[members[0]].X)
        buckets.setdefault((shape, step, lr), []).append(members)

    results: list[GDResult | None] = [None] * len(jobs)
    dtype = DTYPES[options.dtype]
    for (_, _, lr), datasets in buckets.items():
        block_options = options if lr == options.lr else replace(options, lr=lr)
        for block in _split_blocks(datasets, jobs, options.max_block_elements):
            run = BlockRun(jobs, block, block_options, dtype, device, observer)
            records, share = run.run()
            for index, record in records.items():
                if known is not None and index in known:
                    results[index] = replace(known[index], wall_time_s=share)
                else:
                    results[index] = result_of_record(jobs[index], record, share)
    return results  # type: ignore[return-value]


def _split_blocks(
    datasets: list[list[int]], jobs: Sequence[GDJob], max_elements: int
) -> list[list[list[int]]]:
    """Cut a stack of datasets (lists of job indices) into blocks of bounded size."""
    D = jobs[datasets[0][0]].X.shape[1]
    columns = max(1, max_elements // D)
    pieces = [
        members[i : i + columns] for members in datasets for i in range(0, len(members), columns)
    ]
    blocks: list[list[list[int]]] = []
    current: list[list[int]] = []
    width = 0
    for piece in pieces:
        new_width = max(width, len(piece))
        if current and new_width * (len(current) + 1) > columns:
            blocks.append(current)
            current, new_width = [], len(piece)
        current.append(piece)
        width = new_width
    if current:
        blocks.append(current)
    return blocks


def result_of_record(job: GDJob, record: RawRecord, share: float = 0.0) -> GDResult:
    """Recover weights, beta, metrics and invariant drift from a block's pathway factors
    (``share``: the job's wall-time share of its block, when known).  An observer can call
    it on a column that finished at a stopping check, before the block ends.

    With ``phi- = s-/s-(0)`` and ``phi+ = s+/s+(0)`` every ``a_p`` was multiplied by
    ``phi-`` and every ``b_p`` by ``phi+`` (``workers.dln._block``); each invariant of
    coordinate ``i`` by ``phi-_i phi+_i``, so the drift is ``max_i |phi-_i phi+_i - 1|``.
    """
    s_minus, s_plus, loss, steps, reason, state = record
    s0_minus, s0_plus = pathway_factors_start(job)
    with np.errstate(divide="ignore", invalid="ignore"):
        phi_minus = np.where(s0_minus > 0, s_minus / s0_minus, 0.0)
        phi_plus = np.where(s0_plus > 0, s_plus / s0_plus, 0.0)
    init = job.init
    a_plus, b_plus = (init.w_plus + init.v_plus) * phi_minus, (init.w_plus - init.v_plus) * phi_plus
    a_minus = (init.w_minus - init.v_minus) * phi_minus
    b_minus = (init.w_minus + init.v_minus) * phi_plus
    weights = PathwayWeights(
        w_plus=(a_plus + b_plus) / 2,
        v_plus=(a_plus - b_plus) / 2,
        w_minus=(a_minus + b_minus) / 2,
        v_minus=(b_minus - a_minus) / 2,
    )
    beta = (s_minus - s_plus) * (s_minus + s_plus) / 4.0
    gen_error = test_mse = drift = math.nan
    if reason != "diverged":
        if job.beta_star is not None:
            gen_error = float(np.mean((beta - job.beta_star) ** 2))
        if job.X_test is not None and job.y_test is not None:
            test_mse = float(np.mean((job.X_test @ beta - job.y_test) ** 2))
        tracked = (s0_minus > 0) & (s0_plus > 0)
        drift = float(np.max(np.abs(phi_minus * phi_plus - 1.0)[tracked], initial=0.0))
    return GDResult(
        beta=beta,
        weights=weights,
        train_loss=loss,
        steps=steps,
        stop_reason=reason,
        gen_error=gen_error,
        test_mse=test_mse,
        invariant_drift=drift,
        wall_time_s=share,
        state=state,
    )
