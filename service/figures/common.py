"""Shared pieces of the figures: labels with symbols, regime colours, rendering to bytes.

Everything here is pure matplotlib on the Agg backend (no pyplot, no global state), so
figures can be rendered from request threads.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FORMATS = {"png": "image/png", "svg": "image/svg+xml"}
PNG_DPI = 110

# Axis labels: parameter name, symbol and what it measures (all are dimensionless).
PARAM_LABELS: dict[str, str] = {
    "alpha": r"sample ratio $\alpha = n_{FT}/D$",
    "c_pt": r"absolute init scale $c_{PT}$",
    "lambda_pt": r"relative layer scale $\lambda_{PT}$ (first − second)",
    "gamma_ft": r"readout re-init scale $\gamma_{FT}$",
    "omega": r"shared-feature fraction $\omega$",
    "rho_ft": r"FT sparsity $\rho_{FT}$",
    "rho_pt": r"PT sparsity $\rho_{PT}$",
    "a_pt": r"PT teacher value $a_{PT}$",
    "sigma0": r"FT label-noise std $\sigma_0$",
    "D": r"input dimension $D$",
}
SYMBOLS: dict[str, str] = {
    "alpha": r"$\alpha$",
    "c_pt": r"$c_{PT}$",
    "lambda_pt": r"$\lambda_{PT}$",
    "gamma_ft": r"$\gamma_{FT}$",
    "omega": r"$\omega$",
    "rho_ft": r"$\rho_{FT}$",
    "rho_pt": r"$\rho_{PT}$",
    "a_pt": r"$a_{PT}$",
    "sigma0": r"$\sigma_0$",
    "D": r"$D$",
}
GEN_ERROR_LABEL = r"generalization error $E_{gen}$ (test MSE per coordinate)"
REGIME_COLOURS = {"I": "#1b9e77", "II": "#d95f02", "III": "#7570b3", "IV": "#e7298a"}
REGIME_NAMES = {
    "I": "I  rich, PT-independent",
    "II": "II  lazy, PT-dependent",
    "III": "III  lazy, PT-independent",
    "IV": "IV  nested (rich, PT-dependent)",
}
# Parameters that describe the tasks, and the init knobs (THEORY.md §1).
TASK_PARAMS = ("omega", "rho_ft", "rho_pt")
INIT_PARAMS = ("c_pt", "lambda_pt", "gamma_ft")
# Order in which varied parameters become panels / heat-map axes.
PARAM_ORDER = ("omega", "rho_ft", "rho_pt", "c_pt", "lambda_pt", "gamma_ft", "a_pt", "sigma0", "D")
# Parameters that never define a curve (the x axis and per-run bookkeeping).
NOT_CURVE = ("alpha", "seed")


class FigureInputError(ValueError):
    """The records cannot make the requested figure (the service turns it into a 422)."""


def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def to_bytes(figure: Figure, fmt: str) -> bytes:
    """PNG or SVG bytes of a figure."""
    if fmt not in FORMATS:
        raise FigureInputError(f"format {fmt!r}: pick one of {', '.join(FORMATS)}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=PNG_DPI if fmt == "png" else None)
    return buffer.getvalue()


def symbol(name: str) -> str:
    return SYMBOLS.get(name, name)


def label(name: str) -> str:
    return PARAM_LABELS.get(name, name)


def fmt_value(value: Any) -> str:
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4):
            mantissa, exponent = f"{value:.2e}".split("e")
            mantissa = mantissa.rstrip("0").rstrip(".")
            return f"{mantissa}e{int(exponent)}"
        return f"{value:.4g}"
    return str(value)


def assignment(params: dict[str, Any], names: Iterable[str]) -> str:
    """``"$c_{PT}$=0.001, $\\lambda_{PT}$=0"`` for the given parameter names."""
    return ", ".join(f"{symbol(n)}={fmt_value(params[n])}" for n in names if n in params)


def mode(values: list[Any]) -> Any:
    """Most common value; ties go to the first seen."""
    counts = Counter(values)
    best = max(counts.values())
    return next(v for v in values if counts[v] == best)


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) else (1, str(value))


def varied(params_list: list[dict[str, Any]], exclude: Iterable[str] = NOT_CURVE) -> list[str]:
    """Names whose value differs among the parameter sets, in ``PARAM_ORDER`` first."""
    skip = set(exclude)
    names = {name for params in params_list for name in params if name not in skip}
    out = []
    for name in names:
        values = {repr(params.get(name)) for params in params_list}
        if len(values) > 1:
            out.append(name)
    order = {name: i for i, name in enumerate(PARAM_ORDER)}
    return sorted(out, key=lambda name: (order.get(name, len(order)), name))


def fixed_summary(params_list: list[dict[str, Any]], limit: int = 8) -> str:
    """The parameters every set shares, as a short subtitle."""
    if not params_list:
        return ""
    first = params_list[0]
    shared = [
        name
        for name in PARAM_ORDER
        if name in first and all(p.get(name) == first[name] for p in params_list)
    ]
    return assignment(first, shared[:limit])
