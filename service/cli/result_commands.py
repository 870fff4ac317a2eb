"""Client commands about results: ``results`` (a table or JSON), ``export`` (CSV or
Parquet), ``plot`` (a server-rendered figure) and ``report`` (theory vs simulation)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from service.cli import render
from service.cli.app import ApiKey, Json, Url, app, emit, note, open_client, terminal_width

Sweep = Annotated[str | None, typer.Option("--sweep", help="only this sweep's trials")]
Regime = Annotated[str | None, typer.Option("--regime", help="theory regime(s), e.g. IV or II,IV")]
Where = Annotated[
    list[str] | None,
    typer.Option(
        "--where",
        metavar="NAME=VALUE",
        help="any /v1/results filter, e.g. lambda_pt_lt=-0.5 (repeatable)",
    ),
]
FigureKind = Literal["gen_error", "regimes", "l_order", "pd", "phase", "scatter"]
ExportFormat = Literal["csv", "parquet"]
SweepId = Annotated[str, typer.Argument(help="the sweep")]


def result_filters(
    sweep: str | None, regime: str | None, where: list[str] | None
) -> dict[str, str]:
    """``--sweep``, ``--regime`` and every ``--where NAME=VALUE`` as the server's query
    names; a name given twice keeps both values (comma-joined)."""
    filters: dict[str, str] = {}
    for item in where or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(
                f"expects NAME=VALUE (e.g. lambda_pt_lt=-0.5), got {item!r}", param_hint="--where"
            )
        name = name.strip()
        filters[name] = f"{filters[name]},{value.strip()}" if name in filters else value.strip()
    if sweep:
        filters["sweep_id"] = sweep
    if regime:
        filters["regime_theory"] = regime
    return filters


@app.command(
    "results",
    rich_help_panel="Results",
    epilog="Example: sweeps results --sweep ID --regime IV --where lambda_pt_lt=-0.5 --sort alpha",
)
def results_command(
    sweep: Sweep = None,
    regime: Regime = None,
    where: Where = None,
    limit: Annotated[int, typer.Option(help="rows per page")] = 50,
    sort: Annotated[str | None, typer.Option(help="a column; a leading - sorts descending")] = None,
    every_page: Annotated[
        bool, typer.Option("--all", help="every page, not just the first")
    ] = False,
    url: Url = None,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """Results beside their theory predictions, filtered by regime and any parameter."""
    filters: dict[str, Any] = result_filters(sweep, regime, where)
    if sort:
        filters["sort"] = sort
    cursor = filters.pop("cursor", None)
    with open_client(url, api_key=api_key) as client:
        if every_page:
            items, next_cursor = list(client.results(page_size=limit, **filters)), None
        else:
            page = client.result_page(limit=limit, cursor=cursor, **filters)
            items, next_cursor = page.items, page.next_cursor
    if as_json:
        body = {
            "items": [item.model_dump(mode="json") for item in items],
            "next_cursor": next_cursor,
        }
        emit(json.dumps(body, indent=2))
        return
    table, hidden = render.results_table(items, terminal_width())
    emit(table)
    if hidden:
        note(f"({hidden} columns hidden to fit the terminal; --json shows everything)")
    if next_cursor:
        note(f"… more: add --where cursor={next_cursor}  (or --all)")


@app.command(
    "export",
    rich_help_panel="Results",
    epilog="Example: sweeps export --sweep ID --format parquet -o results.parquet",
)
def export_command(
    sweep: Sweep = None,
    regime: Regime = None,
    where: Where = None,
    format: Annotated[ExportFormat, typer.Option("--format", help="file format")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file to write (default results.FORMAT)")
    ] = None,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Stream every matching result into a CSV or Parquet file."""
    target = output or Path(f"results.{format}")
    with open_client(url, api_key=api_key) as client:
        client.export(target, format=format, **result_filters(sweep, regime, where))
    note(f"wrote {target}")


@app.command(
    "plot",
    rich_help_panel="Results",
    epilog="Example: sweeps plot ID --kind gen_error --theory-sweep THEORY_ID -o gen_error.png",
)
def plot_command(
    sweep_id: SweepId,
    kind: Annotated[FigureKind, typer.Option("--kind", help="which figure")],
    format: Annotated[Literal["png", "svg"], typer.Option("--format", help="image format")] = "png",
    theory_sweep: Annotated[
        str | None, typer.Option("--theory-sweep", help="a dln_theory sweep for the lines")
    ] = None,
    x: Annotated[str | None, typer.Option("--x", help="maps: parameter on the x axis")] = None,
    y: Annotated[str | None, typer.Option("--y", help="maps: parameter on the y axis")] = None,
    yscale: Annotated[Literal["log", "linear"], typer.Option(help="y axis scale")] = "log",
    source: Annotated[
        Literal["theory", "empirical"], typer.Option(help="maps: theory or measured values")
    ] = "theory",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file to write (default ID-KIND.FORMAT)")
    ] = None,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Render a figure of a sweep on the server (PNG or SVG) and write it to a file."""
    target = output or Path(f"{sweep_id[:8]}-{kind}.{format}")
    options = {"theory_sweep": theory_sweep, "x": x, "y": y, "yscale": yscale, "source": source}
    with open_client(url, api_key=api_key) as client:
        content = client.figure(sweep_id, kind, format=format, path=target, **options)
    note(f"wrote {target} ({len(content) / 1024:.0f} KiB)")


@app.command("report", rich_help_panel="Results", epilog="Example: sweeps report ID --worst 5")
def report_command(
    sweep_id: SweepId,
    floor: Annotated[float, typer.Option(help="stopping-rule floor on E_gen")] = 1e-2,
    worst: Annotated[int, typer.Option(help="how many worst configs to list")] = 10,
    classifier: Annotated[
        str, typer.Option(help="regime classifier: regimes-v2 (default) or regimes-v1")
    ] = "regimes-v2",
    url: Url = None,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """Theory vs simulation agreement of a sweep: 95% coverage, per regime, worst configs."""
    with open_client(url, api_key=api_key) as client:
        report = client.report(sweep_id, floor=floor, worst=worst, classifier=classifier)
    emit(report.model_dump_json(indent=2) if as_json else render.report_text(report))
