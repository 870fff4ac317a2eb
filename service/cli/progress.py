"""The live progress of a sweep for ``submit --wait`` and ``watch``.

On a terminal: one Rich progress bar (done/total, counts, throughput from the server,
its ETA, the elapsed time), redrawn in place and left as exactly one line when the
sweep ends.  Elsewhere (a log file, CI): ``finetune_sweeps.PlainProgress``, a plain line
every ``every_s`` seconds at most and always the final one.
"""

from __future__ import annotations

import sys
from types import TracebackType

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from api_schemas.wire import SweepRead
from finetune_sweeps import PlainProgress
from finetune_sweeps.progress import FINAL_STATUSES, counts_text, format_duration
from service.cli.app import stderr_console


class SweepProgress:
    """A context manager whose instances are ``progress=`` callbacks of the client."""

    def __init__(self, label: str, every_s: float = 10.0) -> None:
        self.label = label
        self.live = sys.stderr.isatty()
        self.plain = None if self.live else PlainProgress(sys.stderr, every_s=every_s)
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> SweepProgress:
        if self.live:
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>5.1f}%"),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                TextColumn("{task.fields[rate]}"),
                TextColumn("{task.fields[eta]}"),
                TimeElapsedColumn(),
                console=stderr_console(),
                transient=False,
                refresh_per_second=4,
            )
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=None, counts="", rate="", eta="")
        return self

    def __call__(self, sweep: SweepRead) -> None:
        if self.plain is not None:
            self.plain(sweep)
            return
        assert self.bar is not None and self.task is not None
        counts = sweep.counts
        done = counts.succeeded + counts.failed + counts.cancelled
        final = sweep.status in FINAL_STATUSES
        self.bar.update(
            self.task,
            total=max(sweep.trial_count, 1),
            completed=done if sweep.trial_count else 1,
            counts=counts_text(sweep),
            rate=f"{sweep.throughput_per_s:.1f}/s" if sweep.throughput_per_s else "",
            eta=sweep.status if final else f"eta {format_duration(sweep.eta_s)}",
        )

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.bar is not None:
            self.bar.stop()
