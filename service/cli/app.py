"""The ``sweeps`` Typer app and what every command shares: the client options, the
consoles, the exit codes and the output helpers.

Exit codes: 0 ok; 1 the thing asked for failed (a sweep that ended failed, cancelled or
partial; a wait that timed out); 2 a usage error or an HTTP error (unreachable server,
4xx/5xx).  Output goes through ``emit``; a closed pipe (``sweeps results | head``) ends
the command quietly, with 0, at the entry point (``service.cli.main``).
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from finetune_sweeps import Client

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="sweeps",
    help=(
        "Sweeps over pretraining and fine-tuning parameters, run on Ray, stored beside "
        "their theory.\n\n"
        "Server: serve, worker, migrate.  Client: login, plan, submit, watch, status, "
        "cancel, results, export, plot, report.  The client commands find the server "
        "through --url, SWEEPS_URL or the config file written by sweeps login "
        "(default http://127.0.0.1:8000)."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="server URL; default SWEEPS_URL, the config file, or http://127.0.0.1:8000",
        show_default=False,
    ),
]
Submitter = Annotated[
    str | None,
    typer.Option("--submitter", help="recorded as the sweep's submitter (SWEEPS_SUBMITTER)"),
]
ApiKey = Annotated[
    str | None,
    typer.Option("--api-key", help="API key; default SWEEPS_API_KEY or the config file"),
]
Json = Annotated[bool, typer.Option("--json", help="print the API's JSON instead of text")]


def open_client(url: str | None, submitter: str | None = None, api_key: str | None = None):
    """The Python client the command works through (url/key/submitter resolved there)."""
    return Client(url, submitter=submitter, api_key=api_key)


def stdout_console() -> Console:
    """stdout: the terminal's width on a terminal; elsewhere wide enough never to wrap."""
    width = None if sys.stdout.isatty() else 10_000
    return Console(file=sys.stdout, width=width, highlight=False, soft_wrap=True)


def stderr_console() -> Console:
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def terminal_width() -> int | None:
    """Characters a table may take: the terminal's width, or ``None`` (no limit) when
    stdout is a file or a pipe.  ``COLUMNS`` overrides."""
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    if not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size().columns


def emit(renderable: Any = "") -> None:
    """Print to stdout (text verbatim, or a Rich renderable).  A closed pipe raises
    ``BrokenPipeError``, which ends the command quietly (``service.cli.main``)."""
    if not isinstance(renderable, str):
        console = stdout_console()
        with console.capture() as captured:
            console.print(renderable, markup=False)
        # Left-aligned last columns are padded by Rich; the lines need no trailing blanks.
        renderable = "\n".join(line.rstrip() for line in captured.get().splitlines())
    sys.stdout.write(renderable + "\n")
    sys.stdout.flush()


def note(text: str) -> None:
    """One line for the human on stderr (never part of the output a script reads)."""
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except BrokenPipeError:
        pass


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``sweeps: <message>`` and return the Exit to raise."""
    note(f"sweeps: {message}")
    return typer.Exit(code)
