"""A learning rate set by the stability of gradient descent on one instance.

Near a solution, GD on the diagonal network moves ``beta`` by (THEORY.md §2, the mirror
flow written as a step)

    beta <- beta - lr * diag(sqrt(k + 4 beta^2)) * (2/n) X^T (X beta - y),

so it is stable when ``lr * lambda_max(diag(sqrt(k + 4 beta^2)) (2/n) X^T X) < 2``.  With
``x ~ N(0, I/D)`` the top eigenvalue of ``X^T X`` is ``(1 + sqrt(alpha))^2`` (the
Marchenko-Pastur edge for ``n = alpha D`` rows), and the metric is at most
``M = max_i sqrt(k_i + 4 beta_i^2)``, so

    lr_max = n / ((1 + sqrt(alpha))^2 * M)

is a sufficient bound (it takes the whole of ``X^T X`` at the largest metric; the top
eigenvalue on a sparse support is smaller).  The solution's ``beta`` is not known before
training; the teacher ``beta*`` is its scale, and ``M`` is taken with it.

Why a rule and not the paper's constant: in regime I (``lambda_PT = -1``, ``gamma_FT ->
0``) every ``sqrt(k_i) = gamma^2`` is ~1e-12, GD must escape the saddle at the origin,
and the gradient-flow time it needs grows with ``n`` and ``D`` (README, "Paper scale").
The paper's ``lr = 0.05`` is 40-200x below ``lr_max`` at D = 5000 and needs more than
5e5 steps from ``alpha = 0.059`` on.  There the implicit bias is the l1 limit of
``Q_k`` (THEORY.md §2): a finite step only multiplies each ``sqrt(k_i)`` by the drift
factor ``phi_i in (0, 1]`` (``workers.dln._block``), which moves the l1 weights
``ln(2|beta|/sqrt(k_i)) ~ 28`` by ``-ln phi_i``, so the solution does not depend on the
step as long as the drift stays small (measured and tested:
``tests/workers/dln/test_step_size.py``).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike


def stability_bound(n: int, D: int, sqrt_k: ArrayLike, beta_scale: ArrayLike) -> float:
    """``lr_max = n / ((1 + sqrt(n/D))^2 max_i sqrt(k_i + 4 beta_i^2))`` (module docstring).

    ``sqrt_k``: the FT start's per-coordinate ``sqrt(k)``; ``beta_scale``: the scale the
    solution reaches (the teacher ``beta*``).  Both broadcast to the D coordinates.
    """
    if n < 1 or D < 1:
        raise ValueError(f"n and D must be >= 1, got n={n}, D={D}")
    sqrt_k = np.asarray(sqrt_k, dtype=float)
    beta = np.asarray(beta_scale, dtype=float)
    metric = float(np.max(np.sqrt(sqrt_k**2 + 4.0 * beta**2)))
    if not math.isfinite(metric) or metric <= 0.0:
        raise ValueError("the metric max sqrt(k + 4 beta^2) must be finite and > 0")
    edge = (1.0 + math.sqrt(n / D)) ** 2
    return n / (edge * metric)


def stable_lr(n: int, D: int, sqrt_k: ArrayLike, beta_scale: ArrayLike, fraction: float) -> float:
    """``fraction * stability_bound(...)``: the learning rate of the ``stability`` rule."""
    if not (math.isfinite(fraction) and 0.0 < fraction <= 1.0):
        raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
    return fraction * stability_bound(n, D, sqrt_k, beta_scale)
