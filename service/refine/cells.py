"""Cell subdivision: which cells of a refined box to split next (pure, over lattice points).

The mesh is a 2^d-tree over the initial grid's cells, and it is not stored anywhere: a
cell is split exactly when its centre is a known point (only that cell's split ever
asks for its centre), so the set of points a sweep has sampled determines every leaf.
A leaf is *mixed* when the labels met on its closed region (corners, and the points
finer neighbours placed on its faces) disagree; the boundary passes through it.

A round splits the mixed leaves, coarsest first, each split whole (all 3^d − 2^d new
points of the cell, less those already known) or not at all, while the round's new
points fit ``capacity``.  It stops with a reason instead when nothing is mixed
(``no_boundary`` on the bare initial grid, else ``resolution``), when every mixed leaf
is one lattice step wide (``resolution``), or when no split fits (``budget``).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

from service.refine.lattice import Lattice, Point

Label = Hashable
# The labels that may occur in a cell, from the values on its points (see ``distinct``).
Compare = Callable[[list[Label]], set[Label]]


@dataclass(frozen=True, order=True)
class Cell:
    """A cube of the lattice: ``origin`` (lowest corner) and ``size`` (lattice steps)."""

    size: int
    origin: Point

    def centre(self) -> Point:
        return tuple(o + self.size // 2 for o in self.origin)

    def children(self) -> list[Cell]:
        half = self.size // 2
        return [Cell(half, c) for c in itertools.product(*((o, o + half) for o in self.origin))]

    def split_points(self) -> list[Point]:
        """Every lattice point of the cell once it is split (corners included)."""
        half = self.size // 2
        return list(itertools.product(*((o, o + half, o + self.size) for o in self.origin)))


@dataclass(frozen=True)
class RoundPlan:
    """The next round: points to add, or why refinement stops; the mixed leaves now."""

    new_points: tuple[Point, ...]
    stop: str | None
    mixed: tuple[Cell, ...]


class Mesh:
    """The leaves implied by a set of known points, and which leaves touch a point."""

    def __init__(self, lattice: Lattice, known: Mapping[Point, object]) -> None:
        self.lattice = lattice
        self.known = known
        step0, top = lattice.step0, lattice.finest
        self.roots = [
            Cell(step0, origin)
            for origin in itertools.product(range(0, top, step0), repeat=lattice.dim)
        ]

    def is_split(self, cell: Cell) -> bool:
        """Whether ``cell`` has been split (its centre is a known point)."""
        return cell.size > 1 and cell.centre() in self.known

    def leaves(self) -> list[Cell]:
        out, stack = [], list(self.roots)
        while stack:
            cell = stack.pop()
            if self.is_split(cell):
                stack.extend(cell.children())
            else:
                out.append(cell)
        return sorted(out)

    def leaf_at(self, position: tuple[float, ...]) -> Cell:
        """The leaf holding ``position`` (lattice units; a point on a face goes up)."""
        step0, top = self.lattice.step0, self.lattice.finest
        origin = tuple(min(int(x // step0) * step0, top - step0) for x in position)
        cell = Cell(step0, origin)
        while self.is_split(cell):
            half = cell.size // 2
            origin = tuple(
                o + half if x >= o + half else o for o, x in zip(cell.origin, position, strict=True)
            )
            cell = Cell(half, origin)
        return cell

    def leaves_touching(self, point: Point) -> set[Cell]:
        """Leaves whose closed region holds the lattice point ``point``."""
        top = self.lattice.finest
        touching = set()
        for signs in itertools.product((-0.5, 0.5), repeat=len(point)):
            position = tuple(p + s for p, s in zip(point, signs, strict=True))
            if all(0 < x < top for x in position):
                touching.add(self.leaf_at(position))
        return touching

    def leaf_points(self, labels: Mapping[Point, Label | None]) -> dict[Cell, list[Point]]:
        """Labelled points on each leaf's closed region."""
        members: dict[Cell, list[Point]] = defaultdict(list)
        for point, label in labels.items():
            if label is not None:
                for leaf in self.leaves_touching(point):
                    members[leaf].append(point)
        return members


def distinct(values: list[Label]) -> set[Label]:
    """The default comparison: the labels themselves."""
    return set(values)


def mixed_leaves(
    mesh: Mesh, labels: Mapping[Point, Label | None], compare: Compare = distinct
) -> dict[Cell, set[Label]]:
    """``{leaf: labels that may occur in it}`` for the leaves where more than one may."""
    found = {}
    for leaf, points in mesh.leaf_points(labels).items():
        met = compare([labels[p] for p in points])
        if len(met) > 1:
            found[leaf] = met
    return found


def plan_round(
    lattice: Lattice,
    labels: Mapping[Point, Label | None],
    capacity: int,
    compare: Compare = distinct,
) -> RoundPlan:
    """The next round over ``labels`` (every sampled point; None: no label), adding at
    most ``capacity`` points (see the module docstring for the rules)."""
    mesh = Mesh(lattice, labels)
    mixed = sorted(mixed_leaves(mesh, labels, compare), key=lambda c: (-c.size, c.origin))
    if not mixed:
        refined = any(mesh.is_split(root) for root in mesh.roots)
        return RoundPlan((), "resolution" if refined else "no_boundary", ())
    splittable = [cell for cell in mixed if cell.size > 1]
    if not splittable:
        return RoundPlan((), "resolution", tuple(mixed))
    planned: dict[Point, None] = {}
    for cell in splittable:
        new = [p for p in cell.split_points() if p not in labels and p not in planned]
        if len(planned) + len(new) <= capacity:
            planned.update(dict.fromkeys(new))
    if not planned:
        return RoundPlan((), "budget", tuple(mixed))
    return RoundPlan(tuple(planned), None, tuple(mixed))
