"""A sampled point's label, from the results of its trials (pure, over plain records).

- ``regime_theory`` / ``regime_empirical``: the majority label over the point's seeds;
  a tie goes to the tied label that the theory gives (``regime_theory``), else to the
  first in regime order (I, II, III, IV), so the label is deterministic.
- a numeric column with thresholds t_1 < … < t_m: the mean over seeds, as its bucket
  (``"<t_1"``, ``"[t_1,t_2)"``, …, ``">=t_m"``).

A point whose trials have no value (failed, cancelled, not finished) has label None and
is ignored when cells are compared.

With ``diagnostics`` (regime labels only) a point also carries the mean (ℓ-order, PD)
the label was classified from, and :func:`comparator` lets a cell count as mixed when
the ranges of (ℓ, PD) over its points could hold another regime under the default
classifier's thresholds (``workers.theory.regimes.possible_labels``: the box in (ℓ, PD)
for regimes-v1, in (ℓ, p = PD/(1 − ℓ)) for regimes-v2), although its points agree: small
islands of a regime between grid points (regime I near λ_PT = −1) are found that way.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.refine.cells import Compare
from service.refine.lattice import Lattice, Point
from workers.theory import regimes

REGIME_ORDER = ("I", "II", "III", "IV")
# The diagnostics a regime label is classified from.
DIAGNOSTICS = {
    "regime_theory": ("l_order_theory", "pd_theory"),
    "regime_empirical": ("l_order_empirical", "pd_empirical"),
}


@dataclass(frozen=True)
class PointValue:
    """A point's label and, for regime labels, the mean (ℓ, PD) over its seeds."""

    label: str
    l_order: float | None = None
    pd: float | None = None


def bucket_names(thresholds: Sequence[float]) -> list[str]:
    """Names of the m + 1 buckets cut by ``thresholds`` (lowest first)."""
    cuts = [f"{t:g}" for t in thresholds]
    if not cuts:
        return []
    middle = [f"[{a},{b})" for a, b in zip(cuts, cuts[1:], strict=False)]
    return [f"<{cuts[0]}", *middle, f">={cuts[-1]}"]


def label_order(on: str, thresholds: Sequence[float]) -> list[str]:
    """Every label ``label`` can produce, in display order."""
    return list(REGIME_ORDER) if on.startswith("regime_") else bucket_names(thresholds)


def _majority(values: list[str], theory: list[str]) -> str:
    counts = Counter(values)
    top = max(counts.values())
    tied = [label for label, count in counts.items() if count == top]
    if len(tied) == 1:
        return tied[0]
    for label in Counter(theory).most_common():
        if label[0] in tied:
            return label[0]
    return min(tied, key=lambda v: (REGIME_ORDER.index(v) if v in REGIME_ORDER else 99, v))


def _mean(records: Sequence[Mapping[str, Any]], column: str) -> float | None:
    numbers = [float(r[column]) for r in records if r.get(column) is not None]
    numbers = [v for v in numbers if math.isfinite(v)]
    return sum(numbers) / len(numbers) if numbers else None


def point_value(
    records: Sequence[Mapping[str, Any]], on: str, thresholds: Sequence[float]
) -> PointValue | None:
    """The value of one point from its trials' records (see the module docstring)."""
    if on in DIAGNOSTICS:
        values = [r[on] for r in records if r.get(on)]
        if not values:
            return None
        label = _majority(values, [r["regime_theory"] for r in records if r.get("regime_theory")])
        l_column, pd_column = DIAGNOSTICS[on]
        return PointValue(label, _mean(records, l_column), _mean(records, pd_column))
    mean = _mean(records, on)
    if mean is None:
        return None
    return PointValue(bucket_names(thresholds)[bisect_right(list(thresholds), mean)])


def regimes_possible(values: list[PointValue]) -> set[str]:
    """Labels met on the points, and every regime the classifier gives somewhere in
    the box spanned by their (ℓ, PD) (``workers.theory.regimes.possible_labels``)."""
    found = {v.label for v in values}
    spanned = [(v.l_order, v.pd) for v in values if v.l_order is not None and v.pd is not None]
    if spanned:
        found |= regimes.possible_labels([e for e, _ in spanned], [p for _, p in spanned])
    return found


def comparator(on: str, diagnostics: bool) -> Compare:
    """How a cell's point values are compared (``diagnostics``: regime labels only)."""
    if diagnostics and on in DIAGNOSTICS:
        return regimes_possible  # type: ignore[return-value]
    return lambda values: {v.label for v in values}  # type: ignore[attr-defined]


def label_map(values: Mapping[Point, PointValue | None]) -> dict[Point, str | None]:
    """``{point: label}`` (None where the point has no value)."""
    return {p: (v.label if v is not None else None) for p, v in values.items()}


def point_values(
    lattice: Lattice,
    records: Iterable[Mapping[str, Any]],
    on: str,
    thresholds: Sequence[float],
) -> dict[Point, PointValue | None]:
    """``{lattice point: value}`` for every record's point (records: ``params`` plus
    the ``label`` column, any status; those without a value only mark the point sampled).
    Records off the lattice (not a point of this box) are ignored."""
    grouped: dict[Point, list[Mapping[str, Any]]] = {}
    for record in records:
        point = lattice.locate(record["params"])
        if point is not None:
            grouped.setdefault(point, []).append(record)
    return {point: point_value(group, on, thresholds) for point, group in grouped.items()}
