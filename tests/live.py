"""A real HTTP server around the real app, for tests that stream (SSE) or drive a
browser: uvicorn on an ephemeral port in a thread, the app's lifespan included."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1:<free port>; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def read_sse(
    base: str,
    sweep_id: str,
    *,
    last_event_id: int | None = None,
    stop_after: int | None = None,
    timeout: float = 120,
    comments: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Messages of ``/v1/sweeps/{id}/events`` (``{"id", "event", "data"}``) until the stream
    ends, or until ``stop_after`` messages (then the connection is dropped).

    Written apart from the client's ``finetune_sweeps.events.SseParser`` on purpose: the
    server's wire format is checked by a reader that shares no code with the client."""
    headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
    messages: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    url = f"{base}/v1/sweeps/{sweep_id}/events"
    with httpx.stream("GET", url, headers=headers, timeout=timeout) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith(":"):
                if comments is not None:
                    comments.append(line)
                continue
            if not line:
                if "data" in current:
                    messages.append(current)
                    if stop_after is not None and len(messages) >= stop_after:
                        return messages
                current = {}
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                current["id"] = int(value)
            elif name == "event":
                current["event"] = value
            elif name == "data":
                current["data"] = json.loads(value)
    return messages
