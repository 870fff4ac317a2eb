"""``Client``: the synchronous Python client of the sweeps HTTP API.

    from finetune_sweeps import Client

    with Client() as client:                          # SWEEPS_URL, default 127.0.0.1:8000
        sweep = client.submit("examples/quickstart.yaml", wait=True, progress=True)
        frame = client.results(sweep_id=sweep.id, regime_theory="IV").to_pandas()

Every method returns an ``api_schemas`` model (or a ``ResultSet`` / bytes / a path);
every failure is a ``finetune_sweeps.errors.SweepsError``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from api_schemas.report import AgreementReport
from api_schemas.wire import (
    Health,
    ResultPage,
    ResultRead,
    Summary,
    SweepPage,
    SweepPlan,
    SweepRead,
    TrialRead,
)
from finetune_sweeps import calls
from finetune_sweeps.config import resolve_api_key, resolve_submitter, resolve_url
from finetune_sweeps.errors import ConnectionFailed, NotFound
from finetune_sweeps.events import Deadline, Resume, SseParser, SweepEvent, apply_event
from finetune_sweeps.progress import FINAL_STATUSES, ProgressArg, progress_callback
from finetune_sweeps.results import ResultSet
from finetune_sweeps.specs import SpecLike, spec_body
from finetune_sweeps.transport import RetryPolicy, default_headers, error_for, unreachable

T = TypeVar("T")


class Client:
    """A connection to one sweeps server.

    ``url``: the argument, ``SWEEPS_URL``, the config file, else http://127.0.0.1:8000.
    ``api_key``: the argument, ``SWEEPS_API_KEY`` or the config file (``sweeps login``);
    sent as ``Authorization: Bearer``.  ``submitter``: the argument or ``SWEEPS_SUBMITTER``.
    Connection errors and 502/503/504 are retried per ``retry``.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        submitter: str | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = resolve_url(url)
        self.retry = retry or RetryPolicy()
        headers = default_headers(resolve_api_key(api_key), resolve_submitter(submitter))
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- sending ---------------------------------------------------------------------
    def _response(self, call: calls.Call[Any], *, stream: bool = False) -> httpx.Response:
        """Send ``call`` with retries; a successful response (unread if ``stream``)."""
        attempt = 0
        while True:
            request = self._http.build_request(
                call.method, call.path, params=call.params, json=call.body, headers=call.headers
            )
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if not self.retry.should_retry_error(attempt):
                    raise unreachable(self.url, exc) from exc
                time.sleep(self.retry.delay(attempt))
                attempt += 1
                continue
            if response.status_code < 400:
                return response
            response.read()
            response.close()
            if not self.retry.should_retry_status(attempt, response.status_code):
                raise error_for(response)
            time.sleep(self.retry.delay(attempt, response))
            attempt += 1

    def _send(self, call: calls.Call[T]) -> T:
        return call.decode(self._response(call))

    # -- sweeps ----------------------------------------------------------------------
    def health(self) -> Health:
        """``GET /healthz``: database, Ray and dispatcher state."""
        return self._send(calls.health())

    def submit(
        self,
        spec: SpecLike,
        *,
        idempotency_key: str | None = None,
        wait: bool = False,
        progress: ProgressArg = None,
        timeout: float | None = None,
        poll_s: float = 0.5,
    ) -> SweepRead:
        """Submit a spec (a ``SweepSpec``, a mapping or a YAML/JSON path).

        An Idempotency-Key is always sent (a fresh one when none is given), so the
        retries cannot create two sweeps.  With ``wait`` it returns the sweep in its final
        state (``wait``'s contract); ``progress`` is called with each poll.
        """
        key = idempotency_key or uuid.uuid4().hex
        sweep = self._send(calls.submit(spec_body(spec), key))
        if wait:
            return self.wait(sweep.id, progress=progress, timeout=timeout, poll_s=poll_s)
        return sweep

    def plan(self, spec: SpecLike) -> SweepPlan:
        """Dry run: trial count, cache hits, batches, estimated cost; writes nothing."""
        return self._send(calls.plan(spec_body(spec)))

    def sweep(self, sweep_id: str) -> SweepRead:
        """One sweep with its status, counts, progress, throughput and ETA."""
        return self._send(calls.sweep(sweep_id))

    def sweeps(self, *, limit: int = 50, offset: int = 0, **filters: Any) -> SweepPage:
        """Sweeps newest first; filters ``status``, ``name``, ``tag``, ``submitter``."""
        return self._send(calls.sweeps(limit, offset, **filters))

    def cancel(self, sweep_id: str) -> SweepRead:
        """Cancel the sweep's pending trials and the batches no other live sweep needs."""
        return self._send(calls.cancel(sweep_id))

    def wait(
        self,
        sweep_id: str,
        *,
        progress: ProgressArg = None,
        timeout: float | None = None,
        poll_s: float = 0.5,
    ) -> SweepRead:
        """Poll until the sweep is succeeded, failed, cancelled or partial; return it.

        Raises ``WaitTimeout`` after ``timeout`` seconds (``None``: no limit).
        """
        report = progress_callback(progress)
        deadline = Deadline(sweep_id, timeout)
        while True:
            sweep = self.sweep(sweep_id)
            if report is not None:
                report(sweep)
            if sweep.status in FINAL_STATUSES:
                return sweep
            deadline.check()
            time.sleep(poll_s)

    def follow(
        self, sweep_id: str, *, after: int = 0, timeout: float | None = None
    ) -> Iterator[SweepEvent]:
        """The sweep's events after event ``after``, live, until its ``done`` event.

        Pushed by the server (``GET /v1/sweeps/{id}/events``), nothing polled.  A dropped
        connection is resumed with ``Last-Event-ID`` under ``retry`` (the attempts count
        again from zero after every event received): no event is missed or repeated.
        Ends at once for a sweep that finished before events existed.  Raises
        ``WaitTimeout`` after ``timeout`` seconds (heartbeats keep the check running on
        an idle stream).
        """
        deadline, resume = Deadline(sweep_id, timeout), Resume(self.retry, after)
        while True:
            try:
                response = self._response(calls.events(sweep_id, resume.after), stream=True)
                parser = SseParser()
                try:
                    for line in response.iter_lines():
                        item = parser.feed(line)
                        deadline.check()
                        if isinstance(item, SweepEvent):
                            resume.seen(item)
                            yield item
                            if item.final:
                                return
                finally:
                    response.close()
                # The server ends a stream without "done" only for a sweep that finished
                # before events existed, or when it shuts down: tell the two apart.
                if self.sweep(sweep_id).status in FINAL_STATUSES:
                    return
                error: Exception = ConnectionFailed(f"the event stream of {sweep_id} ended early")
            except httpx.TransportError as exc:
                error = unreachable(self.url, exc)
            time.sleep(resume.backoff(error))

    def watch(
        self,
        sweep_id: str,
        *,
        progress: ProgressArg = None,
        timeout: float | None = None,
        poll_s: float = 0.5,
    ) -> SweepRead:
        """Like ``wait``, but driven by the sweep's event stream: ``progress`` is called
        with the sweep as of each event (counts, throughput, ETA), and the final state is
        read once at the end.  Falls back to polling every ``poll_s`` seconds against a
        server that has no event stream."""
        report = progress_callback(progress)
        sweep = self.sweep(sweep_id)
        if sweep.status in FINAL_STATUSES:
            if report is not None:
                report(sweep)
            return sweep
        deadline = Deadline(sweep_id, timeout)
        try:
            for event in self.follow(sweep_id, timeout=timeout):
                sweep = apply_event(sweep, event)
                # The final state is reported once, from the GET below.
                if report is not None and sweep.status not in FINAL_STATUSES:
                    report(sweep)
        except NotFound:  # an older server: the sweep exists but its stream does not
            left = deadline.left()
            return self.wait(sweep_id, progress=report, timeout=left, poll_s=poll_s)
        final = self.sweep(sweep_id)
        if report is not None:
            report(final)
        return final

    def trials(self, sweep_id: str, *, status: str | None = None) -> list[TrialRead]:
        """Every trial of the sweep (all pages), with status, attempts and error."""
        items: list[TrialRead] = []
        cursor: str | None = None
        while True:
            page = self._send(calls.trials(sweep_id, 1000, cursor, status))
            items += page.items
            if not page.next_cursor:
                return items
            cursor = page.next_cursor

    # -- results ---------------------------------------------------------------------
    def result_page(
        self, *, limit: int = 100, cursor: str | None = None, **filters: Any
    ) -> ResultPage:
        """One page of ``GET /v1/results`` (filters as in the README's filter syntax)."""
        return self._send(calls.result_page(filters, limit, cursor))

    def iter_results(self, *, page_size: int = 500, **filters: Any) -> Iterator[ResultRead]:
        """Every matching result, page after page (keyset cursor), lazily."""
        cursor: str | None = None
        while True:
            page = self.result_page(limit=page_size, cursor=cursor, **filters)
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def results(self, *, page_size: int = 500, **filters: Any) -> ResultSet:
        """Every matching result (all pages): ``regime_theory="IV"``, ``sweep_id=…``,
        ``lambda_pt_lt=-0.5``, ``status="any"``, ``sort="-gen_error_sim"``…"""
        return ResultSet(tuple(self.iter_results(page_size=page_size, **filters)))

    def summary(self, group_by: str | Sequence[str], **filters: Any) -> Summary:
        """Grouped mean ± SEM over seeds beside the theory (``group_by="lambda_pt,alpha"``)."""
        return self._send(calls.summary(group_by, filters))

    def export(self, path: str | Path, *, format: str = "csv", **filters: Any) -> Path:
        """Stream every matching result into ``path`` as CSV or Parquet; returns the path.
        The file appears only once complete (written beside it, then renamed)."""
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        response = self._response(calls.export(filters, format), stream=True)
        try:
            with partial.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            response.close()
        partial.replace(target)
        return target

    def figure(
        self,
        sweep_id: str,
        kind: str,
        *,
        format: str = "png",
        path: str | Path | None = None,
        **options: Any,
    ) -> bytes:
        """A server-rendered figure (``kind`` in gen_error, regimes, l_order, pd, phase,
        scatter; options ``theory_sweep``, ``x``, ``y``, ``yscale``, ``source``, ``floor``).
        Returns the PNG/SVG bytes and also writes them to ``path`` when given."""
        content = self._send(calls.figure(sweep_id, kind, format, options))
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(content)
        return content

    def report(
        self,
        sweep_id: str,
        *,
        floor: float = 1e-2,
        worst: int = 10,
        classifier: str = "regimes-v2",
    ) -> AgreementReport:
        """Theory vs simulation per config: mean ± SEM, z-score, 95% coverage, regimes
        (labels from regime ``classifier``: regimes-v2 or regimes-v1)."""
        return self._send(calls.report(sweep_id, floor, worst, classifier))
