"""Progress of running trials and the hard time limit of batches.

Workers report progress to the runner (a Ray actor, or an in-process board); about once
a second the dispatcher copies the latest reports into ``trials.progress`` and finds the
batches that run past their hard limit (``hard_limit_factor`` × their trials'
``time_limit_s`` + grace, counted from when the worker started computing).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from service.dispatch.batching import Batch


def overdue(
    batches: Sequence[Batch], reports: Mapping[int, Mapping[str, Any]], now: float | None = None
) -> list[Batch]:
    """Batches whose latest ``started_at`` report is older than their hard limit."""
    now = time.time() if now is None else now
    late = []
    for batch in batches:
        if batch.hard_limit_s is None:
            continue
        starts = [reports[i].get("started_at") for i in batch.ids if i in reports]
        starts = [start for start in starts if start]
        if starts and now - max(starts) > batch.hard_limit_s:
            late.append(batch)
    return late


def overdue_message(batch: Batch, factor: float, grace_s: float) -> str:
    return (
        f"hard time limit exceeded: the batch ran more than {batch.hard_limit_s:.0f}s "
        f"({factor:g} × time_limit_s + {grace_s:g}s grace) and was killed; the in-loop "
        "limit did not stop it (stuck inside one step, or in data loading)"
    )
