"""The phase diagram of a refine sweep: the label map its adaptive mesh implies.

Pure: a :class:`~service.refine.state.RefineView` in, a figure out.  The map is drawn at
the finest lattice resolution from the mesh (``service.refine.boundary.predict``: each
position takes the nearest labelled point of its leaf cell), in parameter units with log
axes where the box is logarithmic.  Over it: every leaf cell at its own resolution (thin
lines), the boundary cells (leaves whose points disagree, black outlines) and the sampled
points.  A 3-D box is drawn as the slice through the middle of its third axis.
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from service.figures.common import (
    REGIME_COLOURS,
    REGIME_NAMES,
    FigureInputError,
    fmt_value,
    label,
    new_figure,
    symbol,
)
from service.refine.boundary import boundary_cells, predict
from service.refine.cells import Cell, Mesh
from service.refine.state import RefineView

MAX_PIXELS = 512


def _colours(order: list[str]) -> dict[str, str]:
    if all(name in REGIME_COLOURS for name in order):
        return {name: REGIME_COLOURS[name] for name in order}
    cmap = colormaps["viridis"]
    return {name: cmap(i / max(1, len(order) - 1)) for i, name in enumerate(order)}


def _plane(view: RefineView, x: str | None, y: str | None) -> tuple[int, int, int | None]:
    """Axis indices of the map's x and y, and of the sliced third axis (if any)."""
    names = [axis.name for axis in view.lattice.axes]
    for which, given in (("x", x), ("y", y)):
        if given is not None and given not in names:
            raise FigureInputError(
                f"{which}={given!r} is not an axis of this refine box; axes: {', '.join(names)}"
            )
    chosen = [names.index(n) for n in (x, y) if n is not None]
    chosen += [i for i in range(len(names)) if i not in chosen][: 2 - len(chosen)]
    if x is None and y is not None:
        chosen.reverse()
    rest = [i for i in range(len(names)) if i not in chosen]
    return chosen[0], chosen[1], rest[0] if rest else None


def _rectangle(cell: Cell, ix: int, iy: int) -> list[tuple[int, int]]:
    x0, y0, s = cell.origin[ix], cell.origin[iy], cell.size
    return [(x0, y0), (x0 + s, y0), (x0 + s, y0 + s), (x0, y0 + s), (x0, y0)]


def refined_phase_figure(
    title: str, view: RefineView, x: str | None = None, y: str | None = None
) -> Figure:
    """The refine sweep's label map with its mesh, boundary cells and points."""
    lattice, labels = view.lattice, view.labels
    if not any(v is not None for v in labels.values()):
        raise FigureInputError(f"no {view.refine.label} labels in this sweep yet")
    ix, iy, iz = _plane(view, x, y)
    top = lattice.finest
    n = min(top, MAX_PIXELS)
    ticks = (np.arange(n) + 0.5) / n
    units = np.zeros((n * n, lattice.dim))
    gx, gy = np.meshgrid(ticks, ticks, indexing="xy")
    units[:, ix], units[:, iy] = gx.ravel(), gy.ravel()
    z_index = None
    if iz is not None:
        z_index = (top // 2 // lattice.step0) * lattice.step0  # a lattice plane of the grid
        units[:, iz] = z_index / top
    order = view.order
    colours = _colours(order)
    found = predict(lattice, labels, units)
    grid = np.array([order.index(v) if v in order else np.nan for v in found], dtype=float)
    grid = grid.reshape(n, n)

    figure = new_figure(8.2, 6.0)
    ax = figure.subplots()
    ax_x, ax_y = lattice.axes[ix], lattice.axes[iy]
    edges_x = [ax_x.at(i / n) for i in range(n + 1)]
    edges_y = [ax_y.at(i / n) for i in range(n + 1)]
    cmap = ListedColormap([colours[name] for name in order]).with_extremes(bad="0.85")
    ax.pcolormesh(
        edges_x, edges_y, np.ma.masked_invalid(grid), cmap=cmap, vmin=-0.5,
        vmax=len(order) - 0.5, shading="flat", rasterized=True,
    )  # fmt: skip

    def native(points: list[tuple[int, int]]) -> list[tuple[float, float]]:
        return [(lattice.value(ix, a), lattice.value(iy, b)) for a, b in points]

    mesh = Mesh(lattice, labels)
    in_plane = [
        c for c in mesh.leaves() if iz is None or c.origin[iz] <= z_index < c.origin[iz] + c.size
    ]
    ax.add_collection(
        LineCollection([native(_rectangle(c, ix, iy)) for c in in_plane], colors="white",
                       linewidths=0.3, alpha=0.6)
    )  # fmt: skip
    boundary = [
        b.cell
        for b in boundary_cells(lattice, labels, order)
        if iz is None or b.cell.origin[iz] <= z_index <= b.cell.origin[iz] + b.cell.size
    ]
    ax.add_collection(
        LineCollection([native(_rectangle(c, ix, iy)) for c in boundary], colors="black",
                       linewidths=0.5)
    )  # fmt: skip
    sampled = [p for p in labels if iz is None or p[iz] == z_index]
    ax.scatter(*zip(*native([(p[ix], p[iy]) for p in sampled]), strict=True), s=3, c="black",
               linewidths=0)  # fmt: skip
    for axis, setter in ((ax_x, ax.set_xscale), (ax_y, ax.set_yscale)):
        if axis.log:
            setter("log")
    ax.set_xlim(ax_x.low, ax_x.high)
    ax.set_ylim(ax_y.low, ax_y.high)
    ax.set_xlabel(label(ax_x.name) + ("  (log)" if ax_x.log else ""))
    ax.set_ylabel(label(ax_y.name) + ("  (log)" if ax_y.log else ""))
    present = [name for name in order if name in set(found)]
    names = REGIME_NAMES if view.refine.label.startswith("regime_") else {}
    ax.legend(
        handles=[Patch(color=colours[r], label=names.get(r, r)) for r in present],
        title=view.refine.label,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        title_fontsize=8.5,
    )
    where = ""
    if iz is not None:
        axis = lattice.axes[iz]
        where = f", slice {symbol(axis.name)} = {fmt_value(lattice.value(iz, z_index))}"
    widest = max((b.size for b in boundary), default=1)
    resolution = ", ".join(
        f"{symbol(a.name)} {a.width(widest / top):.3g}{' dec' if a.log else ''}"
        for a in lattice.axes
    )
    figure.suptitle(
        f"{title}: adaptive phase diagram over {symbol(ax_x.name)} × {symbol(ax_y.name)}{where}\n"
        f"{len(labels)} points, {len(boundary)} boundary cells (black), at most "
        f"{resolution} wide",
        fontsize=10,
    )
    return figure
