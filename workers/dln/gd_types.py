"""The inputs of batched gradient descent: a network's weights, a job, the options.

Kept apart from ``workers.dln.simulate`` (the driver) and ``workers.dln._block`` (the
inner loop) so that both import these and neither imports the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

STOP_REASONS = ("loss_threshold", "stalled", "max_steps", "diverged")
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
        if self.gradient_form not in GRADIENT_FORMS:
            choices = ", ".join(GRADIENT_FORMS)
            raise ValueError(f"gradient_form must be one of {choices}, got {self.gradient_form!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        resolve_device(self.device)
