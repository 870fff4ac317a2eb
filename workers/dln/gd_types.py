"""The inputs of batched gradient descent: a network's weights, a job, the options.

Kept apart from ``workers.dln.simulate`` (the driver) and ``workers.dln._block`` (the
inner loop) so that both import these and neither imports the other.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch

STOP_REASONS = ("loss_threshold", "stalled", "max_steps", "diverged")
# A run in legs (GDOptions.leg_steps) whose leg ended before the budget: not a result, it
# continues from its state; never stored (a trial's result has one of STOP_REASONS).
LEG_END = "leg_end"
DTYPES = {"float64": torch.float64, "float32": torch.float32}
GRADIENT_FORMS = ("auto", "residual", "gram")


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


@dataclass(frozen=True, eq=False)
class GDState:
    """Where an unfinished network stopped (``stop_reason`` ``"max_steps"`` or
    ``LEG_END``): everything
    the loop needs to go on as if it had never stopped.

    ``s_minus``/``s_plus`` are the pathway factors (``workers.dln._block``) after ``step``
    steps; ``initial_loss`` is the divergence rule's reference; ``stall_count`` and
    ``beta_prev`` (``4 beta`` at the last check, ``None`` before the first or without
    early stopping) are the stall rule's memory *as an uninterrupted run would hold it*
    at ``step`` (the extra final check of a step budget is not counted).  Continuing a
    job from its state to a larger ``max_steps`` gives the same trajectory as one run
    to that budget (same steps; equal up to matrix-product rounding).
    """

    step: int
    s_minus: np.ndarray
    s_plus: np.ndarray
    initial_loss: float
    stall_count: int = 0
    beta_prev: np.ndarray | None = None

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (for ``np.savez``: the service stores the state as a blob)."""
        arrays = {
            "step": np.asarray(self.step, dtype=np.int64),
            "s_minus": np.asarray(self.s_minus, dtype=np.float64),
            "s_plus": np.asarray(self.s_plus, dtype=np.float64),
            "initial_loss": np.asarray(self.initial_loss, dtype=np.float64),
            "stall_count": np.asarray(self.stall_count, dtype=np.int64),
        }
        if self.beta_prev is not None:
            arrays["beta_prev"] = np.asarray(self.beta_prev, dtype=np.float64)
        return arrays

    def to_bytes(self) -> bytes:
        """The state as one ``.npz`` blob (what the service stores between legs)."""
        buffer = io.BytesIO()
        np.savez(buffer, **self.to_arrays())
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> GDState:
        """Inverse of :meth:`to_bytes` (bit-exact: float64 arrays, no pickling)."""
        with np.load(io.BytesIO(blob), allow_pickle=False) as arrays:
            return cls.from_arrays({name: arrays[name] for name in arrays.files})

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> GDState:
        beta_prev = arrays.get("beta_prev")
        return cls(
            step=int(arrays["step"]),
            s_minus=np.array(arrays["s_minus"], dtype=np.float64),
            s_plus=np.array(arrays["s_plus"], dtype=np.float64),
            initial_loss=float(arrays["initial_loss"]),
            stall_count=int(arrays["stall_count"]),
            beta_prev=None if beta_prev is None else np.array(beta_prev, dtype=np.float64),
        )


@dataclass(frozen=True, eq=False)
class GDJob:
    """One network to train: data, initial weights and optional evaluation targets.

    Jobs that pass the *same* ``X`` object are trained as columns of one matrix.
    ``beta_star`` enables ``gen_error``; ``X_test``/``y_test`` enable ``test_mse``.
    ``resume`` continues the job from a :class:`GDState` of an earlier run with the same
    ``X``, ``y``, ``init`` and options (``max_steps`` is the total budget, counted from
    step 0); ``init`` is still the start (weights are recovered relative to it).
    ``lr`` overrides ``GDOptions.lr`` for this job (``workers.dln.step_size``); jobs
    with different step sizes never share a block.
    """

    X: np.ndarray
    y: np.ndarray
    init: PathwayWeights
    beta_star: np.ndarray | None = None
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    resume: GDState | None = None
    lr: float | None = None

    def __post_init__(self) -> None:
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0 or None, got {self.lr!r}")


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


@dataclass(frozen=True)
class GDOptions:
    """Gradient-descent settings (THEORY.md §5 defaults: lr 0.5, MSE < 1e-4, 1e-6 stall).

    ``early_stopping=False`` runs exactly ``max_steps`` steps (benchmarks); the final
    state is still classified.  ``stack_datasets=None`` stacks same-shape datasets on
    CUDA only.  ``max_block_elements`` caps ``G*D*m`` per block (memory).

    ``gradient_form`` chooses how ``X^T (X beta - y)`` is formed each step:
    ``"residual"`` as two products (``X @ B``, then ``X^T @ R``: ``4 n D m`` flops),
    ``"gram"`` as one product with the precomputed ``K = X^T X`` (``2 D^2 m`` flops; the
    residual is then formed only at the stopping checks), ``"auto"`` (default) takes
    ``"gram"`` when it saves at least a quarter of the flops (``D <= 1.5 n``, i.e.
    alpha >= 2/3) and ``K`` fits in ``max_block_elements``.  Both are the same GD up to
    rounding.
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
    gradient_form: str = "auto"
    # Steps one run may add to a job (a *leg*): a job not finished after ``leg_steps``
    # more steps stops with ``stop_reason == LEG_END`` and its state, to be resumed
    # later (``GDJob.resume``); ``max_steps`` stays the total budget.  None: no legs.
    leg_steps: int | None = None

    def stop_step(self, start_step: int) -> int:
        """The step a run that starts at ``start_step`` stops at, at the latest."""
        if self.leg_steps is None:
            return self.max_steps
        return min(self.max_steps, start_step + self.leg_steps)

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
        legs = self.leg_steps
        if legs is not None and (isinstance(legs, bool) or not isinstance(legs, int) or legs < 1):
            raise ValueError(f"leg_steps must be an integer >= 1 or None, got {self.leg_steps!r}")
        if self.gradient_form not in GRADIENT_FORMS:
            choices = ", ".join(GRADIENT_FORMS)
            raise ValueError(f"gradient_form must be one of {choices}, got {self.gradient_form!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        resolve_device(self.device)
