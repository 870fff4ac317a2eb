"""A request-body cap as pure ASGI middleware: 413 before the body is read when
``Content-Length`` says it is too large, and 413 as soon as a streamed (chunked) body
passes the cap while it is being read — the whole body is never buffered first.

The 413 is rendered in the API's one error shape, ``{"error": "ContentTooLarge",
"detail": …}``.  Inside a route the cap surfaces as a Starlette ``HTTPException`` (so
FastAPI's body reader re-raises it and the app's handler renders it); outside, this
middleware answers itself.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """The request body is larger than the configured cap (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"request body exceeds {limit} bytes (SWEEPS_LIMITS__MAX_BODY_BYTES)",
        )


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` (checked from the header and while read)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _reject(send, BodyTooLarge(self.max_bytes))
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await _reject(send, exc)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _reject(send: Send, exc: BodyTooLarge) -> None:
    body = json.dumps({"error": "ContentTooLarge", "detail": exc.detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
