"""Small factories for store rows: ``make_trial`` (a finished trial with its result and
theory), ``make_sweep`` (a sweep linked to trials), ``trial_values`` (the column dict,
for bulk inserts)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from service.store.models import Sweep, SweepTrial, Trial
from service.store.typed import FLOAT_COLUMNS

TYPED_PARAMS = FLOAT_COLUMNS


def trial_values(**overrides: Any) -> dict[str, Any]:
    """Column values of a succeeded diagonal-network trial; ``D`` may stand for ``dim``."""
    if "D" in overrides:
        overrides["dim"] = overrides.pop("D")
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "key": uuid.uuid4().hex,
        "workload": "dln",
        "execution": {"steps": 1000, "lr": 0.1},
        "batch_key": "batch",
        "group_key": "group",
        "theory_key": None,
        "c_pt": 0.01,
        "lambda_pt": 0.0,
        "gamma_ft": 1.0,
        "rho_pt": 0.1,
        "rho_ft": 0.05,
        "omega": 0.5,
        "alpha": 0.5,
        "a_pt": 1.0,
        "sigma0": 0.0,
        "dim": 200,
        "seed": 0,
        "status": "succeeded",
        "priority": 0,
        "attempts": 1,
        "created_at": now,
        "started_at": now,
        "finished_at": now,
        "gen_error_sim": 0.5,
        "gen_error_theory": 0.48,
        "gen_error_asymptotic": 0.47,
        "regime_theory": "I",
        "regime_empirical": "I",
        "l_order_theory": 0.3,
        "pd_theory": 0.7,
        "l_order_empirical": 0.31,
        "pd_empirical": 0.69,
        "classifier_version": "v1",
        "diverged": False,
        "stop_reason": "converged",
        "wall_time_s": 0.01,
        "metrics": {"final_train_loss": 1e-6},
        "device": "cpu",
        "dtype": "float64",
        "code_version": "0.1.0",
        "envelope": {"numpy": "2.0", "python": "3.11"},
    }
    values.update(overrides)
    if "params" not in overrides:
        values["params"] = {name: values[name] for name in TYPED_PARAMS} | {"D": values["dim"]}
    for residual, reference in (
        ("residual_theory", "gen_error_theory"),
        ("residual_asymptotic", "gen_error_asymptotic"),
    ):
        if residual not in overrides:
            sim, other = values["gen_error_sim"], values[reference]
            values[residual] = sim - other if sim is not None and other is not None else None
    return values


def make_trial(session: Session, **overrides: Any) -> Trial:
    """Insert one trial (finished and succeeded unless overridden) and flush."""
    trial = Trial(**trial_values(**overrides))
    session.add(trial)
    session.flush()
    return trial


def make_sweep(session: Session, trials: Iterable[Trial | int] = (), **overrides: Any) -> Sweep:
    """Insert a sweep and link it to ``trials`` (rows or ids) through ``sweep_trials``."""
    trial_ids = [t if isinstance(t, int) else t.id for t in trials]
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "name": "test-sweep",
        "workload": "dln",
        "submitter": "tester",
        "priority": 0,
        "tags": [],
        "spec": {"workload": "dln"},
        "spec_hash": uuid.uuid4().hex,
        "idempotency_key": None,
        "trial_count": len(trial_ids),
        "cached_count": 0,
        "cancel_requested": False,
        "created_at": datetime.now(UTC),
    }
    values.update(overrides)
    sweep = Sweep(**values)
    session.add(sweep)
    session.flush()
    session.add_all(SweepTrial(sweep_id=sweep.id, trial_id=i, cached=False) for i in trial_ids)
    session.flush()
    return sweep


def small_finetune_spec(**overrides: Any) -> dict[str, Any]:
    """A 6-trial dln_finetune spec (3 λ_PT × 2 seeds, D = 40) that trains in well under a
    second; keyword arguments replace top-level spec fields."""
    spec: dict[str, Any] = {
        "name": "small",
        "workload": "dln_finetune",
        "params": {
            "D": 40,
            "alpha": 0.5,
            "rho_pt": 0.1,
            "rho_ft": 0.1,
            "omega": 0.5,
            "c_pt": 0.05,
            "gamma_ft": 0.5,
        },
        "axes": {"lambda_pt": [-0.5, 0.0, 0.5]},
        "seeds": 2,
        "execution": {"lr": 0.2, "max_steps": 3000},
    }
    return {**spec, **overrides}
