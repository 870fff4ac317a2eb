"""The estimated boundary of a refined box, and the label map it implies (pure).

- :func:`boundary_cells`: the mixed leaves (the boundary passes through each; its
  centre estimates the position to within half its width per axis);
- :func:`predict`: a label at any position of the box: the nearest labelled point among
  those on the closed region of the leaf that holds the position.  On a uniform grid
  (``max_depth = 0``) this is plain nearest-neighbour; on a refined mesh, leaves away
  from the boundary carry one label on all their points, so the map is exact there and
  staircased at the finest resolution along the boundary.  Figures and the benchmark
  both draw the map this way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from service.refine.cells import Cell, Label, Mesh, mixed_leaves
from service.refine.lattice import Lattice, Point


@dataclass(frozen=True)
class BoundaryCellEstimate:
    cell: Cell
    labels: tuple[Label, ...]
    depth: int
    lower: dict[str, float]
    upper: dict[str, float]
    centre: dict[str, float]
    halfwidth: float  # unit box coordinates (every axis spans 0..1)


def boundary_cells(
    lattice: Lattice, labels: Mapping[Point, Label | None], order: Sequence[Label] = ()
) -> list[BoundaryCellEstimate]:
    """The mixed leaves, finest last, with their extent in parameter units."""
    mesh = Mesh(lattice, labels)
    rank = {label: i for i, label in enumerate(order)}
    out = []
    for cell, met in sorted(mixed_leaves(mesh, labels).items(), key=lambda item: item[0]):
        upper = tuple(o + cell.size for o in cell.origin)
        centre = tuple(o + cell.size / 2 for o in cell.origin)
        out.append(
            BoundaryCellEstimate(
                cell=cell,
                labels=tuple(sorted(met, key=lambda v: (rank.get(v, len(rank)), str(v)))),
                depth=lattice.depth_of(cell.size),
                lower=lattice.params(cell.origin),
                upper=lattice.params(upper),
                centre={
                    a.name: a.at(c / lattice.finest)
                    for a, c in zip(lattice.axes, centre, strict=True)
                },
                halfwidth=cell.size / (2 * lattice.finest),
            )
        )
    return out


def predict(
    lattice: Lattice, labels: Mapping[Point, Label | None], units: np.ndarray
) -> list[Label | None]:
    """Labels at ``units`` (an (n, d) array of unit box coordinates; see the module
    docstring).  None where the leaf has no labelled point."""
    mesh = Mesh(lattice, labels)
    members = mesh.leaf_points(labels)
    top = lattice.finest
    positions = np.clip(np.asarray(units, dtype=float) * top, 0.0, top * (1 - 1e-12))
    cache: dict[Cell, tuple[np.ndarray, list[Label]]] = {}
    out: list[Label | None] = []
    for position in positions:
        leaf = mesh.leaf_at(tuple(position.tolist()))
        if leaf not in cache:
            points = members.get(leaf, [])
            cache[leaf] = (np.array(points, dtype=float), [labels[p] for p in points])
        coords, names = cache[leaf]
        if not names:
            out.append(None)
            continue
        nearest = int(np.argmin(((coords - position) ** 2).sum(axis=1)))
        out.append(names[nearest])
    return out


def grid_units(cells: int, dim: int = 2) -> np.ndarray:
    """Centres of a uniform ``cells``^dim grid of the unit box, first axis slowest."""
    ticks = (np.arange(cells) + 0.5) / cells
    mesh = np.meshgrid(*([ticks] * dim), indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)
