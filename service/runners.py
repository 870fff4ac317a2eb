"""Batch runners the dispatcher drives: Ray (the product) and in-process (for tools).

``RayRunner`` starts a private local Ray in-process when no address is configured
(embedded default: ``ray.init(address="local")``, never a cluster that an earlier
``ray start`` left behind) or joins an existing cluster (``SWEEPS_RAY_ADDRESS``).
``InlineRunner`` runs a batch synchronously in the calling thread; the benchmarks use it as the
"same computation, no service" baseline and scripts can use it without Ray.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from service.settings import RaySettings
from workers.records import BatchOutput, ClaimedTrial
from workers.runtime import (
    PROGRESS_ACTOR,
    THREAD_ENV,
    ProgressBoard,
    execute_batch,
    make_remote,
)

log = logging.getLogger("sweeps.runners")


def connected_cluster_gpus() -> float | None:
    """GPUs of the Ray cluster this process is connected to; None when not connected.

    Submit-time admission uses it: a sweep asking for ``device: cuda`` is rejected when
    the API knows its cluster and that cluster has no GPU.  An API that does not run
    Ray (dispatcher elsewhere) cannot know, and accepts the spec.
    """
    try:
        import ray
    except ImportError:  # pragma: no cover - ray is a hard dependency
        return None
    if not ray.is_initialized():
        return None
    try:
        return float(ray.cluster_resources().get("GPU", 0.0))
    except Exception:  # noqa: BLE001 - an unreachable GCS means "unknown"
        return None


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _keep_signal_handlers() -> Iterator[None]:
    """Put SIGINT/SIGTERM's handlers back as they were when the block ends (main thread
    only: elsewhere no handler can be set, so nothing is changed either)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None:  # None: set outside Python; leave it be
                signal.signal(sig, handler)


class RayRunner:
    def __init__(self, settings: RaySettings) -> None:
        self.settings = settings
        self._remotes: dict[float, Any] = {}
        self._started_here = False
        self._board: Any = None

    def start(self) -> None:
        """Join or start Ray; the process's SIGINT/SIGTERM handlers survive it.

        ``ray.init`` replaces the SIGTERM handler with one that calls ``sys.exit`` from
        whatever the main thread is doing, and its core worker installs a C++ failure
        handler that prints a stack dump on SIGTERM.  Either would turn a clean stop of
        ``sweeps serve`` / ``sweeps worker`` into a crash that leaves its trials to wait
        for their leases, so the handlers in place before (uvicorn's, the worker's) are
        put back.
        """
        import ray

        if ray.is_initialized():
            return
        with _keep_signal_handlers():
            self._init_ray()

    def _init_ray(self) -> None:
        import ray

        runtime_env = {"env_vars": dict(THREAD_ENV)}
        if self.settings.address:
            ray.init(
                address=self.settings.address,
                namespace=self.settings.namespace,
                runtime_env=runtime_env,
                log_to_driver=False,
            )
        else:
            # A private local Ray: address="local" always starts a new one (a bare
            # ray.init() joins whatever cluster RAY_ADDRESS or /tmp/ray's record of an
            # earlier `ray start` points at).  No dashboard, never the default GCS port
            # 6379 (Redis may live there), no token auth for an in-process head.
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            ray.init(
                address="local",
                num_cpus=self.settings.num_cpus or os.cpu_count() or 1,
                namespace=self.settings.namespace,
                include_dashboard=False,
                runtime_env=runtime_env,
                log_to_driver=False,
                configure_logging=False,
            )
            self._started_here = True
        log.info("ray ready: %s", ray.cluster_resources())
        self._start_progress_board()

    def _start_progress_board(self) -> None:
        """The named progress actor workers report to (no CPU reserved for it)."""
        import ray

        try:
            board = ray.remote(num_cpus=0)(ProgressBoard)
            self._board = board.options(
                name=PROGRESS_ACTOR, lifetime="detached", get_if_exists=True
            ).remote()
        except Exception:  # noqa: BLE001 - progress is optional; trials still run
            log.warning("progress actor unavailable; running trials report no progress")
            self._board = None

    def shutdown(self) -> None:
        import ray

        if self._started_here and ray.is_initialized():
            ray.shutdown()
        self._board = None

    def describe(self) -> str:
        import ray

        if not ray.is_initialized():
            return "not started"
        return "local" if self._started_here else f"cluster {self.settings.address}"

    def health(self, timeout: float) -> tuple[bool, str]:
        """(answers, description): asks the cluster for its nodes, waiting ``timeout`` s.

        A hung GCS leaves one daemon thread waiting; the probe itself returns in time.
        """
        import ray

        if not ray.is_initialized():
            return False, "error: not started"
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ray-health")
        try:
            nodes = pool.submit(ray.nodes).result(timeout=timeout)
        except FutureTimeout:
            return False, f"error: {self.describe()} did not answer within {timeout:g} s"
        except Exception as exc:  # noqa: BLE001 - any failure means "not answering"
            return False, f"error: {self.describe()}: {type(exc).__name__}"
        finally:
            pool.shutdown(wait=False)
        alive = sum(1 for node in nodes if node.get("Alive"))
        if not alive:
            return False, f"error: {self.describe()} has no live node"
        return True, f"{self.describe()}: {alive} node{'s' if alive != 1 else ''} alive"

    def submit(
        self,
        workload: str,
        trials: Sequence[ClaimedTrial],
        theory_wanted: Mapping[int, str],
        gpus: float,
        *,
        theory_only: bool = False,
    ) -> Any:
        remote = self._remotes.get(gpus)
        if remote is None:
            remote = self._remotes[gpus] = make_remote(gpus)
        board = PROGRESS_ACTOR if self._board is not None else None
        return remote.remote(workload, list(trials), dict(theory_wanted), board, theory_only)

    def progress(self, trial_ids: list[int]) -> dict[int, dict[str, Any]]:
        """Latest reports of these trials (empty when the actor does not answer)."""
        import ray

        if self._board is None or not trial_ids:
            return {}
        try:
            return ray.get(self._board.snapshot.remote(trial_ids), timeout=2.0)
        except Exception:  # noqa: BLE001 - progress is best effort
            return {}

    def finished(self, trial_ids: list[int]) -> dict[int, dict[str, Any]]:
        """Outcomes of these trials that finished inside running batches (best effort)."""
        import ray

        if self._board is None or not trial_ids:
            return {}
        try:
            return ray.get(self._board.finished.remote(trial_ids), timeout=5.0)
        except Exception:  # noqa: BLE001 - then those trials run again
            log.warning("progress actor did not answer; finished trials of the batch rerun")
            return {}

    def forget(self, trial_ids: list[int]) -> None:
        if self._board is not None and trial_ids:
            self._board.forget.remote(trial_ids)

    def cluster_gpus(self) -> float | None:
        return connected_cluster_gpus()

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
    """Runs each batch at submit time in the calling thread (no Ray); progress goes to
    an in-process board."""

    def __init__(self) -> None:
        self.board = ProgressBoard()

    def start(self) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def submit(
        self,
        workload: str,
        trials: Sequence[ClaimedTrial],
        theory_wanted: Mapping[int, str],
        gpus: float,
        *,
        theory_only: bool = False,
    ) -> Future:
        future: Future = Future()
        try:
            output = execute_batch(
                workload, trials, theory_wanted, self.board.report, theory_only=theory_only
            )
            future.set_result(output)
        except Exception as exc:  # noqa: BLE001 - reported through the future
            future.set_exception(exc)
        return future

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        return [handle for handle in handles if handle.done()]

    def result(self, handle: Future) -> BatchOutput:
        return handle.result()

    def cancel(self, handle: Any) -> None:
        return None

    def progress(self, trial_ids: list[int]) -> dict[int, dict[str, Any]]:
        return self.board.snapshot(trial_ids)

    def finished(self, trial_ids: list[int]) -> dict[int, dict[str, Any]]:
        return self.board.finished(trial_ids)

    def forget(self, trial_ids: list[int]) -> None:
        self.board.forget(trial_ids)

    def cluster_gpus(self) -> float | None:
        return None

    def describe(self) -> str:
        return "inline"
