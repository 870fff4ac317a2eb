"""The history figure of one benchmark metric: its value per run (labelled by commit),
the band of limits each run was judged by, and the outcome marked per point.  Pure: a
``MetricHistory`` in, image bytes out."""

from __future__ import annotations

from api_schemas.benchmarks import MetricHistory
from service.figures.common import new_figure, to_bytes

OUTCOME_COLOURS = {
    "regression": "#d62728",
    "improvement": "#2ca02c",
    "unchanged": "#1f77b4",
    "insufficient_data": "#7f7f7f",
    "error": "#000000",
}


def history_figure(history: MetricHistory, fmt: str = "png") -> bytes:
    """Value per commit with the threshold band (runs without limits leave a gap)."""
    figure = new_figure(8.0, 4.0)
    axes = figure.add_subplot(1, 1, 1)
    points = history.points
    xs = list(range(len(points)))
    values = [p.value if p.value is not None else float("nan") for p in points]
    lower = [p.lower if p.lower is not None else float("nan") for p in points]
    upper = [p.upper if p.upper is not None else float("nan") for p in points]
    axes.fill_between(
        xs,
        lower,
        upper,
        color="#1f77b4",
        alpha=0.15,
        step="mid",
        label="threshold band (judged limits)",
    )
    axes.plot(xs, values, color="#1f77b4", linewidth=1.0)
    for outcome, colour in OUTCOME_COLOURS.items():
        chosen = [
            (x, v) for x, v, p in zip(xs, values, points, strict=True) if p.outcome == outcome
        ]
        if chosen:
            axes.scatter(*zip(*chosen, strict=True), color=colour, s=24, label=outcome, zorder=3)
    axes.set_xticks(xs, [(p.commit or p.run_id)[:8] for p in points], rotation=45, fontsize=7)
    axes.set_xlabel("commit (oldest first)")
    axes.set_ylabel(history.metric)
    machine = f", machine {history.machine}" if history.machine else ""
    axes.set_title(f"{history.suite}: {history.metric}{machine}", fontsize=9)
    if points:
        axes.legend(fontsize=7, loc="best")
    return to_bytes(figure, fmt)
