"""Retries against a server that drops the first connection, or answers it with a 503.

Between the client and the live server sits a tiny TCP proxy.  Its first ``faults``
connections fail in one of three ways: ``drop`` closes the connection once the request
has arrived; ``503`` answers with a raw 503; ``lose-answer`` forwards the request to the
real server, reads the server's answer and closes without passing it on (the request
took effect, the client cannot know).  Every later connection is forwarded byte for byte.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

import pytest

from finetune_sweeps import AsyncClient, Client, ConnectionFailed, RetryPolicy, ServerUnavailable
from tests.service.factories import small_finetune_spec

FAST = RetryPolicy(attempts=4, backoff_s=0.01, max_backoff_s=0.05)
TIMEOUT_S = 10.0  # a proxy bug must fail the test fast, not after 4 × 60 s
_BODY = b'{"error":"DatabaseUnavailable","detail":"the database is unavailable"}'
UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_BODY), _BODY)
)


def read_message(sock: socket.socket) -> bytes:
    """One HTTP/1.1 message with a Content-Length body (all this test's requests are)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


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
                request = read_message(conn)  # the request arrived; now fail it
                # Logged before answering: the client may act on the answer (and the test
                # read the log) before this thread runs again.
                log.append(mode)
                if mode == "503":
                    conn.sendall(UNAVAILABLE)
                elif mode == "lose-answer":
                    with socket.create_connection((host.hostname, host.port)) as upstream_sock:
                        upstream_sock.sendall(request)
                        read_message(upstream_sock)
                conn.close()
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
        Client(url, retry=FAST, timeout=TIMEOUT_S) as client,
    ):
        sweep = client.submit(small_finetune_spec(name="retry"), idempotency_key="once")
        assert log[0] == "drop" and "forward" in log
    with Client(live_url) as direct:
        # The request that was dropped never reached the server: one sweep, not two.
        assert [s.id for s in direct.sweeps().items] == [sweep.id]


def test_a_503_is_retried_and_the_submit_stays_single(live_url) -> None:
    with (
        faulty_proxy(live_url, faults=2, mode="503") as (url, log),
        Client(url, retry=FAST, timeout=TIMEOUT_S) as client,
    ):
        sweep = client.submit(small_finetune_spec(name="retry503"))
        assert log[:2] == ["503", "503"] and client.sweep(sweep.id).id == sweep.id
    with Client(live_url) as direct:
        assert direct.sweeps().total == 1


def test_retries_give_up_with_a_typed_error(live_url) -> None:
    with (
        faulty_proxy(live_url, faults=10, mode="503") as (url, log),
        Client(url, retry=FAST, timeout=TIMEOUT_S) as client,
    ):
        with pytest.raises(ServerUnavailable) as unavailable:
            client.sweeps()
        assert unavailable.value.status_code == 503 and len(log) == FAST.attempts
        assert unavailable.value.error == "DatabaseUnavailable"
    with Client("http://127.0.0.1:9", retry=FAST) as client:
        with pytest.raises(ConnectionFailed, match="cannot reach"):
            client.health()


def test_a_submit_whose_answer_was_lost_is_replayed_not_repeated(live_url) -> None:
    """The server created the sweep but the answer never came back: the retry carries the
    same generated Idempotency-Key, so the server hands back that sweep instead of a
    second one."""
    with (
        faulty_proxy(live_url, faults=1, mode="lose-answer") as (url, log),
        Client(url, retry=FAST, timeout=TIMEOUT_S) as client,
    ):
        sweep = client.submit(small_finetune_spec(name="lost"))
        assert log == ["lose-answer", "forward"]
    with Client(live_url) as direct:
        page = direct.sweeps()
        assert page.total == 1 and page.items[0].id == sweep.id


def test_the_async_client_retries_too(live_url) -> None:
    async def scenario() -> str:
        async with AsyncClient(url, retry=FAST, timeout=TIMEOUT_S) as client:
            return (await client.submit(small_finetune_spec(name="async-retry"))).id

    with faulty_proxy(live_url, faults=1, mode="drop") as (url, log):
        sweep_id = asyncio.run(scenario())
        assert log[0] == "drop"
    with Client(live_url) as direct:
        assert [s.id for s in direct.sweeps().items] == [sweep_id]
