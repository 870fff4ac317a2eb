"""A streamed download that fails loudly: everything that can fail before the first byte
does (query, sweep, the first database chunk; a Parquet file is written whole), and a
failure after it ends the body with a trailer line and an aborted transfer — never a
short file that looks complete.

The trailer is one last line, ``#export-error: <Type>: <message>; the file is
incomplete``; after it the server closes the connection without the final chunk, so an
HTTP client reports an incomplete transfer (httpx: ``RemoteProtocolError``) and a CSV
reader that gets that far sees a row that is not data.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from typing import TypeVar

log = logging.getLogger("sweeps.export")
T = TypeVar("T")
TRAILER_PREFIX = "#export-error: "


class ExportAborted(RuntimeError):
    """Raised after the trailer so the server aborts the transfer instead of ending it."""


def prefetched(chunks: Iterable[T]) -> Iterator[T]:
    """``chunks`` with its first item already computed (a failure there raises now,
    while an error response can still be sent)."""
    iterator = iter(chunks)
    try:
        first = next(iterator)
    except StopIteration:
        return iter(())
    return itertools.chain([first], iterator)


def guarded(body: Iterable[bytes], what: str = "export") -> Iterator[bytes]:
    """Yield ``body``; on an error, yield the trailer line, then raise ``ExportAborted``."""
    try:
        yield from body
    except Exception as exc:  # noqa: BLE001 - any failure must end the stream visibly
        log.error("%s failed mid-stream", what, exc_info=exc)
        message = str(exc).replace("\n", " ")[:200]
        trailer = f"\n{TRAILER_PREFIX}{type(exc).__name__}: {message}; the file is incomplete\n"
        yield trailer.encode()
        raise ExportAborted(f"{what} aborted after its first bytes") from exc
