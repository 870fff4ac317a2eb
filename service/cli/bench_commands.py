"""``sweeps bench run SUITE``: a benchmark run for CI, with its verdict as the exit code
(0 pass, 1 fail, 2 error, 3 inconclusive; ``--inconclusive-ok`` maps 3 to 0).  The
options and the JSON / JUnit reports are ``service.bench_cli``'s; this only mounts it."""

from __future__ import annotations

import typer

from service.cli.app import app

bench_app = typer.Typer(help="Benchmark runs from CI, with verdicts.", no_args_is_help=True)
app.add_typer(bench_app, name="bench", rich_help_panel="Results")


@bench_app.command(
    "run",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
    epilog="Example: sweeps bench run smoke --junit bench.xml --inconclusive-ok",
)
def bench_run_command(ctx: typer.Context) -> None:
    """Run SUITE, wait, print a table; options: sweeps bench run --help."""
    from service import bench_cli

    raise typer.Exit(bench_cli.main(["run", *ctx.args]))
