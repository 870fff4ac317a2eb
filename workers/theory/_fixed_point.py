"""Solver for the (s^2, g) fixed point of the replica theory at one alpha (THEORY.md §3).

    s^2 = b (sigma0^2 + E[(beta_hat - beta*)^2]),   g = gamma_ext + b E[sigma^2(beta_hat)],

b = 1/alpha.  The iteration runs on (ln s^2, ln g): the equations are nearly scale
invariant in the rich regime (a soft threshold sets g/s, not s), so a relative
convergence test is the meaningful one, and in log variables the spurious "perfect
recovery" start s^2 ~ 0 of THEORY.md's trap is not a fixed point: there the map
multiplies s^2 by a constant factor != 1, which shows as a non-zero log-residual instead
of an absolute change below tolerance.  Damped iteration is accelerated by Anderson
mixing (a multi-secant method) with a restart safeguard.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workers.theory._prox import ChannelMoments, Mixture, Quadrature, channel_moments

# Floors of THEORY.md §3's clamps (s^2 >= b sigma0^2, g >= max(gamma_ext, 1e-14)); the
# s^2 floor only keeps logarithms finite when sigma0 = 0.
S2_FLOOR = 1e-200
G_FLOOR = 1e-14
_ANDERSON_DEPTH = 4
# Largest change of ln s^2 or ln g in one step (a factor ~20).
_MAX_LOG_STEP = 3.0


@dataclass(frozen=True)
class FixedPoint:
    """A solution (or the last iterate) of the fixed-point equations at one alpha."""

    s2: float
    g: float
    moments: ChannelMoments
    converged: bool
    iterations: int
    residual: float


@dataclass(frozen=True)
class Channel:
    """Everything the map needs besides (s^2, g) and alpha."""

    mix: Mixture
    quad: Quadrature
    sigma0: float
    gamma_ext: float
    active_threshold: float


def _log_map(p: np.ndarray, b: float, ch: Channel) -> tuple[np.ndarray, ChannelMoments]:
    s2, g = float(np.exp(p[0])), float(np.exp(p[1]))
    mom = channel_moments(s2, g, ch.mix, ch.quad, ch.active_threshold)
    s2_new = max(b * (ch.sigma0**2 + mom.error), b * ch.sigma0**2, S2_FLOOR)
    g_new = max(ch.gamma_ext + b * mom.sigma2, ch.gamma_ext, G_FLOOR)
    return np.log([s2_new, g_new]), mom


def solve_fixed_point(
    alpha: float,
    ch: Channel,
    start: tuple[float, float],
    *,
    tol: float,
    max_iter: int,
    damping: float,
) -> FixedPoint:
    """Damped, Anderson-accelerated iteration from ``start = (s2, g)`` at one alpha.

    ``damping`` is the weight of the old iterate in the mixing step
    (new = damping * old + (1 - damping) * map(old)); convergence means
    max |ln map(p) - ln p| <= tol.
    """
    b = 1.0 / alpha
    p = np.log([max(start[0], S2_FLOOR), max(start[1], G_FLOOR)])
    mix_weight = 1.0 - damping
    ps: list[np.ndarray] = []
    fs: list[np.ndarray] = []
    best_res = np.inf
    res = np.inf
    for it in range(1, max_iter + 1):
        tp, mom = _log_map(p, b, ch)
        f = tp - p
        res = float(np.max(np.abs(f)))
        if not np.isfinite(res):
            break
        if res <= tol:
            return FixedPoint(
                float(np.exp(p[0])), float(np.exp(p[1])), mom, True, it, res
            )
        if res > 2.0 * best_res:
            # The extrapolation went into a worse region: forget the history.
            ps, fs = [], []
        best_res = min(best_res, res)
        ps.append(p.copy())
        fs.append(f)
        if len(ps) > _ANDERSON_DEPTH + 1:
            ps.pop(0)
            fs.pop(0)
        step = mix_weight * f
        if len(ps) >= 2:
            d_f = np.diff(np.array(fs), axis=0)
            d_p = np.diff(np.array(ps), axis=0)
            # Tikhonov-regularized least squares: when the residual barely changes along
            # the history (a map that is locally a pure scaling) the coefficients go to 0
            # and the step falls back to plain damped iteration.
            gram = d_f @ d_f.T
            ridge = 1e-8 * float(np.trace(gram)) + 1e-30
            coef = np.linalg.solve(gram + ridge * np.eye(len(gram)), d_f @ f)
            if float(np.linalg.norm(coef)) < 1e3:
                step = -(d_p.T @ coef) + mix_weight * (f - d_f.T @ coef)
        p = p + np.clip(step, -_MAX_LOG_STEP, _MAX_LOG_STEP)
    s2, g = float(np.exp(p[0])), float(np.exp(p[1]))
    mom = channel_moments(s2, g, ch.mix, ch.quad, ch.active_threshold)
    return FixedPoint(s2, g, mom, False, max_iter, res)
