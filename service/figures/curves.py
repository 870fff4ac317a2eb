"""Generalization error vs α: the paper's Figure 3 layout and the four-regime figure.

Inputs are plain data: per-config simulation statistics (``service.report.ConfigStats``)
and theory curves ``{theory key: [(alpha, E_gen), ...]}``.  A *curve* is one parameter
set without α (its theory key); its simulated points are drawn as mean ± 1.96·SEM
markers, its theory as a line in the same colour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from service.figures.common import (
    GEN_ERROR_LABEL,
    PARAM_ORDER,
    REGIME_COLOURS,
    REGIME_NAMES,
    TASK_PARAMS,
    FigureInputError,
    assignment,
    fixed_summary,
    fmt_value,
    label,
    mode,
    new_figure,
    sort_key,
    symbol,
    varied,
)
from service.report import Z_95, ConfigStats, theory_key

TheoryCurves = dict[str, list[tuple[float, float]]]
LINE_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 3)))
MARKERS = ("o", "s", "^", "D", "v", "P")


@dataclass
class Curve:
    """One parameter set (no α): simulated points and a theory line."""

    params: dict[str, Any]
    points: list[ConfigStats] = field(default_factory=list)
    theory: list[tuple[float, float]] = field(default_factory=list)

    @property
    def regime(self) -> str | None:
        labels = [p.regime_theory for p in self.points if p.regime_theory]
        return mode(labels) if labels else None


def build_curves(stats: list[ConfigStats], theory_curves: TheoryCurves) -> list[Curve]:
    """Group configs into curves; the theory line comes from ``theory_curves`` when the
    curve's key is there (a companion ``dln_theory`` sweep), else from the replica value
    stored on each simulated config (``gen_error_asymptotic`` at the simulated α)."""
    curves: dict[str, Curve] = {}
    for item in stats:
        key = theory_key(item.params)
        if key not in curves:
            base = {k: v for k, v in item.params.items() if k != "alpha"}
            curves[key] = Curve(params=base)
        curves[key].points.append(item)
    for key, curve in curves.items():
        curve.points.sort(key=lambda p: p.alpha or 0.0)
        if theory_curves.get(key):
            curve.theory = sorted(theory_curves[key])
        else:
            curve.theory = [(p.alpha, p.theory) for p in curve.points if p.theory is not None]
    return list(curves.values())


def _draw(ax: Axes, curve: Curve, colour: str, text: str, style: Any = "-", marker: str = "o"):
    if curve.theory:
        xs, ys = zip(*curve.theory, strict=True)
        ax.plot(xs, ys, linestyle=style, color=colour, linewidth=1.6, label=text)
        text = None  # the legend entry is on the line
    sims = [p for p in curve.points if p.mean is not None]
    if sims:
        xs = [p.alpha for p in sims]
        ys = [p.mean for p in sims]
        high = [Z_95 * p.sem if p.sem is not None else 0.0 for p in sims]
        # An MSE is positive: the lower bar stops short of 0 (and of -inf on a log axis).
        err = [[min(h, 0.999 * y) for h, y in zip(high, ys, strict=True)], high]
        ax.errorbar(
            xs,
            ys,
            yerr=err,
            fmt=marker,
            color=colour,
            markersize=4.5,
            capsize=2.5,
            linewidth=1.0,
            label=text,
        )


def _finish_axes(ax: Axes, yscale: str) -> None:
    ax.set_xlabel(label("alpha"))
    ax.set_ylabel(GEN_ERROR_LABEL, fontsize=8.5)
    if yscale == "log":
        ax.set_yscale("log")
    ax.grid(True, which="major", alpha=0.3)


def _layout(curves: list[Curve]) -> tuple[list[tuple[dict[str, Any], list[Curve]]], list[str]]:
    """Rows (one per task setting, when every task setting carries several init curves)
    and the parameters that become panels (varied one at a time around a baseline)."""
    names = varied([c.params for c in curves])
    task_names = [n for n in names if n in TASK_PARAMS]
    if task_names:
        rows: dict[tuple[Any, ...], list[Curve]] = {}
        for curve in curves:
            rows.setdefault(tuple(curve.params.get(n) for n in task_names), []).append(curve)
        if all(len(members) >= 2 for members in rows.values()):
            ordered = sorted(rows.items(), key=lambda item: [sort_key(v) for v in item[0]])
            return (
                [(dict(zip(task_names, key, strict=True)), members) for key, members in ordered],
                [n for n in names if n not in TASK_PARAMS],
            )
    return [({}, curves)], names


def gen_error_figure(
    title: str, stats: list[ConfigStats], theory_curves: TheoryCurves, yscale: str = "log"
) -> Figure:
    """E_gen vs α, one panel per parameter varied around the baseline (the most common
    value of each), one row per task setting when the sweep crosses tasks with inits."""
    curves = build_curves(stats, theory_curves)
    if not curves:
        raise FigureInputError("no results to plot")
    rows, panel_params = _layout(curves)
    columns = max(1, len(panel_params))
    # A single row of four or more panels wraps into two rows (readable at page width).
    wrap = 2 if len(rows) == 1 and columns > 3 else 1
    per_row = -(-columns // wrap)
    figure = new_figure(4.6 * per_row + 0.4, 3.7 * len(rows) * wrap + 0.9)
    grid = figure.subplots(len(rows) * wrap, per_row, squeeze=False)
    for extra in range(columns, per_row * wrap):
        grid[len(rows) * wrap - 1, extra % per_row].set_visible(False)
    for r, (row_params, members) in enumerate(rows):
        baseline = {p: mode([c.params.get(p) for c in members]) for p in panel_params}
        panels: dict[str, list[tuple[Curve, str]]] = {p: [] for p in panel_params}
        for curve in members:
            differing = [p for p in panel_params if curve.params.get(p) != baseline[p]]
            if not differing:
                for p in panel_params:
                    panels[p].append((curve, "baseline"))
            else:
                panels[differing[0]].append((curve, "varied"))
        if not panel_params:
            panels = {"": [(curve, "varied") for curve in members]}
        for c, (param, entries) in enumerate(panels.items()):
            ax = grid[r * wrap + c // per_row, c % per_row]
            entries.sort(key=lambda e: sort_key(e[0].params.get(param)) if param else (0, 0))
            colours = _palette(len(entries))
            for (curve, role), colour in zip(entries, colours, strict=True):
                if param:
                    text = f"{symbol(param)} = {fmt_value(curve.params.get(param))}"
                    others = [
                        p for p in panel_params if p != param and curve.params.get(p) != baseline[p]
                    ]
                    if others:
                        text += f" ({assignment(curve.params, others)})"
                    if role == "baseline":
                        text += " (baseline)"
                else:
                    text = assignment(curve.params, varied([m.params for m in members])) or "all"
                _draw(ax, curve, colour, text)
            heading = f"varying {label(param)}" if param else "all configs"
            if row_params:
                heading = f"{assignment(row_params, row_params)}\n{heading}"
            ax.set_title(heading, fontsize=9.5)
            _finish_axes(ax, yscale)
            ax.legend(fontsize=7.5, loc="best", framealpha=0.85)
    key = [
        Line2D([], [], color="0.2", linestyle="-", label=r"replica theory ($D\to\infty$)"),
        Line2D(
            [],
            [],
            color="0.2",
            marker="o",
            linestyle="none",
            label=r"simulation: mean $\pm$ 1.96 SEM over seeds",
        ),
    ]
    figure.legend(handles=key, loc="outside lower center", ncols=2, fontsize=9, frameon=False)
    subtitle = fixed_summary([c.params for c in curves])
    figure.suptitle(f"{title}: generalization error vs α\n{subtitle}", fontsize=11)
    return figure


def _palette(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def regimes_figure(
    title: str, stats: list[ConfigStats], theory_curves: TheoryCurves, yscale: str = "log"
) -> Figure:
    """The four-regime figure: E_gen vs α with regimes as colours and ground truths
    (ω, ρ_FT, ρ_PT) as line styles.

    A colour belongs to an init *setting* (the non-task parameters), named by its most
    common theory label over the ground truths; where the classifier labels the setting
    differently on some ground truth (the label depends on E|β*_FT|), the legend says so.
    """
    curves = build_curves(stats, theory_curves)
    if not curves:
        raise FigureInputError("no results to plot")
    names = varied([c.params for c in curves])
    truth_names = [n for n in names if n in TASK_PARAMS]
    init_names = [n for n in names if n not in TASK_PARAMS]
    truths = sorted(
        {tuple(c.params.get(n) for n in truth_names) for c in curves},
        key=lambda key: [sort_key(v) for v in key],
    )
    settings: dict[tuple[Any, ...], list[Curve]] = {}
    for curve in curves:
        settings.setdefault(tuple(curve.params.get(n) for n in init_names), []).append(curve)
    fallback = iter(_palette(10))
    used: set[str] = set()
    handles = []
    figure = new_figure(9.5, 6.4)
    ax = figure.subplots()
    for members in settings.values():
        labels = [c.regime for c in members if c.regime]
        main = mode(labels) if labels else None
        if main in REGIME_COLOURS and main not in used:
            colour: Any = REGIME_COLOURS[main]
            used.add(main)
        else:
            colour = next(fallback)
        for curve in members:
            truth = truths.index(tuple(curve.params.get(n) for n in truth_names))
            style = LINE_STYLES[truth % len(LINE_STYLES)]
            _draw(ax, curve, colour, None, style, MARKERS[truth % len(MARKERS)])
        name = REGIME_NAMES.get(main or "", main or "?")
        text = f"{name}: {assignment(members[0].params, init_names)}"
        odd = [c for c in members if c.regime and c.regime != main]
        for curve in odd:
            text += f"\n   (theory label {curve.regime} at {assignment(curve.params, truth_names)})"
        handles.append(Patch(color=colour, label=text))
    _finish_axes(ax, yscale)
    ax.set_ylabel(GEN_ERROR_LABEL)
    truth_handles = [
        Line2D(
            [],
            [],
            color="0.2",
            linestyle=LINE_STYLES[i % len(LINE_STYLES)],
            marker=MARKERS[i % len(MARKERS)],
            markersize=4,
            label=assignment(dict(zip(truth_names, key, strict=True)), truth_names) or "task",
        )
        for i, key in enumerate(truths)
    ]
    first = ax.legend(
        handles=handles,
        title="regime (theory label of the init setting)",
        fontsize=7.5,
        title_fontsize=8,
        loc="lower left",
        framealpha=0.9,
    )
    ax.add_artist(first)
    ax.legend(
        handles=truth_handles,
        title="ground truth",
        fontsize=8,
        title_fontsize=8.5,
        loc="upper right",
        framealpha=0.9,
    )
    subtitle = fixed_summary([c.params for c in curves])
    figure.suptitle(
        f"{title}: the four fine-tuning regimes\n{subtitle} — lines: replica theory; "
        r"markers: simulation mean $\pm$ 1.96 SEM",
        fontsize=10.5,
    )
    return figure


__all__ = ["PARAM_ORDER", "build_curves", "gen_error_figure", "regimes_figure"]
