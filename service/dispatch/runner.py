"""The runner contract: where batches execute (a Ray cluster, or in-process).

Both runners (``service.runners.RayRunner`` and ``InlineRunner``) implement every method;
the dispatcher calls them directly, never through ``getattr``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from workers.records import BatchOutput, ClaimedTrial


@runtime_checkable
class BatchRunner(Protocol):
    """Runs batches somewhere and reports when they finish.

    - ``submit`` starts one batch and returns an opaque handle (it must not block on
      the computation, except the inline runner, which computes at submit time);
    - ``wait(handles, timeout)`` returns the handles that have finished;
    - ``result(handle)`` returns the batch's output or raises the batch's failure;
    - ``cancel(handle)`` stops a batch (no-op when it has finished);
    - ``progress(ids)`` / ``forget(ids)``: the progress channel of running trials;
    - ``finished(ids)``: outcomes of trials that finished inside a batch still running
      (``workers.runtime.ProgressBoard.finished``), kept when that batch is stopped,
      killed or fails; ``{}`` when the channel does not answer;
    - ``cluster_gpus()``: GPUs of the cluster (None when unknown), to resolve device auto;
    - ``start()`` / ``shutdown()`` / ``describe()``: lifecycle and a one-line description.
    """

    def start(self) -> None: ...

    def shutdown(self) -> None: ...

    def describe(self) -> str: ...

    def submit(
        self,
        workload: str,
        trials: Sequence[ClaimedTrial],
        theory_wanted: Mapping[int, str],
        gpus: float,
        *,
        theory_only: bool = False,
    ) -> Any: ...

    def wait(self, handles: list[Any], timeout: float) -> list[Any]: ...

    def result(self, handle: Any) -> BatchOutput: ...

    def cancel(self, handle: Any) -> None: ...

    def progress(self, trial_ids: list[int]) -> dict[int, dict[str, Any]]: ...

    def finished(self, trial_ids: list[int]) -> dict[int, dict[str, Any]]: ...

    def forget(self, trial_ids: list[int]) -> None: ...

    def cluster_gpus(self) -> float | None: ...
