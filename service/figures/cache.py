"""A small in-process cache of rendered figures and reports, keyed by the sweep's latest
event sequence number.

A figure or report of a sweep changes only when its results change, and every result
change writes an event (``service/store/events.py``), so ``(sweep, latest seq, request)``
names one rendering exactly: a cached entry is never stale, and the next result that
lands changes the key.  On 100,000 results one rendering takes seconds (loading every
record, per-config statistics, drawing); a page that reloads, or several users looking
at one sweep, then pay it once per replica.  Sweeps without events (from before them)
are never cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")
MAX_ENTRIES = 64


class RenderCache:
    """A thread-safe LRU of at most ``size`` renderings."""

    def __init__(self, size: int = MAX_ENTRIES) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get_or_render(self, key: Hashable | None, render: Callable[[], T]) -> T:
        """The cached value of ``key``, else ``render()`` (stored); ``key=None``: no cache."""
        if key is None:
            return render()
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key]  # type: ignore[return-value]
            self.misses += 1
        value = render()
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


RENDERINGS = RenderCache()
