"""Theory vs simulation: one point per config, the identity line, regimes as colours."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from service.figures.common import REGIME_COLOURS, REGIME_NAMES, FigureInputError, new_figure
from service.report import DEFAULT_FLOOR, Z_95, ConfigStats, judge


def scatter_figure(title: str, stats: list[ConfigStats], floor: float = DEFAULT_FLOOR) -> Figure:
    """Simulation mean ± 1.96·SEM (y) against the replica theory (x), log-log.

    Filled markers count in the agreement fraction; hollow ones are excluded from it
    (not converged, or both values under the stopping-rule floor).
    """
    rows = [
        (item, judge(item, floor))
        for item in stats
        if item.mean is not None and item.theory is not None and item.mean > 0 and item.theory > 0
    ]
    if not rows:
        raise FigureInputError("no config has both a simulated mean and a theory value")
    figure = new_figure(7.2, 6.4)
    ax = figure.subplots()
    for regime in (*REGIME_COLOURS, None):
        members = [(s, v) for s, v in rows if s.regime_theory == regime]
        if not members:
            continue
        colour = REGIME_COLOURS.get(regime or "", "0.4")
        for counted in (True, False):
            chosen = [(s, v) for s, v in members if (v.verdict in ("agree", "disagree")) == counted]
            if not chosen:
                continue
            xs = [s.theory for s, _ in chosen]
            ys = [s.mean for s, _ in chosen]
            low = [min(Z_95 * (s.sem or 0.0), 0.999 * s.mean) for s, _ in chosen]
            high = [Z_95 * (s.sem or 0.0) for s, _ in chosen]
            ax.errorbar(
                xs,
                ys,
                yerr=[low, high],
                fmt="o",
                markersize=5,
                capsize=2,
                linewidth=0.8,
                color=colour,
                markerfacecolor=colour if counted else "white",
                markeredgecolor=colour,
            )
    values = np.array([v for s, _ in rows for v in (s.theory, s.mean)])
    lo, hi = values.min() / 1.6, values.max() * 1.6
    ax.plot([lo, hi], [lo, hi], color="0.3", linewidth=1.0, linestyle="--")
    ax.axhspan(lo, floor, color="0.92", zorder=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel(r"replica theory $E_{gen}$ at the simulated $\alpha$ ($D\to\infty$)")
    ax.set_ylabel(r"simulation $E_{gen}$: mean $\pm$ 1.96 SEM over seeds")
    ax.grid(True, which="major", alpha=0.3)
    present = [r for r in REGIME_COLOURS if any(s.regime_theory == r for s, _ in rows)]
    handles = [
        Line2D([], [], marker="o", linestyle="none", color=REGIME_COLOURS[r], label=REGIME_NAMES[r])
        for r in present
    ]
    handles += [
        Line2D([], [], color="0.3", linestyle="--", label="identity (theory = simulation)"),
        Line2D(
            [],
            [],
            marker="o",
            linestyle="none",
            color="0.3",
            markerfacecolor="white",
            label="hollow: not converged or below the stopping-rule floor",
        ),
    ]
    ax.legend(handles=handles, fontsize=7.5, loc="upper left", framealpha=0.9)
    counted = [v for _, v in rows if v.verdict in ("agree", "disagree")]
    inside = sum(1 for v in counted if v.verdict == "agree")
    share = f"{inside}/{len(counted)} configs inside the 95% interval" if counted else ""
    figure.suptitle(
        f"{title}: theory vs simulation\n{share} (grey band: E < {floor:g})", fontsize=10.5
    )
    return figure
