"""Command line for the closed-form theory (THEORY.md §3-4).

    python -m workers.theory curve '<json>'    # fine-tuning E_gen(alpha) + regime
    python -m workers.theory single '<json>'   # single-task baseline (keys rho, c, ...)

Optional solver keys for both: ``gamma_ext`` (1e-6), ``expectation`` ("quadrature", the
default, or "monte_carlo": the original code's estimator, which reproduces THEORY.md
§3's reference table draw for draw), ``mc_samples`` (80000) and ``mc_seed`` (0).

The JSON object comes as the argument, or from stdin when it is absent or "-".  Output is
one JSON object on stdout.  Bad input (unknown key, invalid value) exits with status 2
and one line on stderr that names the key.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import numpy as np

from workers.config import InitParams, TaskStats
from workers.theory.asymptotics import (
    ReplicaCurve,
    as_alpha_list,
    generalization_curve,
    single_task_curve,
)
from workers.theory.regimes import CLASSIFIER_VERSION, theory_regime

TASK_KEYS = ("rho_pt", "rho_ft", "omega", "a_pt", "ft_norm", "q", "sigma0")
PAPER_KEYS = ("rho_ft_shared", "rho_ft_new")
INIT_KEYS = ("c_pt", "lambda_pt", "gamma_ft", "readout_convention")
# How the replica expectations are computed (THEORY.md §3; see asymptotics.solve_curve).
SOLVER_KEYS = ("gamma_ext", "expectation", "mc_samples", "mc_seed")
CURVE_KEYS = frozenset(TASK_KEYS + PAPER_KEYS + INIT_KEYS + SOLVER_KEYS + ("alpha",))
SINGLE_KEYS = frozenset(("rho", "c", "sigma0", "alpha") + SOLVER_KEYS)
USAGE = "usage: python -m workers.theory {curve,single} ['<json object>' | -]"


class UsageError(ValueError):
    """Bad command-line input; the message is the one line printed to stderr."""


def _check_keys(spec: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise UsageError(f"unknown key {unknown[0]!r}; accepted: {', '.join(sorted(allowed))}")


def _require(spec: dict[str, Any], key: str) -> Any:
    if key not in spec:
        raise UsageError(f"missing required key {key!r}")
    return spec[key]


def _json_value(value: float) -> float | None:
    return None if math.isnan(value) else value


def _curve_json(curve: ReplicaCurve) -> dict[str, Any]:
    def column(values: np.ndarray) -> list[Any]:
        if values.dtype == bool:
            return [bool(v) for v in values]
        return [_json_value(float(v)) for v in values]

    return {
        "alpha": column(curve.alpha),
        "gen_error": column(curve.gen_error),
        "active_fraction": column(curve.active_fraction),
        "s2": column(curve.s2),
        "g": column(curve.g),
        "reliable": column(curve.reliable),
        "branch_mismatch": column(curve.branch_mismatch),
        "gen_error_alt": column(curve.gen_error_alt),
        "all_reliable": bool(np.all(curve.reliable)),
    }


def _task_from_spec(spec: dict[str, Any]) -> TaskStats:
    extra = {k: spec[k] for k in ("a_pt", "ft_norm", "q", "sigma0") if k in spec}
    if any(k in spec for k in PAPER_KEYS):
        if "rho_ft" in spec or "omega" in spec:
            raise UsageError("give either rho_ft + omega or rho_ft_shared + rho_ft_new, not both")
        return TaskStats.from_paper_parameterization(
            _require(spec, "rho_pt"),
            _require(spec, "rho_ft_shared"),
            _require(spec, "rho_ft_new"),
            **extra,
        )
    return TaskStats(
        rho_pt=_require(spec, "rho_pt"),
        rho_ft=_require(spec, "rho_ft"),
        omega=_require(spec, "omega"),
        **extra,
    )


def _solver_options(spec: dict[str, Any]) -> dict[str, Any]:
    return {key: spec[key] for key in SOLVER_KEYS if key in spec}


def run_curve(spec: dict[str, Any]) -> dict[str, Any]:
    """Fine-tuning curve (THEORY.md §3) plus the theory regime label (§4)."""
    _check_keys(spec, CURVE_KEYS)
    task = _task_from_spec(spec)
    init = InitParams(
        c_pt=_require(spec, "c_pt"),
        lambda_pt=_require(spec, "lambda_pt"),
        gamma_ft=_require(spec, "gamma_ft"),
        readout_convention=spec.get("readout_convention", "per_path_sqrt2"),
    )
    alphas = as_alpha_list(_require(spec, "alpha"))
    curve = generalization_curve(task, init, alphas, **_solver_options(spec))
    regime = theory_regime(task, init)
    return {
        **_curve_json(curve),
        "regime": regime.label,
        "l_order": regime.l_order,
        "pd": regime.pd,
        "classifier_version": CLASSIFIER_VERSION,
    }


def run_single(spec: dict[str, Any]) -> dict[str, Any]:
    """Single-task baseline from scratch (THEORY.md §3)."""
    _check_keys(spec, SINGLE_KEYS)
    alphas = as_alpha_list(_require(spec, "alpha"))
    curve = single_task_curve(
        _require(spec, "rho"),
        _require(spec, "c"),
        alphas,
        sigma0=spec.get("sigma0", 0.0),
        **_solver_options(spec),
    )
    return _curve_json(curve)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    commands = {"curve": run_curve, "single": run_single}
    try:
        if not args or args[0] not in commands or len(args) > 2:
            raise UsageError(USAGE)
        text = sys.stdin.read() if len(args) == 1 or args[1] == "-" else args[1]
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"input is not valid JSON: {exc}") from exc
        if not isinstance(spec, dict):
            raise UsageError("input must be a JSON object")
        result = commands[args[0]](spec)
    except (ValueError, TypeError) as exc:
        print(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, allow_nan=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
