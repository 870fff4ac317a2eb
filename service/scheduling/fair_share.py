"""Fair share at claim time: how many of the next ``limit`` claimed trials each user gets.

Slurm's fair-share factor: with usage ``u_i`` (claimed trials, decayed with a half-life)
and share ``s_i`` (a weight, boosted by the priority class of the user's next trial),
normalized over the users with pending work, ``U_i = u_i / Σu`` and ``S_i = s_i / Σs``,

    F_i = 2^(-U_i / S_i)        (1 for an idle newcomer, 1/2 at exactly its share)

Users are served in order of decreasing ``F``.  The amounts are water-filled so that
after the claim each user's usage is as close to its share of the total as the limit
allows: ``target_i = S_i (Σu + limit)`` and ``n_i = max(0, target_i − u_i)``, capped by
the user's free running slots (the running-trials quota, enforced again here) and scaled
to ``limit``.  A newcomer therefore starts in the very next claim, and over a run each
user's share of claimed trials tracks its configured share.  Within a user, trials are
claimed in ``claim_rank`` order (priority class, then priority), oldest first.

Pure: no database.  ``service.store.transitions.claim_pending`` feeds it the users and
applies the result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

CLASS_RANKS = {"ci": 0, "interactive": 1, "batch": 2}


def claim_rank(priority_class: str, priority: int) -> int:
    """A trial's place in its owner's queue: class first (ci, interactive, batch), then
    higher priority (−100..100) first."""
    return CLASS_RANKS.get(priority_class, 1) * 1000 + (100 - priority)


def class_of_rank(rank: int) -> str:
    by_rank = {value: name for name, value in CLASS_RANKS.items()}
    return by_rank.get(rank // 1000, "interactive")


def decayed(usage: float, elapsed_s: float, half_life_s: float) -> float:
    """``usage · 2^(−elapsed / half_life)``."""
    return usage * 0.5 ** (max(elapsed_s, 0.0) / half_life_s)


@dataclass(frozen=True)
class Queue:
    """One user with pending work, as the allocation sees it."""

    owner: str
    share: float
    usage: float
    # Trials the user may still start (running quota minus running); None: no cap.
    free_slots: int | None = None


def factor(queue: Queue, total_usage: float, total_share: float) -> float:
    """Slurm's fair-share factor ``2^(-U/S)`` (1 when nobody has used anything)."""
    if total_usage <= 0:
        return 1.0
    normalized_share = queue.share / total_share
    return 2.0 ** (-(queue.usage / total_usage) / normalized_share)


def _split(order: Sequence[Queue], limit: int, total_usage: float) -> dict[str, int]:
    """Integer amounts summing to ``limit``, proportional to each user's deficit."""
    total_share = sum(q.share for q in order)
    wanted = {
        q.owner: max(0.0, q.share / total_share * (total_usage + limit) - q.usage) for q in order
    }
    total_wanted = sum(wanted.values())
    if total_wanted <= 0:  # everyone at or above its share: split by share
        wanted = {q.owner: q.share for q in order}
        total_wanted = total_share
    amounts = {owner: limit * want / total_wanted for owner, want in wanted.items()}
    result = {owner: math.floor(amount) for owner, amount in amounts.items()}
    # The rounding leftovers go to the largest remainders.
    left = limit - sum(result.values())
    by_remainder = sorted(order, key=lambda q: -(amounts[q.owner] - result[q.owner]))
    for queue in by_remainder[:left]:
        result[queue.owner] += 1
    return result


def allocate(queues: Sequence[Queue], limit: int) -> list[tuple[str, int]]:
    """``[(owner, n)]`` in the order to claim (highest factor first), Σn ≤ ``limit``.

    A user capped by its free running slots gets at most those; what it cannot take is
    water-filled again over the others.
    """
    active = [q for q in queues if q.share > 0 and (q.free_slots is None or q.free_slots > 0)]
    if not active or limit <= 0:
        return []
    total_share = sum(q.share for q in active)
    total_usage = sum(q.usage for q in active)
    order = sorted(active, key=lambda q: (-factor(q, total_usage, total_share), q.owner))
    fixed: dict[str, int] = {}
    remaining, open_queues = limit, list(order)
    while open_queues and remaining > 0:
        amounts = _split(open_queues, remaining, sum(q.usage for q in open_queues))
        capped = [
            q for q in open_queues if q.free_slots is not None and amounts[q.owner] > q.free_slots
        ]
        if not capped:
            fixed.update(amounts)
            break
        for queue in capped:
            fixed[queue.owner] = queue.free_slots or 0
            remaining -= fixed[queue.owner]
        open_queues = [q for q in open_queues if q not in capped]
    return [(q.owner, fixed[q.owner]) for q in order if fixed.get(q.owner, 0) > 0]
