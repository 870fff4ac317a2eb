"""Content-addressed pretraining checkpoints, shared by every trial that needs them.

Trials that differ only in fine-tuning knobs have the same pretraining config; its
canonical hash names one file ``<root>/<key[:2]>/<key>.pt``.  The first trial to need
it pretrains under an exclusive ``fcntl`` lock on ``<key>.lock`` and writes the file
atomically (temp file + ``os.replace``); trials that arrive meanwhile block on the
lock and then load the file, so concurrent workers on one host (or on hosts sharing
the directory over a filesystem with POSIX locks) pretrain once.  A pretraining that
stopped early (time limit, divergence) is returned to its trial but never stored.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

Payload = dict[str, Any]


class CheckpointStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pt"

    def load(self, key: str) -> Payload | None:
        path = self.path(key)
        if not path.is_file():
            return None
        return torch.load(path, map_location="cpu", weights_only=True)

    def save(self, key: str, payload: Payload) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:8]}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                torch.save(payload, stream)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_or_create(
        self,
        key: str,
        build: Callable[[], tuple[Payload, bool]],
        *,
        on_wait: Callable[[], None] | None = None,
    ) -> tuple[Payload, bool]:
        """(payload, built_here).  ``build`` returns (payload, complete); only complete
        payloads are stored.  ``on_wait`` is called once if another process holds the
        lock (so a trial can report that it is waiting rather than computing)."""
        found = self.load(key)
        if found is not None:
            return found, False
        lock_path = self.path(key).with_suffix(".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                found = self.load(key)
                if found is not None:
                    return found, False
                payload, complete = build()
                if complete:
                    self.save(key, payload)
                return payload, True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def get_or_build(
    store: CheckpointStore | None,
    key: str,
    build: Callable[[], tuple[Payload, bool]],
    *,
    on_wait: Callable[[], None] | None = None,
) -> tuple[Payload, bool]:
    """``store.get_or_create`` or, without a store, build every time."""
    if store is None:
        payload, _ = build()
        return payload, True
    return store.get_or_create(key, build, on_wait=on_wait)
