"""Pretraining of the diagonal network and the fine-tuning start (THEORY.md §1).

- :func:`pt_init_weights`: the PT initialization ``w^±(0) = sqrt(c(1+lambda)/2)``,
  ``v^±(0) = sqrt(c(1-lambda)/2)``.
- :func:`oracle_pretrained_weights`: the post-PT weights that gradient flow reaches when
  it converges to ``beta_pt``, reconstructed from the conserved quantities
  ``delta^± = lambda c`` and ``s = c`` (the paper's "oracle" PT).
- :func:`pretrain_job` / :func:`trained_pretrained_weights`: actual GD on PT data.
- :func:`finetune_start`: first layers summed, readouts re-initialized to
  ``InitParams.readout_scale``.
"""

from __future__ import annotations

import math

import numpy as np

from workers.config import InitParams, require_finite
from workers.dln.simulate import GDJob, GDOptions, GDResult, PathwayWeights, run_gradient_descent


def _validate_scales(c_pt: float, lambda_pt: float) -> tuple[float, float]:
    c = require_finite("c_pt", c_pt)
    if c <= 0.0:
        raise ValueError(f"c_pt must be > 0, got {c}")
    lam = require_finite("lambda_pt", lambda_pt)
    if not -1.0 <= lam <= 1.0:
        raise ValueError(f"lambda_pt must lie in [-1, 1], got {lam}")
    return c, lam


def pt_init_weights(c_pt: float, lambda_pt: float, D: int) -> PathwayWeights:
    """PT initialization (THEORY.md §1): ``w^± = sqrt(c(1+l)/2)``, ``v^± = sqrt(c(1-l)/2)``.

    Then ``beta(0) = 0``, ``delta^± = l c`` and ``s = c`` for every coordinate.
    """
    c, lam = _validate_scales(c_pt, lambda_pt)
    w = np.full(D, math.sqrt(c * (1.0 + lam) / 2.0))
    v = np.full(D, math.sqrt(c * (1.0 - lam) / 2.0))
    return PathwayWeights(w.copy(), v.copy(), w.copy(), v.copy())


def _scaled_cosh_sinh(log_scale: float, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(e^L cosh(theta), e^L sinh(theta))`` without overflow or cancellation.

    For ``|theta| >= 1`` both come from ``exp(L ± |theta|)`` (no overflow for any
    representable result); for ``|theta| < 1`` sinh is taken directly, which avoids the
    cancellation of ``e^{L+theta} - e^{L-theta}``.
    """
    magnitude = np.abs(theta)
    large = np.exp(log_scale + magnitude) / 2.0
    small = np.exp(log_scale - magnitude) / 2.0
    cosh = large + small
    sinh_abs = np.where(magnitude < 1.0, math.exp(log_scale) * np.sinh(magnitude), large - small)
    return cosh, np.sign(theta) * sinh_abs


def oracle_pretrained_weights(beta_pt: np.ndarray, c_pt: float, lambda_pt: float) -> PathwayWeights:
    """Exact post-PT weights for ``beta_hat_PT = beta_pt`` (THEORY.md §1, "oracle").

    With ``c = c_pt``, ``l_u = lambda_pt c``, ``A = arccosh(c/|l_u|)``,
    ``B = arcsinh(beta/c)``, ``theta^± = (A ± B)/2``:

    - ``l_u > 0``: ``w^± = sqrt(l_u) cosh theta^±``, ``v^± = sqrt(l_u) sinh theta^±``;
    - ``l_u < 0``: ``v^± = sqrt(-l_u) cosh theta^±``, ``w^± = sqrt(-l_u) sinh theta^±``;
    - ``l_u = 0``: ``w+ = v+ = a``, ``w- = v- = c/(2a)``, ``a^2 = (beta + sqrt(beta^2+c^2))/2``.

    These satisfy ``w+v+ - w-v- = beta``, ``delta^± = l_u`` and ``s = c``.  Numerics:
    ``A = log((1 + sqrt(1-l^2))/|l|)`` and the products ``sqrt(|l_u|) cosh theta`` are
    formed in log space, so tiny ``|lambda|`` or ``|beta|/c ~ 1e6`` neither overflow nor
    cancel; ``a^2`` uses the cancellation-free form ``c^2 / (2(sqrt(beta^2+c^2) - beta))``
    for ``beta < 0``.  In float64 the invariants then hold to ~1e-16 of ``c + |beta|``.
    """
    c, lam = _validate_scales(c_pt, lambda_pt)
    beta = np.asarray(beta_pt, dtype=np.float64)
    if not np.all(np.isfinite(beta)):
        raise ValueError("beta_pt must be finite")
    if lam == 0.0:
        root = np.hypot(beta, c)
        with np.errstate(divide="ignore", invalid="ignore"):
            a_sq = np.where(beta >= 0.0, (beta + root) / 2.0, c * c / (2.0 * (root - beta)))
        a = np.sqrt(a_sq)
        b = c / (2.0 * a)
        return PathwayWeights(a, a.copy(), b, b.copy())
    abs_lam = abs(lam)
    A = math.log1p(math.sqrt((1.0 - abs_lam) * (1.0 + abs_lam))) - math.log(abs_lam)
    B = np.arcsinh(beta / c)
    log_scale = 0.5 * (math.log(c) + math.log(abs_lam))
    cosh_p, sinh_p = _scaled_cosh_sinh(log_scale, (A + B) / 2.0)
    cosh_m, sinh_m = _scaled_cosh_sinh(log_scale, (A - B) / 2.0)
    if lam > 0.0:
        return PathwayWeights(cosh_p, sinh_p, cosh_m, sinh_m)
    return PathwayWeights(sinh_p, cosh_p, sinh_m, cosh_m)


def pretrain_job(X_pt: np.ndarray, y_pt: np.ndarray, c_pt: float, lambda_pt: float) -> GDJob:
    """A GD job for the "trained" PT mode: PT data from the PT initialization."""
    return GDJob(X=X_pt, y=y_pt, init=pt_init_weights(c_pt, lambda_pt, X_pt.shape[1]))


def trained_pretrained_weights(
    X_pt: np.ndarray,
    y_pt: np.ndarray,
    c_pt: float,
    lambda_pt: float,
    options: GDOptions,
) -> GDResult:
    """Pretrain by full-batch GD from :func:`pt_init_weights` (THEORY.md §1, "trained").

    At small ``lr`` the result approaches the min-``Q_k`` interpolator with
    ``sqrt(k) = 2 c_pt`` for every coordinate (THEORY.md §2).
    """
    return run_gradient_descent([pretrain_job(X_pt, y_pt, c_pt, lambda_pt)], options)[0]


def finetune_start(
    w_plus_pt: np.ndarray, w_minus_pt: np.ndarray, init: InitParams
) -> PathwayWeights:
    """FT start (THEORY.md §1): ``w^±(FT,0) = w+ + w-``, ``v^±(FT,0) = readout_scale``.

    ``readout_scale`` is ``gamma/sqrt(2)`` ("per_path_sqrt2") or ``gamma`` ("per_path");
    both pathways start equal, so ``beta_FT(0) = 0``.
    """
    w = np.asarray(w_plus_pt, dtype=np.float64) + np.asarray(w_minus_pt, dtype=np.float64)
    v = np.full_like(w, init.readout_scale)
    return PathwayWeights(w, v, w.copy(), v.copy())
