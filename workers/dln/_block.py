"""The inner GD loop of the simulator: one block of networks, in the "pathway factor" form.

Per coordinate, GD on the two pathways ``(w+, v+)`` and ``(w-, u = -v-)`` reads
``w <- w - lr g v``, ``v <- v - lr g w`` with the same ``g = dL/dbeta`` for both, so
``a_p = w_p + v_p`` and ``b_p = w_p - v_p`` evolve *multiplicatively*:

    a_p(t+1) = a_p(t) (1 - lr g),      b_p(t+1) = b_p(t) (1 + lr g)

and ``beta = (sum_p a_p^2 - sum_p b_p^2) / 4``.  The block therefore stores, per
coordinate and network, ``S = (s-, s+)`` with ``s- = sqrt(sum_p a_p(0)^2) * prod(1 - lr g)``
and ``s+ = sqrt(sum_p b_p(0)^2) * prod(1 + lr g)``: the same GD trajectory (exact up to
rounding) with two numbers instead of four, so each step is two matrix products plus
four fused in-place elementwise ops.  Every weight is recoverable from ``S`` and the start, and
every invariant (``delta^±``, ``s``) is multiplied by ``prod(1 - (lr g)^2) =
(s- s+) / (s-(0) s+(0))``, so its drift is exact and free.

The gradient ``X^T (X beta - y)`` comes either from the residual (two products per step)
or, when ``D <= 1.5 n``, from the Gram matrix ``K = X^T X`` and ``X^T y`` (one product of
fewer flops; the residual, needed only for the loss, is formed at the checks).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from workers.dln.gd_types import LEG_END, GDState

if TYPE_CHECKING:
    from workers.dln.gd_types import GDJob, GDOptions

# (s-, s+, train loss, steps, stop reason, state to continue from or None)
RawRecord = tuple[np.ndarray, np.ndarray, float, int, str, "GDState | None"]
# Called at every stopping check: (step, {job index: train loss} of the columns still
# training, {job index: record} of the columns that finished at this check).
CheckObserver = Callable[[int, dict[int, float], dict[int, RawRecord]], None]


def pathway_factors_start(job: GDJob) -> tuple[np.ndarray, np.ndarray]:
    """``(s-(0), s+(0)) = (hypot(w+ + v+, w- - v-), hypot(w+ - v+, w- + v-))``."""
    init = job.init
    s_minus = np.hypot(init.w_plus + init.v_plus, init.w_minus - init.v_minus)
    s_plus = np.hypot(init.w_plus - init.v_plus, init.w_minus + init.v_minus)
    return s_minus, s_plus


def _use_gram(options: GDOptions, G: int, n: int, D: int) -> bool:
    """Gram form when asked, or on "auto" when it saves >= 25% of the flops (D <= 1.5 n)
    and K fits the budget.  At equal flops (D = 2n) the two are within noise of each other
    (measured on CPU: 0.9-1.04x); at alpha = 0.75 the Gram form is 1.5x, at alpha = 1 1.8x."""
    if options.gradient_form != "auto":
        return options.gradient_form == "gram"
    return 2 * D <= 3 * n and G * D * D <= options.max_block_elements


class BlockRun:
    """GD on ``G`` same-shape datasets x ``m`` columns; padding columns are all zero.

    Either every job of the block starts fresh or every one resumes from a
    :class:`GDState` of the same ``step`` (``simulate.run_gradient_descent`` groups them so).
    """

    def __init__(
        self,
        jobs: Sequence[GDJob],
        block: list[list[int]],
        options: GDOptions,
        dtype: torch.dtype,
        device: torch.device,
        observer: CheckObserver | None = None,
    ) -> None:
        self.options = options
        self.observer = observer
        n, D = jobs[block[0][0]].X.shape
        G, m = len(block), max(len(members) for members in block)
        self.scale = 2.0 * options.lr / n
        owner = np.full((G, m), -1, dtype=np.int64)
        S = np.zeros((2, G, D, m))
        Y = np.zeros((G, n, m))
        X = np.stack([jobs[members[0]].X for members in block])
        states = {jobs[i].resume.step if jobs[i].resume else None for ms in block for i in ms}
        if len(states) != 1:
            raise ValueError("a block's jobs must all start fresh or resume from one step")
        self.start_step = states.pop() or 0
        self.initial_loss = np.full((G, m), np.nan)
        self.stall_count = np.zeros((G, m), dtype=np.int64)
        beta_prev = np.zeros((G, D, m))
        has_prev = False
        for g, members in enumerate(block):
            for col, index in enumerate(members):
                owner[g, col] = index
                state = jobs[index].resume
                if state is None:
                    S[0, g, :, col], S[1, g, :, col] = pathway_factors_start(jobs[index])
                else:
                    S[0, g, :, col], S[1, g, :, col] = state.s_minus, state.s_plus
                    self.initial_loss[g, col] = state.initial_loss
                    self.stall_count[g, col] = state.stall_count
                    if state.beta_prev is not None:
                        beta_prev[g, :, col] = state.beta_prev
                        has_prev = True
                Y[g, :, col] = jobs[index].y

        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(array), dtype=dtype, device=device)

        self.X, self.Xt = tensor(X), tensor(X.transpose(0, 2, 1))
        self.negY, self.S = tensor(-self.scale * Y), tensor(S)
        self.gram = _use_gram(options, G, n, D)
        if self.gram:
            # lr g = (scale/4) K B - scale X^T y, with K = X^T X: formed once per block.
            self.K = torch.bmm(self.Xt, self.X)
            self.negXtY = torch.bmm(self.Xt, self.negY)
        self.owner = owner
        self.active = owner >= 0
        self.beta_prev: torch.Tensor | None = tensor(beta_prev) if has_prev else None
        self.records: dict[int, RawRecord] = {}
        self._allocate()

    def _allocate(self) -> None:
        _, G, D, m = self.S.shape
        like = {"dtype": self.S.dtype, "device": self.S.device}
        self.B = torch.empty((G, D, m), **like)
        self.R = torch.empty((G, self.X.shape[1], m), **like)
        self.Gd = torch.empty((G, D, m), **like)

    def _forward(self) -> None:
        """``B = s-^2 - s+^2 = 4 beta``; in the residual form also ``R`` (see _residual)."""
        torch.mul(self.S[0], self.S[0], out=self.B)
        self.B.addcmul_(self.S[1], self.S[1], value=-1.0)
        if not self.gram:
            self._residual()

    def _residual(self) -> None:
        """``R = scale (X beta - y)``, ``scale = 2 lr / n``, from the current ``B``."""
        torch.baddbmm(self.negY, self.X, self.B, alpha=self.scale / 4.0, out=self.R)

    def _update(self) -> None:
        """``lr g = X^T R``; ``s- *= 1 - lr g``, ``s+ *= 1 + lr g``."""
        if self.gram:
            torch.baddbmm(self.negXtY, self.K, self.B, alpha=self.scale / 4.0, out=self.Gd)
        else:
            torch.bmm(self.Xt, self.R, out=self.Gd)
        # In place as s += (-/+) s * lr g: no factor tensor, fewer passes over memory.
        self.S[0].addcmul_(self.S[0], self.Gd, value=-1.0)
        self.S[1].addcmul_(self.S[1], self.Gd, value=1.0)

    def run(self) -> tuple[dict[int, RawRecord], float]:
        """Train to completion; returns the records and the wall time per network."""
        options = self.options
        start = time.perf_counter()
        step = first = self.start_step
        # The end of this run: the budget, or the end of this leg (GDOptions.leg_steps).
        stop_at = options.stop_step(first)
        while True:
            self._forward()
            final = step >= stop_at
            if step == 0:
                # The divergence rule compares against the loss at the start.
                self.initial_loss = self._loss()
            # A resumed block does not repeat the check its first run made at ``first``.
            periodic = options.early_stopping and step % options.check_every == 0
            if final or (periodic and (step > first or first == 0)):
                self._check(step, final)
                if not self.active.any():
                    break
            self._update()
            step += 1
        if self.S.is_cuda:
            torch.cuda.synchronize(self.S.device)
        return self.records, (time.perf_counter() - start) / max(1, len(self.records))

    def _loss(self) -> np.ndarray:
        """Train MSE ``mean((X beta - y)^2)`` per column, from the scaled residual ``R``."""
        if self.gram:
            self._residual()
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
        # The stall memory an uninterrupted run holds after this step (for GDState): a
        # check off the periodic schedule (the budget's final one) leaves it unchanged.
        on_schedule = options.early_stopping and step % options.check_every == 0
        memory = (self.stall_count.copy(), self.beta_prev)
        if options.early_stopping and self.beta_prev is not None:
            change = torch.linalg.vector_norm(self.B - self.beta_prev, dim=1)
            size = torch.linalg.vector_norm(self.B, dim=1)
            small = (change <= options.stall_tol * size) & (size > 0)
            self.stall_count = np.where(small.cpu().numpy(), self.stall_count + 1, 0)
            stalled = self.stall_count >= 2
        if options.early_stopping:
            self.beta_prev = self.B.clone()
        if on_schedule:
            memory = (self.stall_count, self.beta_prev)
        reasons = (
            (diverged, "diverged"),
            (converged, "loss_threshold"),
            (stalled, "stalled"),
            # The end of a leg before the budget is not the budget's end.
            (np.full_like(converged, final), "max_steps" if step >= options.max_steps else LEG_END),
        )
        done = np.zeros_like(converged)
        finished: dict[int, RawRecord] = {}
        for mask, reason in reasons:
            newly = self.active & mask & ~done
            for g, col in zip(*np.nonzero(newly), strict=True):
                state = None
                if reason in ("max_steps", LEG_END):
                    count, prev = memory
                    state = GDState(
                        step=step,
                        s_minus=self.S[0, g, :, col].double().cpu().numpy().copy(),
                        s_plus=self.S[1, g, :, col].double().cpu().numpy().copy(),
                        initial_loss=float(self.initial_loss[g, col]),
                        stall_count=int(count[g, col]),
                        beta_prev=None
                        if prev is None
                        else prev[g, :, col].double().cpu().numpy().copy(),
                    )
                index = self._freeze(int(g), int(col), float(loss[g, col]), step, reason, state)
                finished[index] = self.records[index]
            done |= newly
        self.active &= ~done
        if self.observer is not None:
            training = {
                int(self.owner[g, col]): float(loss[g, col])
                for g, col in zip(*np.nonzero(self.active), strict=True)
            }
            self.observer(step, training, finished)
        if done.any():
            self._maybe_compact()

    def _freeze(
        self, g: int, col: int, loss: float, step: int, reason: str, state: GDState | None
    ) -> int:
        """Copy a finished column out and zero it (zero is a fixed point of the update);
        returns its job index."""
        S = self.S[:, g, :, col].double().cpu().numpy().copy()  # not a view: zeroed next
        index = int(self.owner[g, col])
        self.records[index] = (S[0], S[1], loss, step, reason, state)
        self.S[:, g, :, col] = 0.0
        return index

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
        kept_active = self.active[keep_g][rows, index]
        self.owner = np.where(kept_active, self.owner[keep_g][rows, index], -1)
        self.active = self.owner >= 0
        self.initial_loss = self.initial_loss[keep_g][rows, index]
        self.stall_count = self.stall_count[keep_g][rows, index]
        g_idx = torch.as_tensor(keep_g, device=self.S.device)
        col_idx = torch.as_tensor(index, device=self.S.device)

        def take(t: torch.Tensor) -> torch.Tensor:
            # t has shape (..., G, rows, m): select datasets, then columns per dataset.
            t = t.index_select(-3, g_idx)
            expanded = col_idx[:, None, :].expand(*t.shape[:-1], width)
            return torch.gather(t, -1, expanded).contiguous()

        self.S, self.negY = take(self.S), take(self.negY)
        if self.gram:
            self.K = self.K.index_select(0, g_idx).contiguous()
            self.negXtY = take(self.negXtY)
        self.X = self.X.index_select(0, g_idx).contiguous()
        self.Xt = self.Xt.index_select(0, g_idx).contiguous()
        if self.beta_prev is not None:
            self.beta_prev = take(self.beta_prev)
        self._allocate()
        # The step in progress continues with _update(), which needs this block's B (and R).
        self._forward()
