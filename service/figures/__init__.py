"""Server-side figures (matplotlib, Agg): pure functions from plain records to PNG/SVG.

Kinds (``KINDS``):

- ``gen_error``: E_gen vs α, theory lines and simulation mean ± 1.96·SEM points, one panel
  per parameter varied around the baseline (the paper's Figure 3 layout);
- ``regimes``: the four-regime figure (regimes as colours, ground truths as line styles);
- ``l_order`` / ``pd``: heat maps of the ℓ-order / pretraining dependence over two
  parameters;
- ``phase``: the theory regime label over two parameters (a refine sweep: the label map
  of its adaptive mesh, with the boundary cells; ``service.figures.refined``);
- ``scatter``: theory vs simulation per config, identity line, coloured by regime.

``render`` takes a :class:`FigureInput` (records and optional companion theory records)
and returns bytes; ``service.figures.sweep`` gathers the input from the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.figures.common import FORMATS, FigureInputError, finite, to_bytes
from service.figures.curves import gen_error_figure, regimes_figure
from service.figures.maps import heatmap_figure, phase_figure
from service.figures.refined import refined_phase_figure
from service.figures.scatter import scatter_figure
from service.report import DEFAULT_FLOOR, config_stats, theory_key

KINDS: dict[str, str] = {
    "gen_error": "generalization error vs alpha, one panel per varied parameter",
    "regimes": "the four-regime figure: regimes as colours, ground truths as line styles",
    "l_order": "heat map of the l-order over two parameters",
    "pd": "heat map of the pretraining dependence over two parameters",
    "phase": "phase diagram of the theory regime label over two parameters",
    "scatter": "theory vs simulation per config, identity line, coloured by regime",
}
# Kinds that need simulated errors (a dln_finetune sweep).
NEEDS_SIMULATION = frozenset({"scatter"})


@dataclass(frozen=True)
class FigureOptions:
    x: str | None = None
    y: str | None = None
    yscale: str = "log"
    source: str = "theory"
    floor: float = DEFAULT_FLOOR


@dataclass(frozen=True)
class FigureInput:
    """What a figure is drawn from: a title, the sweep's records and, optionally, the
    records of a companion ``dln_theory`` sweep whose curves become the theory lines."""

    title: str
    records: list[dict[str, Any]]
    theory_records: list[dict[str, Any]] = field(default_factory=list)
    # A refine sweep's points and labels (service.refine.state.RefineView), if it is one.
    refine: Any = None


def theory_curves(records: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """``{theory key: [(alpha, E_gen)]}`` from replica results (one point per alpha)."""
    curves: dict[str, dict[float, float]] = {}
    for record in records:
        alpha = record["params"].get("alpha")
        value = record.get("gen_error_asymptotic")
        if finite(alpha) and finite(value):
            curves.setdefault(theory_key(record["params"]), {})[float(alpha)] = float(value)
    return {key: sorted(points.items()) for key, points in curves.items()}


def render(kind: str, fmt: str, data: FigureInput, options: FigureOptions | None = None) -> bytes:
    """The figure ``kind`` of ``data`` as ``fmt`` (png or svg) bytes."""
    options = options or FigureOptions()
    if kind not in KINDS:
        raise FigureInputError(f"unknown figure kind {kind!r}; known: {', '.join(KINDS)}")
    if fmt not in FORMATS:
        raise FigureInputError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    if kind in ("gen_error", "regimes", "scatter"):
        stats = config_stats(data.records)
        if kind == "scatter":
            figure = scatter_figure(data.title, stats, options.floor)
        else:
            draw = gen_error_figure if kind == "gen_error" else regimes_figure
            figure = draw(data.title, stats, theory_curves(data.theory_records), options.yscale)
    elif kind == "phase" and data.refine is not None:
        figure = refined_phase_figure(data.title, data.refine, options.x, options.y)
    elif kind == "phase":
        figure = phase_figure(data.title, data.records, options.x, options.y)
    else:
        figure = heatmap_figure(
            data.title, data.records, kind, options.x, options.y, options.source
        )
    return to_bytes(figure, fmt)


__all__ = [
    "FORMATS",
    "KINDS",
    "NEEDS_SIMULATION",
    "FigureInput",
    "FigureInputError",
    "FigureOptions",
    "render",
    "theory_curves",
]
