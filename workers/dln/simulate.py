"""Batched full-batch gradient descent for two-pathway diagonal linear networks.

Model (THEORY.md §1): ``f(x) = beta . x`` with ``beta_i = w+_i v+_i - w-_i v-_i``.

Loss convention: ``L = mean_over_samples (f(x) - y)^2`` -- no factor 1/2, the same as
``torch.nn.functional.mse_loss``, which the reference research code trains with.  Hence
``dL/dbeta = (2/n) X^T r`` and an ``lr`` here means what it means there: the paper's
``lr = 0.5`` (THEORY.md §5) is stable for ``x ~ N(0, I/D)``, whose Hessian in ``beta``
has top eigenvalue about ``2 (1 + sqrt(alpha))^2 / n``.

Batching: every network is one column of ``D x m`` weight matrices.  Networks whose
:class:`GDJob` share the same ``X`` object share the two products per step
(``X @ B`` and ``X^T @ R``); several datasets of the same shape can also be stacked
along a leading batch axis (``torch.baddbmm``/``torch.bmm``), which is the default on
CUDA.  The minus pathway is stored as ``(w-, u = -v-)`` so that both pathways obey the
same update ``w <- w - lr*g*v``, ``v <- v - lr*g*w``, which lets one fused set of
in-place ops update both.

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
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

STOP_REASONS = ("loss_threshold", "stalled", "max_steps", "diverged")
DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass(frozen=True, eq=False)
class PathwayWeights:
    """Weights of the two pathways, one entry per coordinate (THEORY.md §1)."""

    w_plus: np.ndarray
    v_plus: np.ndarray
    w_minus: np.ndarray
    v_minus: np.ndarray

    @property
    def beta(self) -> np.ndarray:
        """``beta = w+ v+ - w- v-``."""
        return self.w_plus * self.v_plus - self.w_minus * self.v_minus

    def invariants(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Conserved quantities of gradient flow: ``(delta+, delta-, s)`` (THEORY.md §1).

        ``delta^± = (w^±)^2 - (v^±)^2`` (as ``(w-v)(w+v)`` to avoid cancellation),
        ``s = w+ w- + v+ v-``.
        """
        delta_plus = (self.w_plus - self.v_plus) * (self.w_plus + self.v_plus)
        delta_minus = (self.w_minus - self.v_minus) * (self.w_minus + self.v_minus)
        s = self.w_plus * self.w_minus + self.v_plus * self.v_minus
        return delta_plus, delta_minus, s


def invariant_drift(start: PathwayWeights, end: PathwayWeights) -> float:
    """Max relative drift of the invariants between two states (THEORY.md §1).

    ``max_i max(|d delta+_i|, |d delta-_i|, 2|d s_i|) / sqrt(k_i)`` with ``sqrt(k_i) =
    sqrt((delta+ - delta-)^2 + 4 s^2)`` at ``start``: the drift measured in the unit that
    sets the implicit bias of coordinate ``i`` (THEORY.md §2).
    """
    dp0, dm0, s0 = start.invariants()
    dp1, dm1, s1 = end.invariants()
    sqrt_k = np.sqrt((dp0 - dm0) ** 2 + 4.0 * s0**2)
    change = np.maximum.reduce([np.abs(dp1 - dp0), np.abs(dm1 - dm0), 2.0 * np.abs(s1 - s0)])
    floor = np.finfo(np.float64).tiny
    with np.errstate(invalid="ignore", over="ignore"):
        ratio = change / np.maximum(sqrt_k, floor)
    return float(np.max(ratio)) if ratio.size else 0.0


@dataclass(frozen=True, eq=False)
class GDJob:
    """One network to train: data, initial weights and optional evaluation targets.

    Jobs that pass the *same* ``X`` object are trained as columns of one matrix.
    ``beta_star`` enables ``gen_error``; ``X_test``/``y_test`` enable ``test_mse``.
    """

    X: np.ndarray
    y: np.ndarray
    init: PathwayWeights
    beta_star: np.ndarray | None = None
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


@dataclass(frozen=True)
class GDOptions:
    """Gradient-descent settings (THEORY.md §5 defaults: lr 0.5, MSE < 1e-4, 1e-6 stall).

    ``early_stopping=False`` runs exactly ``max_steps`` steps (benchmarks); the final
    state is still classified.  ``stack_datasets=None`` stacks same-shape datasets on
    CUDA only.  ``max_block_elements`` caps ``G*D*m`` per block (memory).
    """

    lr: float = 0.5
    max_steps: int = 20000
    loss_threshold: float = 1e-4
    stall_tol: float = 1e-6
    check_every: int = 50
    divergence_factor: float = 1e8
    dtype: str = "float64"
    device: str = "cpu"
    early_stopping: bool = True
    stack_datasets: bool | None = None
    max_block_elements: int = 1 << 23

    def __post_init__(self) -> None:
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        for name in ("max_steps", "check_every", "max_block_elements"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("loss_threshold", "stall_tol", "divergence_factor"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        resolve_device(self.device)


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

    @property
    def diverged(self) -> bool:
        return self.stop_reason == "diverged"


def resolve_device(device: str) -> torch.device:
    """Parse ``"cpu"``/``"cuda"``/``"cuda:N"``; ``ValueError`` if CUDA is unavailable."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}") from exc
    if parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}")
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but torch.cuda.is_available() is False")
    return parsed


def run_gradient_descent(jobs: Sequence[GDJob], options: GDOptions) -> list[GDResult]:
    """Train every job by full-batch GD on ``mean((X beta - y)^2)``; results in job order.

    Grouping is automatic: jobs sharing an ``X`` object become columns of one block, and
    (when stacking) blocks of equal ``(n, D)`` are stacked along a batch axis.
    """
    device = resolve_device(options.device)
    stack = options.stack_datasets if options.stack_datasets is not None else device.type == "cuda"
    by_dataset: dict[int, list[int]] = {}
    for index, job in enumerate(jobs):
        by_dataset.setdefault(id(job.X), []).append(index)
    buckets: dict[object, list[list[int]]] = {}
    for members in by_dataset.values():
        key = jobs[members[0]].X.shape if stack else id(jobs[members[0]].X)
        buckets.setdefault(key, []).append(members)

    results: list[GDResult | None] = [None] * len(jobs)
    for datasets in buckets.values():
        for block in _split_blocks(datasets, jobs, options.max_block_elements):
            for index, result in _BlockRun(jobs, block, options, device).run().items():
                results[index] = result
    return results  # type: ignore[return-value]


def _split_blocks(
    datasets: list[list[int]], jobs: Sequence[GDJob], max_elements: int
) -> list[list[list[int]]]:
    """Cut a stack of datasets (lists of job indices) into blocks of bounded size."""
    D = jobs[datasets[0][0]].X.shape[1]
    columns = max(1, max_elements // D)
    pieces = [members[i : i + columns] for members in datasets for i in range(0, len(members), columns)]
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


class _BlockRun:
    """GD on one block: ``G`` same-shape datasets x ``m`` columns (padding = zero columns)."""

    def __init__(
        self,
        jobs: Sequence[GDJob],
        block: list[list[int]],
        options: GDOptions,
        device: torch.device,
    ) -> None:
        self.jobs, self.options = jobs, options
        dtype = DTYPES[options.dtype]
        n, D = jobs[block[0][0]].X.shape
        G, m = len(block), max(len(members) for members in block)
        self.scale = 2.0 * options.lr / n
        owner = np.full((G, m), -1, dtype=np.int64)
        W = np.zeros((2, G, D, m))
        V = np.zeros((2, G, D, m))
        Y = np.zeros((G, n, m))
        X = np.stack([jobs[members[0]].X for members in block])
        for g, members in enumerate(block):
            for col, index in enumerate(members):
                job = jobs[index]
                owner[g, col] = index
                W[0, g, :, col], V[0, g, :, col] = job.init.w_plus, job.init.v_plus
                W[1, g, :, col], V[1, g, :, col] = job.init.w_minus, -job.init.v_minus
                Y[g, :, col] = job.y

        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(array), dtype=dtype, device=device)

        self.X = tensor(X)
        self.Xt = tensor(X.transpose(0, 2, 1))
        self.negY = tensor(-self.scale * Y)
        self.W, self.V = tensor(W), tensor(V)
        self.owner = owner
        self.active = owner >= 0
        self.initial_loss = np.full((G, m), np.nan)
        self.stall_count = np.zeros((G, m), dtype=np.int64)
        self.beta_prev: torch.Tensor | None = None
        self.records: dict[int, tuple[np.ndarray, np.ndarray, float, int, str]] = {}
        self._allocate()

    def _allocate(self) -> None:
        _, G, D, m = self.W.shape
        n = self.X.shape[1]
        like = {"dtype": self.W.dtype, "device": self.W.device}
        self.B = torch.empty((G, D, m), **like)
        self.R = torch.empty((G, n, m), **like)
        self.Gd = torch.empty((G, D, m), **like)
        self.T = torch.empty((2, G, D, m), **like)

    def _forward(self) -> None:
        """``B = w+ v+ + w- u``; ``R = scale * (X B - Y)`` with ``scale = 2 lr / n``."""
        torch.mul(self.W[0], self.V[0], out=self.B)
        self.B.addcmul_(self.W[1], self.V[1])
        torch.baddbmm(self.negY, self.X, self.B, alpha=self.scale, out=self.R)

    def _update(self) -> None:
        """``w <- w - lr g v``, ``v <- v - lr g w`` with ``lr g = X^T R`` (both pathways)."""
        torch.bmm(self.Xt, self.R, out=self.Gd)
        torch.mul(self.V, self.Gd, out=self.T)
        self.V.addcmul_(self.W, self.Gd, value=-1.0)
        self.W.sub_(self.T)

    def run(self) -> dict[int, GDResult]:
        options = self.options
        start = time.perf_counter()
        step = 0
        while True:
            self._forward()
            final = step >= options.max_steps
            if step == 0:
                # The divergence rule compares against the loss at the start.
                self.initial_loss = self._loss()
            if final or (options.early_stopping and step % options.check_every == 0):
                self._check(step, final)
                if not self.active.any():
                    break
            self._update()
            step += 1
        if self.W.is_cuda:
            torch.cuda.synchronize(self.W.device)
        share = (time.perf_counter() - start) / max(1, len(self.records))
        return {index: self._result(index, share) for index in self.records}

    def _loss(self) -> np.ndarray:
        """Train MSE ``mean((X beta - y)^2)`` per column, from the scaled residual ``R``."""
        return (self.R.square().mean(dim=1) / self.scale**2).double().cpu().numpy()

    def _check(self, step: int, final: bool) -> None:
        """Classify every active column from the current ``R``/``B``; freeze finished ones."""
        options = self.options
        loss = self._loss()
        finite = np.isfinite(loss)
        with np.errstate(invalid="ignore"):
            blown = loss > options.divergence_factor * np.maximum(self.initial_loss, 1e-300)
        diverged = ~finite | blown
        converged = finite & (loss < options.loss_threshold)
        stalled = np.zeros_like(converged)
        if options.early_stopping and self.beta_prev is not None:
            change = torch.linalg.vector_norm(self.B - self.beta_prev, dim=1)
            size = torch.linalg.vector_norm(self.B, dim=1)
            small = (change <= options.stall_tol * size) & (size > 0)
            self.stall_count = np.where(small.cpu().numpy(), self.stall_count + 1, 0)
            stalled = self.stall_count >= 2
        if options.early_stopping:
            self.beta_prev = self.B.clone()
        reasons = (
            (diverged, "diverged"),
            (converged, "loss_threshold"),
            (stalled, "stalled"),
            (np.full_like(converged, final), "max_steps"),
        )
        done = np.zeros_like(converged)
        for mask, reason in reasons:
            newly = self.active & mask & ~done
            for g, col in zip(*np.nonzero(newly), strict=True):
                self._freeze(int(g), int(col), float(loss[g, col]), step, reason)
            done |= newly
        self.active &= ~done
        if done.any():
            self._maybe_compact()

    def _freeze(self, g: int, col: int, loss: float, step: int, reason: str) -> None:
        W = self.W[:, g, :, col].cpu().numpy().astype(np.float64)
        V = self.V[:, g, :, col].cpu().numpy().astype(np.float64)
        self.records[int(self.owner[g, col])] = (W, V, loss, step, reason)
        self.W[:, g, :, col] = 0.0
        self.V[:, g, :, col] = 0.0

    def _maybe_compact(self) -> None:
        """Drop finished datasets/columns once less than half of the block is active."""
        counts = self.active.sum(axis=1)
        keep_g = np.flatnonzero(counts > 0)
        if keep_g.size == 0:
            return
        width = int(counts.max())
        if keep_g.size * width * 2 > self.active.size:
            return
        index = np.zeros((keep_g.size, width), dtype=np.int64)
        for row, g in enumerate(keep_g):
            cols = np.flatnonzero(self.active[g])
            pad = np.flatnonzero(~self.active[g])[: width - cols.size]
            index[row] = np.concatenate([cols, pad])
        rows = np.arange(keep_g.size)[:, None]
        self.owner = np.where(
            self.active[keep_g][rows, index], self.owner[keep_g][rows, index], -1
        )
        self.active = self.owner >= 0
        self.initial_loss = self.initial_loss[keep_g][rows, index]
        self.stall_count = self.stall_count[keep_g][rows, index]
        g_idx = torch.as_tensor(keep_g, device=self.W.device)
        col_idx = torch.as_tensor(index, device=self.W.device)

        def take(t: torch.Tensor) -> torch.Tensor:
            # t has shape (..., G, rows, m): select datasets, then columns per dataset.
            t = t.index_select(-3, g_idx)
            expanded = col_idx[:, None, :].expand(*t.shape[:-1], width)
            return torch.gather(t, -1, expanded).contiguous()

        self.W, self.V, self.negY = take(self.W), take(self.V), take(self.negY)
        self.X = self.X.index_select(0, g_idx).contiguous()
        self.Xt = self.Xt.index_select(0, g_idx).contiguous()
        if self.beta_prev is not None:
            self.beta_prev = take(self.beta_prev)
        self._allocate()

    def _result(self, index: int, share: float) -> GDResult:
        job = self.jobs[index]
        W, V, loss, step, reason = self.records[index]
        weights = PathwayWeights(W[0], V[0], W[1], -V[1])
        beta = weights.beta
        gen_error = test_mse = drift = math.nan
        if reason != "diverged":
            if job.beta_star is not None:
                gen_error = float(np.mean((beta - job.beta_star) ** 2))
            if job.X_test is not None and job.y_test is not None:
                test_mse = float(np.mean((job.X_test @ beta - job.y_test) ** 2))
            drift = invariant_drift(job.init, weights)
        return GDResult(
            beta=beta,
            weights=weights,
            train_loss=loss,
            steps=step,
            stop_reason=reason,
            gen_error=gen_error,
            test_mse=test_mse,
            invariant_drift=drift,
            wall_time_s=share,
        )
