"""The one definition of a trial's result columns.

Everything that lists result columns derives from ``RESULT_COLUMNS``: the outcome record
workers return (``workers.records.TrialOutcome``), the store's writes and backfills, the
filters and sorts of ``GET /v1/results``, the page schema (``api_schemas.wire.ResultRead``),
the CSV/Parquet export (types from ``kind``), the figure records and the CLI table.  The
ORM model and the migrations restate the columns as storage; a test holds them equal.

Standard library only (see ``api_schemas.statuses``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ColumnKind = Literal["float", "int", "str", "bool", "json", "datetime"]
# Who fills a column: a worker's outcome, the store (derived from other columns), or
# the store when the trial finishes.
ColumnSource = Literal["worker", "derived", "store"]


@dataclass(frozen=True)
class ResultColumn:
    """One result column and where it shows.

    ``in_page``: part of a ``GET /v1/results`` item; ``in_export``: a CSV/Parquet column
    (JSON columns are written last, as compact JSON text); ``title`` and ``fmt``: shown in
    the CLI's results table (``None``: not shown).  Numeric float columns are range
    filters and sort keys (``<name>_lt=…``, ``sort=-<name>``).
    """

    name: str
    kind: ColumnKind
    description: str
    source: ColumnSource = "worker"
    in_page: bool = True
    in_export: bool = True
    title: str | None = None
    fmt: str = "{}"

    @property
    def filterable(self) -> bool:
        return self.kind == "float"


RESULT_COLUMNS: tuple[ResultColumn, ...] = (
    ResultColumn(
        "gen_error_sim",
        "float",
        "generalization error of the trained network (test MSE; test loss for nets)",
        title="E_gen sim",
        fmt="{:.4g}",
    ),
    ResultColumn(
        "gen_error_theory",
        "float",
        "finite-sample theory: argmin Q_k subject to X beta = y on the same instance",
        title="finite thy",
        fmt="{:.4g}",
    ),
    ResultColumn(
        "gen_error_asymptotic",
        "float",
        "replica theory (D -> infinity), shared by every seed and D of a parameter set",
        title="replica",
        fmt="{:.4g}",
    ),
    ResultColumn("residual_theory", "float", "gen_error_sim - gen_error_theory", source="derived"),
    ResultColumn(
        "residual_asymptotic", "float", "gen_error_sim - gen_error_asymptotic", source="derived"
    ),
    ResultColumn("regime_theory", "str", "regime label from the theory (I-IV)", title="regime"),
    ResultColumn("regime_empirical", "str", "regime label measured on the network", title="emp."),
    ResultColumn("l_order_theory", "float", "l-order of the theory (1 rich, 2 lazy)"),
    ResultColumn("pd_theory", "float", "pretraining dependence of the theory (-1..0)"),
    ResultColumn("l_order_empirical", "float", "l-order measured on the trained network"),
    ResultColumn("pd_empirical", "float", "pretraining dependence measured on the network"),
    ResultColumn("classifier_version", "str", "version of the regime classifier", in_page=False),
    ResultColumn("diverged", "bool", "training diverged (NaN/inf); a flagged result"),
    ResultColumn("stop_reason", "str", "why training stopped (converged, max_steps, ...)"),
    ResultColumn("wall_time_s", "float", "this trial's compute seconds", in_page=False),
    ResultColumn("device", "str", "cpu or the cuda device name", in_page=False),
    ResultColumn("dtype", "str", "floating-point type of the computation", in_page=False),
    ResultColumn("code_version", "str", "package version and git SHA", in_page=False),
    ResultColumn("metrics", "json", "every other measured quantity"),
    ResultColumn(
        "envelope",
        "json",
        "reproducibility envelope: code, library versions, device, dtype",
        in_export=False,
    ),
    ResultColumn("finished_at", "datetime", "when the trial finished", source="store"),
)

COLUMNS_BY_NAME: dict[str, ResultColumn] = {column.name: column for column in RESULT_COLUMNS}
# What a worker's outcome carries (the residuals are derived by the store).
OUTCOME_COLUMNS: tuple[ResultColumn, ...] = tuple(
    column for column in RESULT_COLUMNS if column.source == "worker"
)
FILTER_COLUMNS: tuple[str, ...] = tuple(c.name for c in RESULT_COLUMNS if c.filterable)
PAGE_COLUMNS: tuple[ResultColumn, ...] = tuple(c for c in RESULT_COLUMNS if c.in_page)
# Scalar columns (no JSON): what figures and reports read beside the parameters.
SCALAR_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in RESULT_COLUMNS if c.kind not in ("json", "datetime")
)


def residual(simulated: float | None, predicted: float | None) -> float | None:
    """``simulated - predicted``, or None when either is missing: the one place a
    residual is computed (on finish and on the replica backfill)."""
    if simulated is None or predicted is None:
        return None
    return simulated - predicted
