"""Solver for the (s^2, g) fixed point of the replica theory at one alpha (THEORY.md §3).

    s^2 = b (sigma0^2 + E[(beta_hat - beta*)^2]),   g = gamma_ext + b E[sigma^2(beta_hat)],

b = 1/alpha.  The unknowns are p = (ln s^2, ln g).  Two properties of the map decide the
numerics:

- In the rich regime it is nearly scale invariant (a soft threshold fixes g/s, not s), so
  a relative (log) convergence test is the meaningful one.  In log variables the spurious
  "perfect recovery" start s^2 ~ 0 of THEORY.md's trap is not a fixed point: there the
  map multiplies s^2 by a constant factor != 1, a log-residual of O(1).
- The g-direction is stiff: the threshold is ~ (g/2) ln(1/sqrt_k), so
  d ln T_g / d ln g reaches -5 .. -10 and plain damped iteration oscillates.

Hence damped Newton on f(p) = ln T(p) - p with a finite-difference Jacobian, a batched
backtracking line search on max|f|, and the damped step p + (1 - damping) f as the
fallback when Newton makes no progress (singular Jacobian on a scale-invariant ray).
Stability of the result is judged on the map with g eliminated:
m = J_ss + J_sg J_gs / (1 - J_gg) (J the Jacobian of ln T); |m| < 1 is stable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workers.theory._prox import ChannelMoments, Expectation

# Floors of THEORY.md §3's clamps (s^2 >= b sigma0^2, g >= max(gamma_ext, 1e-14)); the
# s^2 floor only keeps logarithms finite when sigma0 = 0.
S2_FLOOR = 1e-200
G_FLOOR = 1e-14
_FD_STEP = 1e-6
_LINE_SEARCH = (1.0, 0.5, 0.25, 0.125)
# Largest change of ln s^2 or ln g in one step (a factor ~20).
_MAX_LOG_STEP = 3.0


@dataclass(frozen=True)
class FixedPoint:
    """A solution (or the last iterate) of the fixed-point equations at one alpha.

    ``stability`` is the reduced multiplier m (module docstring); NaN if never computed.
    """

    s2: float
    g: float
    error: float
    active: float
    converged: bool
    evaluations: int
    residual: float
    stability: float

    @property
    def stable(self) -> bool:
        return bool(abs(self.stability) < 1.0)


@dataclass(frozen=True)
class Channel:
    """Everything the map needs besides (s^2, g) and alpha."""

    expectation: Expectation
    sigma0: float
    gamma_ext: float
    active_threshold: float


def _log_map(ps: np.ndarray, b: float, ch: Channel) -> tuple[np.ndarray, ChannelMoments]:
    """ln T at a batch of points ps (B, 2), with THEORY.md's clamps."""
    s2, g = np.exp(ps[:, 0]), np.exp(ps[:, 1])
    mom = ch.expectation.moments(s2, g, ch.active_threshold)
    s2_new = np.maximum(b * (ch.sigma0**2 + mom.error), max(b * ch.sigma0**2, S2_FLOOR))
    g_new = np.maximum(ch.gamma_ext + b * mom.sigma2, max(ch.gamma_ext, G_FLOOR))
    return np.log(np.stack([s2_new, g_new], axis=1)), mom


def _moment(mom: ChannelMoments, i: int) -> ChannelMoments:
    return ChannelMoments(mom.error[i : i + 1], mom.sigma2[i : i + 1], mom.active[i : i + 1])


def _reduced_slope(jac: np.ndarray) -> float:
    """d ln T_s / d ln s^2 with g at its own fixed point (the stability multiplier)."""
    denom = 1.0 - jac[1, 1]
    if abs(denom) < 1e-12:
        return float("inf")
    return float(jac[0, 0] + jac[0, 1] * jac[1, 0] / denom)


def solve_fixed_point(
    alpha: float,
    ch: Channel,
    start: tuple[float, float],
    *,
    tol: float,
    max_iter: int,
    damping: float,
) -> FixedPoint:
    """Newton with damped-iteration fallback from ``start = (s2, g)`` at one alpha.

    Converged means max |ln T(p) - p| <= tol.  ``damping`` is the weight of the old
    iterate in the fallback step (new = damping * old + (1 - damping) * T(old), in logs).
    ``max_iter`` bounds the number of map evaluations.
    """
    b = 1.0 / alpha
    p = np.log([max(start[0], S2_FLOOR), max(start[1], G_FLOOR)])
    tp, mom = _log_map(p[None, :], b, ch)
    f = tp[0] - p
    res = float(np.max(np.abs(f)))
    evaluations = 1
    jac = np.full((2, 2), np.nan)
    while evaluations < max_iter and np.isfinite(res):
        probes = p[None, :] + _FD_STEP * np.eye(2)
        tprobe, _ = _log_map(probes, b, ch)
        jac = (tprobe - tp[0][None, :]).T / _FD_STEP
        evaluations += 2
        if res <= tol:
            break
        try:
            step = -np.linalg.solve(jac - np.eye(2), f)
        except np.linalg.LinAlgError:
            step = np.full(2, np.nan)
        fallback = (1.0 - damping) * f
        if not np.all(np.isfinite(step)):
            step = fallback
        step = step * min(1.0, _MAX_LOG_STEP / float(np.max(np.abs(step)) + 1e-300))
        fallback = fallback * min(1.0, _MAX_LOG_STEP / float(np.max(np.abs(fallback)) + 1e-300))
        cands = np.vstack([p + a * step for a in _LINE_SEARCH] + [p + fallback])
        tc, mc = _log_map(cands, b, ch)
        evaluations += len(cands)
        fc = tc - cands
        rc = np.max(np.abs(fc), axis=1)
        rc[~np.isfinite(rc)] = np.inf
        newton_ok = np.flatnonzero(rc[:-1] <= (1.0 - 1e-4 * np.asarray(_LINE_SEARCH)) * res)
        pick = int(newton_ok[0]) if newton_ok.size else len(cands) - 1
        if not np.isfinite(rc[pick]):
            break
        p, tp, f, res = cands[pick], tc[pick : pick + 1], fc[pick], float(rc[pick])
        mom = _moment(mc, pick)
    s2, g = float(np.exp(p[0])), float(np.exp(p[1]))
    return FixedPoint(
        s2=s2,
        g=g,
        error=float(mom.error[0]),
        active=float(mom.active[0]),
        converged=bool(res <= tol),
        evaluations=evaluations,
        residual=res,
        stability=_reduced_slope(jac),
    )
