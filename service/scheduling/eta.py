"""A sweep's completion rate and ETA from an exponentially weighted rate of completions.

Pure: completion times in, numbers out (the store collects the times).

Why not ``remaining / (done / elapsed)``: trials finish in batches, so between two
batches that cumulative rate decays with the elapsed time and the ETA climbs, then drops
when the next batch lands (issue 17 saw it jump between 3,255 and 3,481 s).

The rate.  With the first claim ``s``, the distinct completion times ``t_1 < ... < t_K``
(``c_k`` trials finished at ``t_k``), ``t_0 = s``, the latest completion ``T = t_K`` and
a time constant ``tau`` (``TAU_S``):

    r = sum_k c_k exp(-(T - u_k) / tau)  /  (tau * (1 - exp(-(T - s) / tau))),
    u_k = (t_{k-1} + t_k) / 2

Each batch of completions stands for the interval since the previous one and is weighed
at its midpoint; the denominator is the weight of the whole window ``[s, T]``.  So a
steady rate ``λ`` is estimated as ``λ`` from the first batch on (for batches every
``Δ`` seconds the error is about ``(Δ / tau)^2 / 24``), and a change of rate is
followed within a few ``tau``.

The ETA at ``now``:

    eta = remaining / r - (now - T)

which counts down at one second per second between batches and is re-estimated when one
lands.  When that is negative (the next completion is overdue), the silence itself is
evidence: ``eta = remaining / r_now`` with ``r_now`` the same weighted rate evaluated at
``now`` instead of ``T`` (all weights decay, the window grows).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

TAU_S = 300.0


@dataclass(frozen=True)
class RateEstimate:
    """Completions per second and seconds to go (None when nothing finished yet)."""

    rate_per_s: float | None
    eta_s: float | None


def weighted_rate(
    finish_times: Sequence[float], start: float, at: float, tau: float = TAU_S
) -> float | None:
    """The exponentially weighted completion rate evaluated at ``at`` (module docstring).
    None without completions or without a window."""
    if not finish_times or at <= start:
        return None
    counts = Counter(finish_times)
    weight, previous = 0.0, start
    for moment in sorted(counts):
        middle = (max(previous, start) + moment) / 2
        weight += counts[moment] * math.exp(-max(at - middle, 0.0) / tau)
        previous = moment
    window = tau * -math.expm1(-(at - start) / tau)
    return weight / window if window > 0 else None


def estimate(
    finish_times: Sequence[float],
    start: float | None,
    remaining: int,
    now: float,
    tau: float = TAU_S,
) -> RateEstimate:
    """The smoothed rate at the latest completion and the ETA at ``now``."""
    if start is None or not finish_times:
        return RateEstimate(None, None)
    latest = max(finish_times)
    rate = weighted_rate(finish_times, start, latest, tau)
    if rate is None or rate <= 0:
        return RateEstimate(None, None)
    if remaining <= 0:
        return RateEstimate(rate, 0.0)
    eta = remaining / rate - max(now - latest, 0.0)
    if eta < 0:
        later = weighted_rate(finish_times, start, now, tau)
        eta = remaining / later if later else None
    return RateEstimate(rate, eta)
