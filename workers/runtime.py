"""Thin Ray adapters around the pure workload functions.

``execute_batch`` is the whole contract: frozen :class:`~workers.records.ClaimedTrial`
records in, a :class:`~workers.records.BatchOutput` of typed outcomes out; no database,
no HTTP.  ``make_remote`` wraps the same function as a Ray task.  Torch is pinned to one
thread per worker process: on small machines its OpenMP threads spin-wait and stall when
another process holds the other core (10–100× slowdowns), so we parallelize across Ray
workers instead.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from workers.envelope import envelope
from workers.records import BatchOutput, ClaimedTrial, TrialOutcome
from workers.workloads import WORKLOADS, ProgressFn

# Set before torch/numpy import in a fresh worker process.
THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


def pin_threads() -> None:
    for name, value in THREAD_ENV.items():
        os.environ.setdefault(name, value)
    try:
        import torch

        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass


PROGRESS_ACTOR = "sweeps-progress"


class ProgressBoard:
    """Latest progress report per running trial, and the outcomes of trials that finished
    inside a batch still running.  A plain class: the Ray runner runs it as a named actor
    that workers report to; the inline runner uses it directly.

    A report that carries an ``outcome`` (a ``done`` report of ``dln_finetune``) is kept
    apart: :meth:`snapshot` returns the progress fields only, :meth:`finished` the
    outcomes, which :func:`kept_outcome` turns back into a ``TrialOutcome``.
    """

    def __init__(self) -> None:
        self._reports: dict[int, dict[str, Any]] = {}
        self._finished: dict[int, dict[str, Any]] = {}

    def report(self, trial_id: int, payload: dict[str, Any]) -> None:
        if "outcome" in payload:
            payload = dict(payload)
            self._finished[trial_id] = {
                "outcome": payload.pop("outcome"),
                "envelope": payload.pop("envelope", None),
            }
        self._reports[trial_id] = payload

    def report_many(self, reports: Mapping[int, dict[str, Any]]) -> None:
        """Several reports in one call (what :class:`BufferedReporter` sends)."""
        for trial_id, payload in reports.items():
            self.report(trial_id, payload)

    def snapshot(self, trial_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        return {i: self._reports[i] for i in trial_ids if i in self._reports}

    def finished(self, trial_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """``{trial id: {"outcome", "envelope"}}`` of these trials that finished."""
        return {i: self._finished[i] for i in trial_ids if i in self._finished}

    def forget(self, trial_ids: Sequence[int]) -> None:
        for trial_id in trial_ids:
            self._reports.pop(trial_id, None)
            self._finished.pop(trial_id, None)


def _stamp_for(device: str | None, dtype: str | None) -> dict[str, Any]:
    """The reproducibility envelope of an outcome computed here on ``device``/``dtype``."""
    return envelope(device or "cpu", dtype or "")


def _stamped(outcome: TrialOutcome, stamp: Mapping[str, Any]) -> TrialOutcome:
    return dataclasses.replace(outcome, envelope=stamp, code_version=stamp["code_version"])


def kept_outcome(finished: Mapping[str, Any]) -> TrialOutcome:
    """The ``TrialOutcome`` of a trial that finished inside a batch that never returned
    (an entry of :meth:`ProgressBoard.finished`), stamped like ``execute_batch``'s own.
    Its ``wall_time_s`` is None: the batch's time, which it is a share of, is unknown."""
    stamp = finished.get("envelope") or _stamp_for(None, None)
    return _stamped(TrialOutcome.from_metrics(finished["outcome"]), stamp)


def _stamping(progress: ProgressFn) -> ProgressFn:
    """``progress`` with the envelope added to every report that carries an outcome."""

    def report(trial_id: int, payload: dict[str, Any]) -> None:
        outcome = payload.get("outcome")
        if isinstance(outcome, Mapping):
            stamp = _stamp_for(outcome.get("device"), outcome.get("dtype"))
            payload = {**payload, "envelope": stamp}
        progress(trial_id, payload)

    return report


def execute_batch(
    workload: str,
    trials: Sequence[ClaimedTrial],
    theory_wanted: Mapping[int, str],
    progress: ProgressFn | None = None,
    *,
    theory_only: bool = False,
) -> BatchOutput:
    """Evaluate one batch of trials of one workload; stamp each outcome's envelope.

    An exception here means the *batch* failed (the dispatcher splits and retries);
    per-trial numerical trouble (divergence, NaN, out of memory, time limit) comes back
    as a flagged outcome.  ``progress(trial_id, payload)`` first receives a ``started``
    report for every trial, then the reports of workloads that make them.
    ``theory_only`` computes just the replica values the batch is asked for (a replica
    value whose first batch failed, or one lost earlier).
    """
    pin_threads()
    started = time.perf_counter()
    spec = WORKLOADS[workload]
    if progress is not None and not theory_only:
        report_started(progress, trials)
    if theory_only:
        output = spec.theory_only(trials, theory_wanted)
    else:
        reports = _stamping(progress) if progress is not None and spec.accepts_progress else None
        output = spec.run(trials, theory_wanted, reports)
    output.outcomes = tuple(
        _stamped(outcome, _stamp_for(outcome.device, outcome.dtype)) for outcome in output.outcomes
    )
    output.wall_time_s = time.perf_counter() - started
    return output


def report_started(progress: ProgressFn, trials: Sequence[ClaimedTrial]) -> None:
    """Tell the board that a worker computes these trials now (phase ``started``), for
    every workload; those that report more (nets, ``dln_finetune``) refine it per trial."""
    now = time.time()
    for trial in trials:
        try:
            progress(trial.trial_id, {"phase": "started", "started_at": now, "updated_at": now})
        except Exception:  # noqa: BLE001 - progress is best effort, never fatal
            return


class BufferedReporter:
    """A ``ProgressFn`` that sends its reports in bundles: ``send({trial id: payload})``
    about every ``every_s`` seconds from a background thread, and on :meth:`close`.

    One actor call per report made a batch of short trials spend a noticeable share of
    its time reporting (a ``started`` and a ``done`` per trial, the latter with the
    trial's outcome); bundled, a batch makes a few calls a second, and a report made
    before a long silent stretch (a large dataset being drawn) still goes out within
    ``every_s``.  Only the latest report of a trial is sent, except that an ``outcome``
    it carried is kept until sent.  The dispatcher reads the board about once a second.
    """

    def __init__(
        self, send: Callable[[dict[int, dict[str, Any]]], None], every_s: float = 0.25
    ) -> None:
        self.send, self.every_s = send, every_s
        self._pending: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, trial_id: int, payload: dict[str, Any]) -> None:
        with self._lock:
            previous = self._pending.get(trial_id)
            if previous is not None and "outcome" in previous and "outcome" not in payload:
                payload = {**payload, "outcome": previous["outcome"]}
                if "envelope" in previous:
                    payload["envelope"] = previous["envelope"]
            self._pending[trial_id] = payload
        if self._thread is None and not self._closed.is_set():
            self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._closed.wait(self.every_s):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if pending:
            try:
                self.send(pending)
            except Exception:  # noqa: BLE001 - progress is best effort, never fatal
                pass

    def close(self) -> None:
        """Send what is left and stop the background thread."""
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self.flush()


def ray_progress_reporter(actor_name: str) -> BufferedReporter | None:
    """Fire-and-forget bundled reports to the named progress actor (None if it is not
    there)."""
    import ray

    try:
        board = ray.get_actor(actor_name)
    except ValueError:
        return None
    return BufferedReporter(lambda reports: board.report_many.remote(reports))


def execute_batch_on_ray(
    workload: str,
    trials: Sequence[ClaimedTrial],
    theory_wanted: Mapping[int, str],
    progress_actor: str | None = None,
    theory_only: bool = False,
) -> BatchOutput:
    """``execute_batch`` inside a Ray worker, reporting progress to ``progress_actor``."""
    progress = None
    if progress_actor and not theory_only:
        progress = ray_progress_reporter(progress_actor)
    try:
        return execute_batch(workload, trials, theory_wanted, progress, theory_only=theory_only)
    finally:
        if progress is not None:
            progress.close()


def make_remote(num_gpus: float = 0.0):  # noqa: ANN201 - returns a Ray remote function
    """The Ray task for ``execute_batch``, asking for ``num_gpus`` when on CUDA."""
    import ray

    return ray.remote(num_cpus=1, num_gpus=num_gpus, max_retries=0)(execute_batch_on_ray)
