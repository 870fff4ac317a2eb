"""The ``sweeps`` command line, built on the Python client (``finetune_sweeps``).

- ``app``: the Typer app and the shared options, output helpers and exit codes;
- ``server_commands``: serve, worker, migrate (server wiring in ``service.wiring``);
- ``sweep_commands`` / ``result_commands``: the client commands;
- ``render``: pure rendering of the schema models; ``progress``: the live display.

``main`` is the console script (``[project.scripts] sweeps``) and what tests call.
"""

from __future__ import annotations

import os
import select
import sys

import typer
from typer import rich_utils

from finetune_sweeps import SweepsError, WaitTimeout
from service.cli.app import EXIT_FAILED, EXIT_OK, EXIT_USAGE, app, note

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
    """Run one command; returns its exit code (0 ok, 1 failed, 2 usage or HTTP error).

    A closed stdout (``sweeps plan … | head``) is handled here, once, for every command
    and for the help: the command stops, what remains goes nowhere, the exit code is 0
    and nothing is printed.  Typer (around every command) and Rich (the help's renderer)
    meet a closed pipe themselves with ``exit(1)``; that is recognized by the state of
    stdout and ends with 0 as well.
    """
    stdout_was = _identity(_STDOUT)
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="sweeps", standalone_mode=False)
    except BrokenPipeError:
        return _output_closed()
    except typer.TyperException as exc:  # usage errors (exit code 2) and other CLI errors
        rich_utils.rich_format_error(exc)
        return exc.exit_code
    except WaitTimeout as exc:
        note(f"sweeps: {exc}")
        return EXIT_FAILED
    except SweepsError as exc:
        note(f"sweeps: {exc}")
        return EXIT_USAGE
    except (typer.Abort, KeyboardInterrupt):
        return 130
    except SystemExit as exc:
        # Typer and Rich meet a closed pipe themselves, each with ``exit(1)``.
        if exc.code == 1 and _stdout_closed(stdout_was):
            return _output_closed()
        raise
    return result if isinstance(result, int) else EXIT_OK


def _identity(fd: int) -> tuple[int, int] | None:
    """(device, inode) of the file behind descriptor ``fd``; None when there is none."""
    try:
        info = os.fstat(fd)
    except OSError:
        return None
    return info.st_dev, info.st_ino


_STDOUT = 1
_DEVNULL = (os.stat(os.devnull).st_dev, os.stat(os.devnull).st_ino)


def _stdout_closed(before: tuple[int, int] | None) -> bool:
    """Whether stdout's reader has gone: the pipe reports an error (no reader), or Rich
    has already pointed stdout at ``/dev/null`` (it does so on a broken pipe)."""
    if before != _DEVNULL and _identity(_STDOUT) == _DEVNULL:
        return True
    try:
        poller = select.poll()
        poller.register(_STDOUT, select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError):
        return False


def _output_closed() -> int:
    """The reader left: send what stdout still buffers nowhere (no error at exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, _STDOUT)
    os.close(devnull)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
