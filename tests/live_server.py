"""A real server on a free port for tests that speak real HTTP (the client, the CLI).

``serve_in_thread`` runs uvicorn with the real app (its lifespan, dispatcher and error
handlers) in a daemon thread; ``live_app_url`` builds that app on a SQLite file with
the in-process runner, so batches run without Ray's start-up seconds.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from service.app import create_app
from service.runners import InlineRunner
from service.settings import DispatchSettings, Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1:<free port> until the ``with`` ends; yields the URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def live_app_url(database_url: str, **settings: object) -> Iterator[str]:
    """The real app with its dispatcher on ``database_url``, batches run in-process."""
    config = Settings(
        database_url=database_url, dispatch=DispatchSettings(poll_seconds=0.05), **settings
    )
    app = create_app(config, runner=InlineRunner(), start_dispatcher=True)
    with serve_in_thread(app) as url:
        yield url
