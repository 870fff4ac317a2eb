"""Batch runners the dispatcher drives: Ray (the product) and in-process (for tools).

``RayRunner`` starts a local Ray in-process when no address is configured (embedded
default) or joins an existing cluster (``SWEEPS_RAY_ADDRESS``).  ``InlineRunner`` runs
a batch synchronously in the calling thread; the benchmarks use it as the
"same computation, no service" baseline and scripts can use it without Ray.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future
from typing import Any

from service.settings import RaySettings
from workers.runtime import THREAD_ENV, execute_batch, make_remote
from workers.workloads import BatchOutput, TrialItem

log = logging.getLogger("sweeps.runners")


class RayRunner:
    def __init__(self, settings: RaySettings) -> None:
        self.settings = settings
        self._remotes: dict[float, Any] = {}
        self._started_here = False

    def start(self) -> None:
        import ray

        if ray.is_initialized():
            return
        runtime_env = {"env_vars": dict(THREAD_ENV)}
        if self.settings.address:
            ray.init(
                address=self.settings.address,
                namespace=self.settings.namespace,
                runtime_env=runtime_env,
                log_to_driver=False,
            )
        else:
            # A private local Ray: no dashboard, never the default GCS port 6379
            # (Redis may live there), no token auth needed for an in-process head.
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            ray.init(
                num_cpus=self.settings.num_cpus or os.cpu_count() or 1,
                namespace=self.settings.namespace,
                include_dashboard=False,
                runtime_env=runtime_env,
                log_to_driver=False,
                configure_logging=False,
            )
            self._started_here = True
        log.info("ray ready: %s", ray.cluster_resources())

    def shutdown(self) -> None:
        import ray

        if self._started_here and ray.is_initialized():
            ray.shutdown()

    def describe(self) -> str:
        import ray

        if not ray.is_initialized():
            return "not started"
        return "local" if self._started_here else f"cluster {self.settings.address}"

    def submit(
        self, workload: str, items: list[TrialItem], theory_wanted: dict[int, str], gpus: float
    ) -> Any:
        remote = self._remotes.get(gpus)
        if remote is None:
            remote = self._remotes[gpus] = make_remote(gpus)
        return remote.remote(workload, items, theory_wanted)

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        import ray

        ready, _ = ray.wait(handles, num_returns=len(handles), timeout=timeout, fetch_local=True)
        return ready

    def result(self, handle: Any) -> BatchOutput:
        import ray

        return ray.get(handle)

    def cancel(self, handle: Any) -> None:
        import ray

        try:
            ray.cancel(handle, force=True)
        except Exception:  # noqa: BLE001 - already finished or gone
            log.debug("cancel of a finished batch ignored")


class InlineRunner:
    """Runs each batch at submit time in the calling thread (no Ray)."""

    def submit(
        self, workload: str, items: list[TrialItem], theory_wanted: dict[int, str], gpus: float
    ) -> Future:
        future: Future = Future()
        try:
            future.set_result(execute_batch(workload, items, theory_wanted))
        except Exception as exc:  # noqa: BLE001 - reported through the future
            future.set_exception(exc)
        return future

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        return [handle for handle in handles if handle.done()]

    def result(self, handle: Future) -> BatchOutput:
        return handle.result()

    def cancel(self, handle: Any) -> None:
        return None

    def describe(self) -> str:
        return "inline"
