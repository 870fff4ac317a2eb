"""The submit-time checks of a refine spec, as 422 error items with field paths.

Pydantic already rejects a malformed ``refine`` block (``low >= high``, a log axis with
``low <= 0``, a box of 1 or 4 parameters, an unknown ``label`` column, missing thresholds)
with its own ``loc``.  What needs the workload is checked here:

- the box names real-valued parameters of the workload, set nowhere else in the spec
  (``["body", "refine", "box", name]``);
- a refine sweep varies nothing but its box (``["body", "axes"]``, ``zip``, ``sobol``);
- ``label`` is a column the workload fills (``["body", "refine", "label"]``);
- the budget holds the initial grid and stays within ``SWEEPS_LIMITS__MAX_TRIALS``
  (``["body", "refine", "budget"]``).

Every value the box can produce is then validated like any other trial parameter by
``service/expand.py`` (out-of-range ends point at ``["body", "refine", "box", name]``).
"""

from __future__ import annotations

import types
import typing

from api_schemas.spec import SweepSpec
from api_schemas.workloads import WORKLOAD_SCHEMAS

# Result columns a workload fills (others: every column).
FILLED_COLUMNS = {
    "dln_theory": {"regime_theory", "gen_error_asymptotic", "l_order_theory", "pd_theory"},
}


def _real_valued(annotation: object) -> bool:
    if annotation is float:
        return True
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return members == [float]
    return False


def _error(loc: list[str | int], msg: str, kind: str = "value_error") -> dict:
    return {"loc": loc, "msg": msg, "type": kind}


def refine_problems(spec: SweepSpec, initial_trials: int, max_trials: int) -> list[dict]:
    """Problems of ``spec.refine`` (empty when it is fine); see the module docstring.

    ``initial_trials``: the initial grid's trials (points × seeds)."""
    refine = spec.refine
    assert refine is not None
    errors: list[dict] = []
    for field in ("axes", "zip", "sobol"):
        if getattr(spec, field):
            errors.append(
                _error(
                    ["body", field],
                    f"a refine sweep varies only its box; put fixed values in params "
                    f"(refine.box: {', '.join(refine.box)})",
                )
            )
    fields = WORKLOAD_SCHEMAS[spec.workload].params_model.model_fields
    for name in refine.box:
        loc: list[str | int] = ["body", "refine", "box", name]
        if name not in fields:
            known = ", ".join(sorted(n for n, f in fields.items() if _real_valued(f.annotation)))
            errors.append(_error(loc, f"unknown parameter {name!r}; real-valued: {known}"))
        elif not _real_valued(fields[name].annotation):
            errors.append(_error(loc, f"{name} is not real-valued; a box axis must be"))
        elif name in spec.params:
            errors.append(_error(loc, f"{name} is set in both params and refine.box"))
    filled = FILLED_COLUMNS.get(spec.workload)
    if filled is not None and refine.label not in filled:
        errors.append(
            _error(
                ["body", "refine", "label"],
                f"workload {spec.workload} does not fill {refine.label}; "
                f"use one of {', '.join(sorted(filled))}",
            )
        )
    budget = ["body", "refine", "budget"]
    if refine.budget > max_trials:
        errors.append(
            _error(
                budget,
                f"budget {refine.budget} exceeds the limit {max_trials} "
                "(SWEEPS_LIMITS__MAX_TRIALS)",
                "limit_exceeded",
            )
        )
    if initial_trials > refine.budget:
        errors.append(
            _error(
                budget,
                f"the initial grid alone is {initial_trials} trials "
                f"({refine.initial}^{len(refine.box)} points × seeds) > budget {refine.budget}",
            )
        )
    return errors
