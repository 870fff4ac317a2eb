"""Maps over two parameters: ℓ-order and PD heat maps, and the regime phase diagram.

A cell holds every record with that (x, y) pair; a heat map shows the mean of the
diagnostic (THEORY.md §4: ℓ ∈ [1, 2], PD ∈ [−1, 0]), the phase diagram the most common
theory regime label.  Axes are the value lists themselves (evenly spaced cells, ticks
labelled with the values), so log-spaced and zero-containing grids both read well.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from service.figures.common import (
    REGIME_COLOURS,
    REGIME_NAMES,
    FigureInputError,
    finite,
    fixed_summary,
    fmt_value,
    label,
    mode,
    new_figure,
    sort_key,
    symbol,
    varied,
)

MAP_ORDER = ("lambda_pt", "gamma_ft", "c_pt", "omega", "rho_ft", "rho_pt", "alpha", "a_pt")
VALUES = {
    "l_order": (
        "l_order",
        r"$\ell$-order  (1 = rich / $\ell_1$-like, 2 = lazy / $\ell_2$-like)",
        (1.0, 2.0),
        "viridis",
    ),
    "pd": (
        "pd",
        "pretraining dependence PD  (−1 = PT-dependent, 0 = PT-independent)",
        (-1.0, 0.0),
        "magma",
    ),
}
MAX_TICKS = 9
ANNOTATE_CELLS = 120


def choose_axes(records: list[dict[str, Any]], x: str | None, y: str | None) -> tuple[str, str]:
    """The map's (x, y): the requested names, else the first two varied parameters in
    ``MAP_ORDER`` (λ_PT, γ_FT, c_PT, …)."""
    params = [r["params"] | {"alpha": r["params"].get("alpha")} for r in records]
    candidates = [n for n in varied(params, exclude=("seed",)) if n != "D"]
    candidates.sort(key=lambda n: MAP_ORDER.index(n) if n in MAP_ORDER else len(MAP_ORDER))
    for name, given in (("x", x), ("y", y)):
        if given is not None and given not in candidates:
            raise FigureInputError(
                f"{name}={given!r} is not a parameter this sweep varies; varied: "
                f"{', '.join(candidates) or 'none'}"
            )
    chosen = [n for n in (x, y) if n is not None]
    for name in candidates:
        if len(chosen) == 2:
            break
        if name not in chosen:
            chosen.append(name)
    if len(chosen) < 2 or chosen[0] == chosen[1]:
        raise FigureInputError(
            "a map needs two parameters the sweep varies (e.g. axes lambda_pt and gamma_ft); "
            f"this sweep varies: {', '.join(candidates) or 'none'}"
        )
    if x is None and y is not None:
        chosen.reverse()
    return chosen[0], chosen[1]


def _grid(records: list[dict[str, Any]], x: str, y: str):
    xs = sorted({r["params"].get(x) for r in records}, key=sort_key)
    ys = sorted({r["params"].get(y) for r in records}, key=sort_key)
    cells: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for record in records:
        i = ys.index(record["params"].get(y))
        j = xs.index(record["params"].get(x))
        cells.setdefault((i, j), []).append(record)
    return xs, ys, cells


def _ticks(ax: Axes, xs: list[Any], ys: list[Any], x: str, y: str) -> None:
    for values, set_ticks, set_labels in (
        (xs, ax.set_xticks, ax.set_xticklabels),
        (ys, ax.set_yticks, ax.set_yticklabels),
    ):
        step = max(1, int(np.ceil(len(values) / MAX_TICKS)))
        positions = list(range(0, len(values), step))
        set_ticks(positions)
        set_labels([fmt_value(values[p]) for p in positions], fontsize=8)
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(y))


def heatmap_figure(
    title: str,
    records: list[dict[str, Any]],
    kind: str,
    x: str | None,
    y: str | None,
    source: str = "theory",
) -> Figure:
    """Mean ℓ-order or PD per (x, y) cell, from the theory or the measured (empirical) values."""
    column, text, (low, high), cmap = VALUES[kind]
    column = f"{column}_{source}"
    x, y = choose_axes(records, x, y)
    xs, ys, cells = _grid(records, x, y)
    grid = np.full((len(ys), len(xs)), np.nan)
    for (i, j), members in cells.items():
        values = [r[column] for r in members if finite(r.get(column))]
        if values:
            grid[i, j] = float(np.mean(values))
    if np.all(np.isnan(grid)):
        raise FigureInputError(f"no {column} values in this sweep")
    figure = new_figure(7.6, 5.8)
    ax = figure.subplots()
    image = ax.imshow(
        np.ma.masked_invalid(grid),
        origin="lower",
        aspect="auto",
        cmap=colormaps[cmap].with_extremes(bad="0.85"),
        vmin=low,
        vmax=high,
        interpolation="nearest",
    )
    bar = figure.colorbar(image, ax=ax)
    bar.set_label(text, fontsize=9)
    if grid.size <= ANNOTATE_CELLS:
        for (i, j), value in np.ndenumerate(grid):
            if np.isfinite(value):
                shade = (value - low) / (high - low)
                ax.text(
                    j,
                    i,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if shade < 0.55 else "black",
                )
    _ticks(ax, xs, ys, x, y)
    name = r"$\ell$-order" if kind == "l_order" else "pretraining dependence PD"
    others = fixed_summary([r["params"] for r in records])
    figure.suptitle(
        f"{title}: {name} ({source}) over {symbol(x)} × {symbol(y)}\n{others}", fontsize=10
    )
    return figure


def phase_figure(title: str, records: list[dict[str, Any]], x: str | None, y: str | None) -> Figure:
    """The theory regime label (most common per cell) over two parameters."""
    x, y = choose_axes(records, x, y)
    xs, ys, cells = _grid(records, x, y)
    regimes = list(REGIME_COLOURS)
    grid = np.full((len(ys), len(xs)), np.nan)
    for (i, j), members in cells.items():
        labels = [r["regime_theory"] for r in members if r.get("regime_theory") in regimes]
        if labels:
            grid[i, j] = regimes.index(mode(labels))
    if np.all(np.isnan(grid)):
        raise FigureInputError("no regime_theory labels in this sweep")
    figure = new_figure(7.8, 5.8)
    ax = figure.subplots()
    cmap = ListedColormap([REGIME_COLOURS[r] for r in regimes]).with_extremes(bad="0.85")
    ax.imshow(
        np.ma.masked_invalid(grid),
        origin="lower",
        aspect="auto",
        cmap=cmap,
        vmin=-0.5,
        vmax=len(regimes) - 0.5,
        interpolation="nearest",
    )
    if grid.size <= ANNOTATE_CELLS:
        for (i, j), value in np.ndenumerate(grid):
            if np.isfinite(value):
                ax.text(
                    j, i, regimes[int(value)], ha="center", va="center", fontsize=7.5, color="white"
                )
    _ticks(ax, xs, ys, x, y)
    present = sorted({regimes[int(v)] for v in grid[np.isfinite(grid)]}, key=regimes.index)
    ax.legend(
        handles=[Patch(color=REGIME_COLOURS[r], label=REGIME_NAMES[r]) for r in present],
        title="theory regime",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        title_fontsize=8.5,
    )
    others = fixed_summary([r["params"] for r in records])
    figure.suptitle(
        f"{title}: regime phase diagram over {symbol(x)} × {symbol(y)}\n{others}", fontsize=10
    )
    return figure
