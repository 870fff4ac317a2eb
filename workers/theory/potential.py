"""Hyperbolic-entropy potential of the diagonal network (THEORY.md §2).

Gradient flow on beta = w+ v+ - w- v- is a mirror flow with the potential

    q_k(z) = (sqrt_k/4) h(u),   u = 2z/sqrt_k,   h(u) = 1 - sqrt(1+u^2) + u arcsinh(u)

whose per-coordinate scale ``sqrt_k = sqrt((delta+ - delta-)^2 + 4 s^2)`` is fixed by the
conserved quantities of the weights.  Every function here is elementwise numpy and takes
``sqrt_k`` (the square root of THEORY.md's ``k``), which keeps the lazy (sqrt_k ~ 1e6)
and very rich (sqrt_k ~ 1e-12) ends in range.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from workers.config import READOUT_CONVENTIONS, InitParams


def entropy_h(u: ArrayLike) -> np.ndarray:
    """h(u) = 1 - sqrt(1+u^2) + u arcsinh(u) (THEORY.md §4), without cancellation.

    Written as u arcsinh(u) - u^2/(1+sqrt(1+u^2)): the two terms differ by a factor ~2
    near 0 (instead of cancelling to O(u^2) from O(1)), and ``|u| * (|u|/(1+hypot))``
    cannot overflow for huge u.
    """
    u = np.asarray(u, dtype=float)
    a = np.abs(u)
    return a * np.arcsinh(a) - a * (a / (1.0 + np.hypot(1.0, a)))


def q(beta: ArrayLike, sqrt_k: ArrayLike) -> np.ndarray:
    """q_k(beta) = (sqrt_k/4) [1 - sqrt(1+4 beta^2/k) + (2 beta/sqrt_k) arcsinh(2 beta/sqrt_k)].

    THEORY.md §2.  Even, convex, q_k(0) = 0; ~ beta^2/(2 sqrt_k) (lazy, l2) when
    |beta| << sqrt_k and ~ (|beta|/2) ln(4|beta|/(e sqrt_k)) (rich, l1-like) when |beta| >> sqrt_k.
    """
    beta = np.asarray(beta, dtype=float)
    sk = np.asarray(sqrt_k, dtype=float)
    return 0.25 * sk * entropy_h(2.0 * beta / sk)


def q_prime(beta: ArrayLike, sqrt_k: ArrayLike) -> np.ndarray:
    """q_k'(beta) = (1/2) arcsinh(2 beta / sqrt_k) (THEORY.md §2)."""
    beta = np.asarray(beta, dtype=float)
    return 0.5 * np.arcsinh(2.0 * beta / np.asarray(sqrt_k, dtype=float))


def q_second(beta: ArrayLike, sqrt_k: ArrayLike) -> np.ndarray:
    """q_k''(beta) = 1 / sqrt(k + 4 beta^2) (THEORY.md §2), computed with hypot."""
    beta = np.asarray(beta, dtype=float)
    return 1.0 / np.hypot(np.asarray(sqrt_k, dtype=float), 2.0 * beta)


def sqrt_k_from_weights(
    w_plus: ArrayLike, v_plus: ArrayLike, w_minus: ArrayLike, v_minus: ArrayLike
) -> np.ndarray:
    """sqrt_k_i = sqrt((delta+ - delta-)^2 + 4 s^2) from the weights (THEORY.md §2).

    delta^± = (w^±)^2 - (v^±)^2 and s = w+ w- + v+ v- are the conserved quantities of
    gradient flow (THEORY.md §1); use the weights at the start of the phase whose
    implicit bias is wanted (for fine-tuning: right after the readout re-init).
    """
    wp, vp = np.asarray(w_plus, dtype=float), np.asarray(v_plus, dtype=float)
    wm, vm = np.asarray(w_minus, dtype=float), np.asarray(v_minus, dtype=float)
    delta_diff = (wp**2 - vp**2) - (wm**2 - vm**2)
    s = wp * wm + vp * vm
    return np.hypot(delta_diff, 2.0 * s)


def sqrt_k_finetune(
    beta_pt: ArrayLike,
    c_pt: float,
    lambda_pt: float,
    gamma_ft: float,
    readout_convention: str = "per_path_sqrt2",
) -> np.ndarray:
    """Central formula of THEORY.md §2: the fine-tuning potential's scale per coordinate.

        sqrt_k_FT = 2 c_PT (1 + lambda_PT) (1 + sqrt(1 + (beta_PT/c_PT)^2)) + gamma_FT^2

    with ``readout_convention="per_path"`` (readout re-initialized to gamma itself instead
    of gamma/sqrt(2)) the last term is 2 gamma_FT^2.  ``beta_pt`` is the converged
    pretraining solution on that coordinate (beta*_PT under oracle pretraining).
    """
    if readout_convention not in READOUT_CONVENTIONS:
        raise ValueError(
            f"readout_convention must be one of {', '.join(READOUT_CONVENTIONS)}, "
            f"got {readout_convention!r}"
        )
    beta_pt = np.asarray(beta_pt, dtype=float)
    gamma_term = gamma_ft**2 if readout_convention == "per_path_sqrt2" else 2.0 * gamma_ft**2
    # c (1 + sqrt(1 + (b/c)^2)) = c + hypot(c, b): no overflow for c -> 0.
    return 2.0 * (1.0 + lambda_pt) * (c_pt + np.hypot(c_pt, beta_pt)) + gamma_term


def scratch_equivalent(init: InitParams) -> InitParams:
    """The fine-tuning knobs whose FT potential equals training from scratch.

    From the PT initialization itself (no pretraining, no re-init) both pathways are
    equal, so δ⁺ = δ⁻ and √k = 2s = 2c_PT for every coordinate, whatever λ_PT
    (THEORY.md §2: "√k = 2c_PT ... does not depend on λ_PT"; §4 "from scratch, λ has
    no effect").  The central formula gives the same √k with λ_PT = −1 and
    γ_FT = √(2c_PT) (per_path_sqrt2): 2c(1+λ)(…) + γ² = 2c.  The theory (replica
    curve, regime label) of a from-scratch run is therefore that of these knobs.
    """
    return InitParams(
        c_pt=init.c_pt,
        lambda_pt=-1.0,
        gamma_ft=math.sqrt(2.0 * init.c_pt),
        readout_convention="per_path_sqrt2",
    )
