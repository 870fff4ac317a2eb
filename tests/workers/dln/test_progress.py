"""Per-trial progress reports and step-proportional wall times of a fine-tuning batch."""

from __future__ import annotations

import pytest

from workers.config import InitParams, TaskStats
from workers.dln.evaluate import FinetuneTrial, TrainOptions, evaluate_finetune_batch
from workers.dln.progress import BatchProgress

TASK = TaskStats(rho_pt=0.1, rho_ft=0.1, omega=0.5)
FAST = InitParams(c_pt=1e-3, lambda_pt=0.0, gamma_ft=1.0)  # lazy: converges quickly
SLOW = InitParams(c_pt=1e-3, lambda_pt=-0.99, gamma_ft=0.0)  # rich: many more steps


def trial(init: InitParams, seed: int = 0, D: int = 60) -> FinetuneTrial:
    return FinetuneTrial(task=TASK, init=init, D=D, alpha=0.5, seed=seed, n_test=50)


def run_reported(trials: list[FinetuneTrial], options: TrainOptions):
    reports: list[tuple[int, dict]] = []
    outcomes = evaluate_finetune_batch(trials, options, lambda i, p: reports.append((i, p)))
    return outcomes, reports


def test_every_trial_reports_its_steps_and_loss_until_done() -> None:
    trials = [trial(FAST, seed=0), trial(SLOW, seed=0), trial(FAST, seed=1)]
    outcomes, reports = run_reported(trials, TrainOptions(lr=0.3, max_steps=3000))
    for index, outcome in enumerate(outcomes):
        mine = [p for i, p in reports if i == index]
        phases = [p["phase"] for p in mine]
        assert phases[0] == "preparing" and phases[-1] == "done"
        assert "finetune" in phases
        last = mine[-1]
        assert last["step"] == outcome.steps and last["stop_reason"] == outcome.stop_reason
        assert last["loss"] == pytest.approx(outcome.train_loss)
        assert last["steps"] == 3000 and last["started_at"] <= last["updated_at"]
        steps = [p["step"] for p in mine if p["phase"] == "finetune"]
        assert steps == sorted(steps) and steps[0] == 0


def test_blocks_run_one_after_another_and_the_others_wait_in_the_batch() -> None:
    """Two datasets (seeds) on CPU are two blocks: while seed 0's block trains, seed 1's
    trial is queued_in_batch, so only the running block counts as executing."""
    trials = [trial(FAST, seed=0), trial(FAST, seed=1)]
    _, reports = run_reported(trials, TrainOptions(lr=0.3, max_steps=3000))
    sequence = [(i, p["phase"]) for i, p in reports]
    first_done = sequence.index((0, "done"))
    assert (1, "queued_in_batch") in sequence[:first_done]
    assert (1, "finetune") not in sequence[:first_done]
    assert (1, "finetune") in sequence[first_done:]


def test_a_failing_callback_never_fails_the_batch() -> None:
    def broken(index: int, payload: dict) -> None:
        raise RuntimeError("board gone")

    (outcome,) = evaluate_finetune_batch([trial(FAST)], TrainOptions(max_steps=500), broken)
    assert outcome.steps > 0


def test_running_reports_are_throttled() -> None:
    sent: list[int] = []
    board = BatchProgress(lambda i, p: sent.append(i), count=2, max_steps=100, every_s=3600)
    board.observe(0, {0: 1.0, 1: 1.0}, {})
    board.observe(50, {0: 0.5, 1: 0.5}, {})  # not due, nobody new: nothing sent
    assert sent == [0, 1]
    board.observe(100, {1: 0.1}, {0: (None, None, 0.01, 100, "max_steps", None)})
    assert sent == [0, 1, 0]  # a finished column is always reported


def test_wall_time_is_the_batch_time_shared_by_steps() -> None:
    """A short run must not show the time of a long one: shares follow steps × n × D and
    add up to the batch's time."""
    trials = [trial(FAST, seed=0), trial(SLOW, seed=0)]
    options = TrainOptions(lr=0.3, max_steps=4000, loss_threshold=1e-12, stall_tol=0.0)
    fast, slow = evaluate_finetune_batch([trials[0], trials[1]], options)
    assert fast.steps < slow.steps
    assert fast.wall_time_s / slow.wall_time_s == pytest.approx(fast.steps / slow.steps)


def test_wall_shares_weigh_the_shape_too() -> None:
    """Two datasets of different D in one batch: per step a column costs ∝ n·D."""
    small, big = trial(FAST, D=40), trial(FAST, D=80)
    options = TrainOptions(max_steps=200, loss_threshold=0.0, stall_tol=0.0)
    a, b = evaluate_finetune_batch([small, big], options)
    assert a.steps == b.steps == 200
    assert b.wall_time_s / a.wall_time_s == pytest.approx((40 * 80) / (20 * 40))


def test_done_reports_carry_the_finished_outcome() -> None:
    """Each ``done`` report carries the trial's outcome record, equal to the outcome the
    batch returns at the end (but for the wall time, unknown until the batch ends); the
    first dataset's outcomes are sent while the second one still trains."""
    trials = [trial(FAST, seed=0), trial(SLOW, seed=0), trial(FAST, seed=1)]
    outcomes, reports = run_reported(trials, TrainOptions(lr=0.3, max_steps=3000))
    for index, outcome in enumerate(outcomes):
        (done,) = [p for i, p in reports if i == index and p["phase"] == "done"]
        assert done["outcome"] == {**outcome.to_record(), "wall_time_s": None}
    sequence = [(i, p["phase"]) for i, p in reports]
    assert sequence.index((2, "finetune")) > sequence.index((1, "done"))


def test_the_board_keeps_outcomes_apart_from_progress() -> None:
    from workers.runtime import ProgressBoard, kept_outcome

    board = ProgressBoard()
    board.report(7, {"phase": "finetune", "step": 10})
    assert board.finished([7]) == {}
    record = {"gen_error_sim": 0.25, "steps": 40, "device": "cpu", "dtype": "float64"}
    stamp = {"code_version": "1.0+gabc", "device": "cpu"}
    board.report(7, {"phase": "done", "step": 40, "outcome": record, "envelope": stamp})
    assert board.snapshot([7]) == {7: {"phase": "done", "step": 40}}
    outcome = kept_outcome(board.finished([7])[7])
    assert outcome.ok and outcome.gen_error_sim == 0.25 and outcome.metrics["steps"] == 40
    assert outcome.envelope == stamp and outcome.code_version == "1.0+gabc"
    assert outcome.wall_time_s is None
    board.forget([7])
    assert board.snapshot([7]) == {} and board.finished([7]) == {}
