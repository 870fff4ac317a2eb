"""Retries against a server that drops the first connection, or answers it with a 503.

Between the client and the live server sits a tiny TCP proxy: its first ``faults``
connections are closed right after the request arrives (or answered with a raw 503);
every later connection is forwarded byte for byte to the real server.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

import pytest

from finetune_sweeps import Client, ConnectionFailed, RetryPolicy, ServerUnavailable
from tests.service.factories import small_finetune_spec

FAST = RetryPolicy(attempts=4, backoff_s=0.01, max_backoff_s=0.05)
_BODY = b'{"error":"DatabaseUnavailable","detail":"the database is unavailable"}'
UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_BODY), _BODY)
)


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@contextmanager
def faulty_proxy(upstream: str, faults: int, mode: str) -> Iterator[tuple[str, list[str]]]:
    """Yields the proxy's URL and a log of what it did with each connection."""
    host = urlparse(upstream)
    listener = socket.create_server(("127.0.0.1", 0))
    log: list[str] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            if len(log) < faults:
                conn.recv(65536)  # the request arrived; now fail it
                if mode == "503":
                    conn.sendall(UNAVAILABLE)
                conn.close()
                log.append(mode)
                continue
            log.append("forward")
            upstream_sock = socket.create_connection((host.hostname, host.port))
            threading.Thread(target=_pump, args=(conn, upstream_sock), daemon=True).start()
            threading.Thread(target=_pump, args=(upstream_sock, conn), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", log
    finally:
        listener.close()


def test_a_dropped_first_connection_is_retried(live_url) -> None:
    with (
        faulty_proxy(live_url, faults=1, mode="drop") as (url, log),
        Client(url, retry=FAST) as client,
    ):
        sweep = client.submit(small_finetune_spec(name="retry"), idempotency_key="once")
        assert log[0] == "drop" and "forward" in log
    with Client(live_url) as direct:
        # The request that was dropped never reached the server: one sweep, not two.
        assert [s.id for s in direct.sweeps().items] == [sweep.id]


def test_a_503_is_retried_and_the_submit_stays_single(live_url) -> None:
    with (
        faulty_proxy(live_url, faults=2, mode="503") as (url, log),
        Client(url, retry=FAST) as client,
    ):
        sweep = client.submit(small_finetune_spec(name="retry503"))
        assert log[:2] == ["503", "503"] and client.sweep(sweep.id).id == sweep.id
    with Client(live_url) as direct:
        assert direct.sweeps().total == 1


def test_retries_give_up_with_a_typed_error(live_url) -> None:
    with (
        faulty_proxy(live_url, faults=10, mode="503") as (url, log),
        Client(url, retry=FAST) as client,
    ):
        with pytest.raises(ServerUnavailable) as unavailable:
            client.sweeps()
        assert unavailable.value.status_code == 503 and len(log) == FAST.attempts
        assert unavailable.value.error == "DatabaseUnavailable"
    with Client("http://127.0.0.1:9", retry=FAST) as client:
        with pytest.raises(ConnectionFailed, match="cannot reach"):
            client.health()
