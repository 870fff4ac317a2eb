"""Claimed trials → batches: pure functions over :class:`~workers.records.ClaimedTrial`.

A batch holds trials of one workload and one batch key (same shape), keeps every trial
of one group key (a shared dataset or theory curve) together — the batch size and the
cost target bound how many groups a batch packs, they never split one: a group larger
than either is a batch alone — and asks Ray for the GPUs its workload needs.  Only a
failed batch is ever cut (:func:`split`), at a group boundary when it holds several.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from workers.records import ClaimedTrial
from workers.workloads import WORKLOADS

_batch_ids = itertools.count(1)


class Groupable(Protocol):
    workload: str
    batch_key: str
    group_key: str


G = TypeVar("G", bound=Groupable)


@dataclass(frozen=True)
class Batch:
    """One Ray task's worth of trials.  ``theory_wanted`` maps a trial id to the theory
    key the batch computes; ``theory_only`` batches compute nothing else."""

    workload: str
    trials: tuple[ClaimedTrial, ...]
    theory_wanted: Mapping[int, str] = field(default_factory=dict)
    gpus: float = 0.0
    # Seconds the batch may run (from its worker's first "started" report); None: no limit.
    hard_limit_s: float | None = None
    theory_only: bool = False
    id: int = field(default_factory=lambda: next(_batch_ids))

    @property
    def ids(self) -> list[int]:
        return [trial.trial_id for trial in self.trials]

    @property
    def theory_keys(self) -> set[str]:
        return set(self.theory_wanted.values())


def group_into_batches(
    trials: Iterable[G],
    batch_size: int,
    *,
    cost: Callable[[G], float] | None = None,
    target_s: float | None = None,
) -> list[list[G]]:
    """Same workload and batch key per batch, whole groups only.

    Groups (trials of one group key) are packed in order into a batch while it holds at
    most ``batch_size`` trials and, with ``cost`` and ``target_s``, at most ``target_s``
    estimated seconds (``cost(trial)``: ``service.scheduling.cost_model``); a group that
    alone exceeds either bound is a batch of its own, never split.  Order (priority,
    age) is kept.
    """
    by_batch: dict[tuple[str, str], dict[str, list[G]]] = defaultdict(dict)
    for trial in trials:
        by_batch[(trial.workload, trial.batch_key)].setdefault(trial.group_key, []).append(trial)
    bounded = cost is not None and target_s is not None and target_s > 0
    batches: list[list[G]] = []
    for groups in by_batch.values():
        current: list[G] = []
        current_s = 0.0
        for members in groups.values():
            members_s = sum(cost(t) for t in members) if bounded else 0.0  # type: ignore[misc]
            over = len(current) + len(members) > batch_size or (
                bounded and current_s + members_s > target_s  # type: ignore[operator]
            )
            if current and over:
                batches.append(current)
                current, current_s = [], 0.0
            current = current + members
            current_s += members_s
        if current:
            batches.append(current)
    return batches


def trials_per_batch(trial_s: float, batch_size: int, target_s: float | None) -> int:
    """How many trials of ``trial_s`` estimated seconds fill a batch of ``target_s``
    (at least 1, at most ``batch_size``; ``batch_size`` when there is no target)."""
    if not target_s or target_s <= 0 or trial_s <= 0:
        return batch_size
    return max(1, min(batch_size, int(target_s // trial_s)))


def batch_size_for(workload: str, configured: int) -> int:
    """The dispatcher's batch size, capped by the workload's own (if it has one)."""
    cap = WORKLOADS[workload].max_batch_size if workload in WORKLOADS else None
    return min(configured, cap) if cap else configured


def gpus_for(trial: Any, cluster_gpus: float | None = None) -> float:
    """GPUs the trial's batch asks Ray for: its workload's rule, with device ``auto``
    meaning cuda when the cluster is known to have a GPU and cpu otherwise."""
    execution = dict(trial.execution)
    if execution.get("device") == "auto":
        execution["device"] = "cuda" if cluster_gpus else "cpu"
    return WORKLOADS[trial.workload].num_gpus(execution)


def hard_limit_s(trials: Sequence[ClaimedTrial], factor: float, grace_s: float) -> float | None:
    """factor × Σ time_limit_s + grace, or None when a trial has no time limit."""
    limits = []
    for trial in trials:
        limit = WORKLOADS[trial.workload].time_limit_s(trial.execution)
        if limit is None:
            return None
        limits.append(limit)
    return factor * sum(limits) + grace_s


def split(batch: Batch, factor: float, grace_s: float) -> tuple[Batch, Batch]:
    """The two halves of a failed batch, each keeping its share of the theory asked.

    With several groups the cut falls on the group boundary nearest the middle, so no
    group is split; a batch of one group is halved (the one way a group is ever split:
    a batch that failed as a whole must shrink to make progress).
    """
    half = len(batch.trials) // 2
    starts = [
        i
        for i in range(1, len(batch.trials))
        if batch.trials[i].group_key != batch.trials[i - 1].group_key
    ]
    if starts:
        half = min(starts, key=lambda i: (abs(i - len(batch.trials) / 2), i))
    parts = []
    for members in (batch.trials[:half], batch.trials[half:]):
        wanted = {
            t.trial_id: batch.theory_wanted[t.trial_id]
            for t in members
            if t.trial_id in batch.theory_wanted
        }
        parts.append(
            Batch(
                batch.workload,
                tuple(members),
                wanted,
                batch.gpus,
                hard_limit_s(members, factor, grace_s),
                batch.theory_only,
            )
        )
    return parts[0], parts[1]
