"""Tests of the service contract ``evaluate_finetune_batch`` (THEORY.md §1, §2, §4)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import workers.dln.evaluate as evaluate_module
from workers.config import InitParams, TaskStats
from workers.dln.evaluate import (
    FinetuneTrial,
    TrainOptions,
    evaluate_finetune_batch,
)

RECORD_KEYS = {
    "gen_error_sim",
    "test_mse",
    "gen_error_theory",
    "beta_rel_diff",
    "train_loss",
    "steps",
    "stop_reason",
    "diverged",
    "invariant_drift",
    "wall_time_s",
    "regime_theory",
    "l_order_theory",
    "pd_theory",
    "regime_empirical",
    "l_order_empirical",
    "pd_empirical",
    "theory_converged",
    "theory_residual",
    "support_reuse",
    "device",
    "dtype",
    "classifier_version",
    "lr",
}
TASK = TaskStats(rho_pt=0.1, rho_ft=0.1, omega=0.5)
RICH = InitParams(c_pt=1e-2, lambda_pt=-0.5, gamma_ft=0.3)
LAZY_PT = InitParams(c_pt=1e-3, lambda_pt=0.0, gamma_ft=0.0)
OPTIONS = TrainOptions(lr=0.3, max_steps=5000)


def trial(init: InitParams = RICH, seed: int = 0, **kwargs: object) -> FinetuneTrial:
    args = {"task": TASK, "init": init, "D": 100, "alpha": 0.5, "seed": seed, "n_test": 200}
    return FinetuneTrial(**(args | kwargs))  # type: ignore[arg-type]


def test_record_has_exactly_the_contract_keys_and_is_json() -> None:
    (outcome,) = evaluate_finetune_batch([trial()], OPTIONS)
    record = outcome.to_record()
    assert set(record) == RECORD_KEYS
    json.dumps(record, allow_nan=False)
    assert record["stop_reason"] in ("loss_threshold", "stalled", "max_steps")
    assert record["diverged"] is False
    assert record["regime_theory"] in ("I", "II", "III", "IV")
    assert record["device"] == "cpu" and record["dtype"] == "float64"
    assert record["theory_converged"] is True
    assert record["beta_rel_diff"] < 5e-2
    assert 0.0 <= record["support_reuse"] <= 1.0
    # gen error = test MSE for x ~ N(0, I/D), up to the test-set noise.
    assert record["test_mse"] == pytest.approx(record["gen_error_sim"], rel=0.3)


def test_batch_equals_single_runs_order_and_dataset_reuse(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = evaluate_module.make_dataset

    def counting(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        calls.append(kwargs["seed"])
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(evaluate_module, "make_dataset", counting)
    trials = [trial(RICH, 0), trial(LAZY_PT, 1), trial(LAZY_PT, 0), trial(RICH, 1, alpha=0.3)]
    batch = evaluate_finetune_batch(trials, OPTIONS)
    assert sorted(calls) == [0, 1, 1]  # (seed 0, 0.5), (seed 1, 0.5), (seed 1, 0.3)
    calls.clear()
    for one, together in zip(trials, batch, strict=True):
        (alone,) = evaluate_finetune_batch([one], OPTIONS)
        np.testing.assert_allclose(together.beta_sim, alone.beta_sim, rtol=0, atol=1e-10)
        assert together.steps == alone.steps
    assert batch[3].beta_sim.shape == (100,)
    assert batch[0].gen_error_sim != batch[2].gen_error_sim


def test_lazy_limit_matches_min_l2_interpolator_and_theory() -> None:
    lazy = InitParams(c_pt=300.0, lambda_pt=0.0, gamma_ft=0.0)
    options = TrainOptions(lr=0.003, max_steps=20_000, loss_threshold=1e-16, stall_tol=0.0)
    (outcome,) = evaluate_finetune_batch([trial(lazy)], options)
    data = evaluate_module.make_dataset(TASK, D=100, alpha=0.5, seed=0, n_test=200)
    pinv = np.linalg.pinv(data.X_ft) @ data.y_ft
    assert np.linalg.norm(outcome.beta_sim - pinv) / np.linalg.norm(pinv) < 1e-3
    assert outcome.beta_rel_diff < 1e-3
    assert outcome.regime_theory == "III"


def test_divergence_is_a_result_not_an_exception() -> None:
    unstable = InitParams(c_pt=1e-3, lambda_pt=0.0, gamma_ft=10.0)
    outcomes = evaluate_finetune_batch([trial(RICH), trial(unstable)], TrainOptions(lr=0.5))
    record = outcomes[1].to_record()
    assert record["diverged"] is True and record["stop_reason"] == "diverged"
    assert record["gen_error_sim"] is None and record["regime_empirical"] is None
    assert record["gen_error_theory"] is not None
    json.dumps(record, allow_nan=False)
    assert outcomes[0].diverged is False


def test_trained_pretraining_mode() -> None:
    options = TrainOptions(
        lr=0.3, max_steps=5000, pt_mode="trained", pt_lr=0.5, pt_loss_threshold=1e-8
    )
    init = InitParams(c_pt=1e-2, lambda_pt=0.0, gamma_ft=0.1)
    (outcome,) = evaluate_finetune_batch([trial(init, D=60, alpha_pt=1.0)], options)
    data = evaluate_module.make_dataset(TASK, D=60, alpha=0.5, seed=0, n_test=200)
    # Sparse PT teacher, n_PT = D samples: PT GD recovers it (up to the loss threshold,
    # which the square, ill-conditioned X_PT amplifies).
    star = data.beta_pt_star
    assert np.linalg.norm(outcome.beta_pt_hat - star) / np.linalg.norm(star) < 0.1
    support = np.argsort(-np.abs(outcome.beta_pt_hat))[: np.count_nonzero(star)]
    assert set(support) == set(np.flatnonzero(star))
    assert not outcome.diverged


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"max_steps": 0}, "max_steps"),
        ({"dtype": "float16"}, "dtype"),
        ({"pt_mode": "magic"}, "pt_mode"),
        ({"pt_lr": -1.0}, "pt_lr"),
        ({"loss_threshold": -1.0}, "loss_threshold"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_options_name_the_field(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name} "):
        TrainOptions(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "name"), [({"D": 0}, "D"), ({"alpha": -0.1}, "alpha"), ({"seed": -1}, "seed")]
)
def test_bad_trials_name_the_parameter(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name} "):
        trial(**kwargs)
