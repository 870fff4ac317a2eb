"""``AsyncClient``: the same methods as ``Client``, awaitable (httpx.AsyncClient).

    async with AsyncClient() as client:
        sweep = await client.submit(spec, wait=True)
        frame = (await client.results(sweep_id=sweep.id)).to_pandas()

Each endpoint is the same ``finetune_sweeps.calls.Call`` as in the sync client; only the
sending, the sleeping and the page loops are written again here.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
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


class AsyncClient:
    """The asynchronous client; arguments and contracts as for ``Client``."""

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        submitter: str | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = resolve_url(url)
        self.retry = retry or RetryPolicy()
        headers = default_headers(resolve_api_key(api_key), resolve_submitter(submitter))
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _response(self, call: calls.Call[Any], *, stream: bool = False) -> httpx.Response:
        attempt = 0
        while True:
            request = self._http.build_request(
                call.method, call.path, params=call.params, json=call.body, headers=call.headers
            )
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if not self.retry.should_retry_error(attempt):
                    raise unreachable(self.url, exc) from exc
                await asyncio.sleep(self.retry.delay(attempt))
                attempt += 1
                continue
            if response.status_code < 400:
                return response
            await response.aread()
            await response.aclose()
            if not self.retry.should_retry_status(attempt, response.status_code):
                raise error_for(response)
            await asyncio.sleep(self.retry.delay(attempt, response))
            attempt += 1

    async def _send(self, call: calls.Call[T]) -> T:
        return call.decode(await self._response(call))

    async def health(self) -> Health:
        return await self._send(calls.health())

    async def submit(
        self,
        spec: SpecLike,
        *,
        idempotency_key: str | None = None,
        wait: bool = False,
        progress: ProgressArg = None,
        timeout: float | None = None,
        poll_s: float = 0.5,
    ) -> SweepRead:
        key = idempotency_key or uuid.uuid4().hex
        sweep = await self._send(calls.submit(spec_body(spec), key))
        if wait:
            return await self.wait(sweep.id, progress=progress, timeout=timeout, poll_s=poll_s)
        return sweep

    async def plan(self, spec: SpecLike) -> SweepPlan:
        return await self._send(calls.plan(spec_body(spec)))

    async def sweep(self, sweep_id: str) -> SweepRead:
        return await self._send(calls.sweep(sweep_id))

    async def sweeps(self, *, limit: int = 50, offset: int = 0, **filters: Any) -> SweepPage:
        return await self._send(calls.sweeps(limit, offset, **filters))

    async def cancel(self, sweep_id: str) -> SweepRead:
        return await self._send(calls.cancel(sweep_id))

    async def wait(
        self,
        sweep_id: str,
        *,
        progress: ProgressArg = None,
        timeout: float | None = None,
        poll_s: float = 0.5,
    ) -> SweepRead:
        report = progress_callback(progress)
        deadline = Deadline(sweep_id, timeout)
        while True:
            sweep = await self.sweep(sweep_id)
            if report is not None:
                report(sweep)
            if sweep.status in FINAL_STATUSES:
                return sweep
            deadline.check()
            await asyncio.sleep(poll_s)

    async def follow(
        self, sweep_id: str, *, after: int = 0, timeout: float | None = None
    ) -> AsyncIterator[SweepEvent]:
        """``Client.follow``: the sweep's events after ``after``, live, until ``done``."""
        deadline, resume = Deadline(sweep_id, timeout), Resume(self.retry, after)
        while True:
            try:
                response = await self._response(calls.events(sweep_id, resume.after), stream=True)
                parser = SseParser()
                try:
                    async for line in response.aiter_lines():
                        item = parser.feed(line)
                        deadline.check()
                        if isinstance(item, SweepEvent):
                            resume.seen(item)
                            yield item
                            if item.final:
                                return
                finally:
                    await response.aclose()
                if (await self.sweep(sweep_id)).status in FINAL_STATUSES:
                    return
                error: Exception = ConnectionFailed(f"the event stream of {sweep_id} ended early")
            except httpx.TransportError as exc:
                error = unreachable(self.url, exc)
            await asyncio.sleep(resume.backoff(error))

    async def watch(
        self,
        sweep_id: str,
        *,
        progress: ProgressArg = None,
        timeout: float | None = None,
        poll_s: float = 0.5,
    ) -> SweepRead:
        """``Client.watch``: ``wait`` driven by the event stream (polling as a fallback)."""
        report = progress_callback(progress)
        sweep = await self.sweep(sweep_id)
        if sweep.status in FINAL_STATUSES:
            if report is not None:
                report(sweep)
            return sweep
        deadline = Deadline(sweep_id, timeout)
        try:
            async for event in self.follow(sweep_id, timeout=timeout):
                sweep = apply_event(sweep, event)
                # The final state is reported once, from the GET below.
                if report is not None and sweep.status not in FINAL_STATUSES:
                    report(sweep)
        except NotFound:
            left = deadline.left()
            return await self.wait(sweep_id, progress=report, timeout=left, poll_s=poll_s)
        final = await self.sweep(sweep_id)
        if report is not None:
            report(final)
        return final

    async def trials(self, sweep_id: str, *, status: str | None = None) -> list[TrialRead]:
        items: list[TrialRead] = []
        cursor: str | None = None
        while True:
            page = await self._send(calls.trials(sweep_id, 1000, cursor, status))
            items += page.items
            if not page.next_cursor:
                return items
            cursor = page.next_cursor

    async def result_page(
        self, *, limit: int = 100, cursor: str | None = None, **filters: Any
    ) -> ResultPage:
        return await self._send(calls.result_page(filters, limit, cursor))

    async def iter_results(
        self, *, page_size: int = 500, **filters: Any
    ) -> AsyncIterator[ResultRead]:
        cursor: str | None = None
        while True:
            page = await self.result_page(limit=page_size, cursor=cursor, **filters)
            for item in page.items:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def results(self, *, page_size: int = 500, **filters: Any) -> ResultSet:
        items = [item async for item in self.iter_results(page_size=page_size, **filters)]
        return ResultSet(tuple(items))

    async def summary(self, group_by: str | Sequence[str], **filters: Any) -> Summary:
        return await self._send(calls.summary(group_by, filters))

    async def export(self, path: str | Path, *, format: str = "csv", **filters: Any) -> Path:
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        response = await self._response(calls.export(filters, format), stream=True)
        try:
            with partial.open("wb") as handle:
                async for chunk in response.aiter_bytes():
                    handle.write(chunk)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            await response.aclose()
        partial.replace(target)
        return target

    async def figure(
        self,
        sweep_id: str,
        kind: str,
        *,
        format: str = "png",
        path: str | Path | None = None,
        **options: Any,
    ) -> bytes:
        content = await self._send(calls.figure(sweep_id, kind, format, options))
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(content)
        return content

    async def report(
        self,
        sweep_id: str,
        *,
        floor: float = 1e-2,
        worst: int = 10,
        classifier: str = "regimes-v2",
    ) -> AgreementReport:
        return await self._send(calls.report(sweep_id, floor, worst, classifier))
