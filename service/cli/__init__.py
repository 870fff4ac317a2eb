"""The ``sweeps`` command line, built on the Python client (``finetune_sweeps``).

- ``app``: the Typer app and the shared options, output helpers and exit codes;
- ``server_commands``: serve, worker, migrate (server wiring in ``service.wiring``);
- ``sweep_commands`` / ``result_commands``: the client commands;
- ``render``: pure rendering of the schema models; ``progress``: the live display.

``main`` is the console script (``[project.scripts] sweeps``) and what tests call.
"""

from __future__ import annotations

import os
import sys

import typer
from typer import rich_utils

from finetune_sweeps import SweepsError, WaitTimeout
from service.cli.app import EXIT_FAILED, EXIT_OK, EXIT_USAGE, OutputClosed, app, note

# isort: off
# Registration order is the order of the help's panels: server, sweeps, results.
from service.cli import server_commands  # noqa: E402, F401
from service.cli import sweep_commands  # noqa: E402, F401
from service.cli import result_commands  # noqa: E402, F401
from service.cli import admin_commands  # noqa: E402, F401
from service.cli import bench_commands  # noqa: E402, F401

# isort: on

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (0 ok, 1 failed, 2 usage or HTTP error)."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="sweeps", standalone_mode=False)
    except typer.TyperException as exc:  # usage errors (exit code 2) and other CLI errors
        rich_utils.rich_format_error(exc)
        return exc.exit_code
    except WaitTimeout as exc:
        note(f"sweeps: {exc}")
        return EXIT_FAILED
    except SweepsError as exc:
        note(f"sweeps: {exc}")
        return EXIT_USAGE
    except OutputClosed:
        # The reader (``| head``) left: send what remains nowhere and end quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except (typer.Abort, KeyboardInterrupt):
        return 130
    return result if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
