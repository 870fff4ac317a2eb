"""The training loop shared by the nonlinear workloads, with its guards.

One loop (:func:`train_loop`) drives pretraining and fine-tuning of every network here.
It never raises for numerical trouble: a non-finite loss stops it with
``stop_reason="diverged"``, a spent time budget with ``"time_limit"``; the trial then
becomes a *flagged result* (THEORY/DESIGN "NaN is a result, not a crash").  An
out-of-memory error anywhere in a trial is turned into a flagged record by
:func:`is_out_of_memory` in the trial driver.  Progress (phase, step, epoch, loss) goes
to a callback at most once per ``every_s`` seconds; the callback is the only way out of
the loop, so this module imports no Ray, database or HTTP code.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

ProgressFn = Callable[[dict[str, Any]], None]

STOP_STEPS = "steps"
STOP_THRESHOLD = "loss_threshold"
STOP_TIME = "time_limit"
STOP_DIVERGED = "diverged"
STOP_OOM = "oom"
# Stop reasons after which a network is complete enough to reuse or evaluate normally.
CLEAN_STOPS = frozenset({STOP_STEPS, STOP_THRESHOLD})


@dataclass(frozen=True)
class OptimConfig:
    """One phase's optimizer: ``batch_size=None`` means full-batch steps."""

    optimizer: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.05
    steps: int = 100
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int | None = None
    loss_threshold: float = 0.0


class Clock:
    """A trial's compute budget.  Started when compute starts (not while the trial
    waits for another trial's pretraining), shared by its PT and FT phases."""

    def __init__(self, limit_s: float | None) -> None:
        self.limit_s = limit_s
        self._start: float | None = None
        self.started_wall: float | None = None

    def start(self) -> None:
        if self._start is None:
            self._start = time.monotonic()
            self.started_wall = time.time()

    @property
    def elapsed(self) -> float:
        return 0.0 if self._start is None else time.monotonic() - self._start

    def expired(self) -> bool:
        return self.limit_s is not None and self._start is not None and self.elapsed > self.limit_s


class Reporter:
    """Throttled progress: at most one call per ``every_s`` unless forced."""

    def __init__(self, callback: ProgressFn | None, clock: Clock, every_s: float = 1.0) -> None:
        self.callback = callback
        self.clock = clock
        self.every_s = every_s
        self._last = -math.inf

    def __call__(self, phase: str, *, force: bool = False, **fields: Any) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        payload = {
            "phase": phase,
            **fields,
            "elapsed_s": round(self.clock.elapsed, 3),
            "started_at": self.clock.started_wall,
            "updated_at": time.time(),
        }
        try:
            self.callback(payload)
        except Exception:  # noqa: BLE001 - progress is best effort, never fatal
            self.callback = None


@dataclass
class LoopResult:
    steps_done: int
    final_loss: float | None
    stop_reason: str
    losses: list[tuple[int, float]] = field(default_factory=list)
    wall_s: float = 0.0


def make_optimizer(parameters: Iterable[torch.nn.Parameter], config: OptimConfig):  # noqa: ANN201
    params = list(parameters)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; use sgd, adam or adamw")


def autocast_for(device: str, amp: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when ``amp``; a no-op elsewhere (CPU runs stay float32)."""
    if amp and device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA (or host allocator) out-of-memory, whichever exception type torch used."""
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError | MemoryError) and "out of memory" in str(exc).lower()


def train_loop(
    parameters: Iterable[torch.nn.Parameter],
    loss_at: Callable[[int], torch.Tensor],
    config: OptimConfig,
    *,
    clock: Clock,
    report: Reporter,
    phase: str,
    device: str = "cpu",
    amp: bool = False,
    samples_per_step: int = 1,
    samples_per_epoch: int = 1,
    record_every: int = 0,
) -> LoopResult:
    """Minimize ``loss_at(step)`` for ``config.steps`` optimizer steps.

    Stops early (and says why) on a non-finite loss, on ``loss < loss_threshold``, or
    when ``clock`` runs out.  ``samples_per_step`` / ``samples_per_epoch`` only feed
    the reported epoch.  Returns the last finite loss seen.
    """
    optimizer = make_optimizer(parameters, config)
    started = time.perf_counter()
    losses: list[tuple[int, float]] = []
    last: float | None = None
    every = record_every or max(1, config.steps // 50)

    def finish(step: int, reason: str, loss: float | None) -> LoopResult:
        report(phase, force=True, step=step, steps=config.steps, loss=loss, stop=reason)
        return LoopResult(step, loss, reason, losses, time.perf_counter() - started)

    for step in range(config.steps):
        if clock.expired():
            return finish(step, STOP_TIME, last)
        optimizer.zero_grad(set_to_none=True)
        with autocast_for(device, amp):
            loss = loss_at(step)
        value = float(loss.detach().float())
        if not math.isfinite(value):
            return finish(step, STOP_DIVERGED, value)
        last = value
        if step % every == 0:
            losses.append((step, value))
        if value < config.loss_threshold:
            return finish(step, STOP_THRESHOLD, value)
        loss.backward()
        optimizer.step()
        epoch = (step + 1) * samples_per_step / max(1, samples_per_epoch)
        report(phase, step=step + 1, steps=config.steps, epoch=round(epoch, 3), loss=value)
    return finish(config.steps, STOP_STEPS, last)


def batches(
    n: int, batch_size: int | None, generator: torch.Generator
) -> Callable[[int], torch.Tensor | slice]:
    """Index of the minibatch for a step: the full set, or reshuffled epochs."""
    if batch_size is None or batch_size >= n:
        return lambda step: slice(None)
    per_epoch = n // batch_size
    order: dict[int, torch.Tensor] = {}

    def at(step: int) -> torch.Tensor:
        epoch, position = divmod(step, per_epoch)
        if epoch not in order:
            order.clear()
            order[epoch] = torch.randperm(n, generator=generator)
        return order[epoch][position * batch_size : (position + 1) * batch_size]

    return at


@contextlib.contextmanager
def evaluation(model: torch.nn.Module) -> Iterator[None]:
    """No grad and eval mode (BatchNorm running stats), restoring train mode after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)
