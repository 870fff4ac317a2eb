"""Typed column values from a trial's parameter dict (one mapping, used on insert)."""

from __future__ import annotations

from typing import Any

from api_schemas.workloads import TYPED_PARAMETERS

FLOAT_COLUMNS = tuple(name for name in TYPED_PARAMETERS if name not in ("D", "seed"))


def typed_columns(params: dict[str, Any], seed: int | None) -> dict[str, Any]:
    """``{column: value}`` for the indexed parameter columns of ``trials``.

    The paper's (rho_ft_shared, rho_ft_new) parameterization is stored as the
    equivalent (rho_ft, omega) so one numeric filter works for both (THEORY.md §1).
    """
    values: dict[str, Any] = {
        name: float(params[name]) if params.get(name) is not None else None
        for name in FLOAT_COLUMNS
    }
    if params.get("rho_ft_shared") is not None and params.get("rho_ft_new") is not None:
        rho_pt = float(params["rho_pt"])
        rho_ft = float(params["rho_ft_shared"]) * rho_pt + float(params["rho_ft_new"]) * (
            1 - rho_pt
        )
        values["rho_ft"] = rho_ft
        values["omega"] = (
            min(1.0, float(params["rho_ft_shared"]) * rho_pt / rho_ft) if rho_ft else 0.0
        )
    values["dim"] = int(params["D"]) if params.get("D") is not None else None
    values["seed"] = seed
    return values
