"""Progress reports leave a Ray worker in bundles (``workers.runtime.BufferedReporter``)."""

from __future__ import annotations

import threading
import time

from workers.runtime import BufferedReporter, ProgressBoard


def test_reports_go_out_in_bundles_latest_per_trial() -> None:
    sent: list[dict] = []
    reporter = BufferedReporter(sent.append, every_s=60.0)
    for step in range(100):
        reporter(1, {"phase": "finetune", "step": step})
        reporter(2, {"phase": "finetune", "step": step})
    assert sent == []  # nothing before the interval or the close
    reporter.close()
    assert sent == [{1: {"phase": "finetune", "step": 99}, 2: {"phase": "finetune", "step": 99}}]


def test_a_report_before_a_silent_stretch_goes_out_within_the_interval() -> None:
    arrived = threading.Event()
    reporter = BufferedReporter(lambda reports: arrived.set(), every_s=0.05)
    reporter(1, {"phase": "preparing"})
    started = time.monotonic()
    assert arrived.wait(5.0), "never sent"
    assert time.monotonic() - started < 2.0
    reporter.close()


def test_an_outcome_is_never_replaced_before_it_is_sent() -> None:
    board = ProgressBoard()
    reporter = BufferedReporter(board.report_many, every_s=60.0)
    reporter(3, {"phase": "done", "outcome": {"gen_error_sim": 0.5}, "envelope": {"a": 1}})
    reporter(3, {"phase": "done", "step": 10})
    reporter.close()
    assert board.snapshot([3]) == {3: {"phase": "done", "step": 10}}
    assert board.finished([3]) == {3: {"outcome": {"gen_error_sim": 0.5}, "envelope": {"a": 1}}}


def test_a_failing_send_is_dropped_quietly() -> None:
    def broken(reports: dict) -> None:
        raise RuntimeError("actor gone")

    reporter = BufferedReporter(broken, every_s=60.0)
    reporter(1, {"phase": "started"})
    reporter.close()  # no exception
