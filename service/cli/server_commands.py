"""Server-side commands: ``serve`` (API + dispatcher), ``worker`` (a standalone
dispatcher, wired by ``service.wiring`` exactly as the API's lifespan wires its own) and
``migrate``."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from service.cli.app import app, note


@app.command(
    "serve",
    epilog="Example: sweeps serve --host 0.0.0.0 --port 8000",
    rich_help_panel="Server",
)
def serve_command(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    graceful_timeout: Annotated[
        float, typer.Option(help="seconds open requests (event streams) get to end at a stop")
    ] = 5.0,
) -> None:
    """Run the HTTP API and, unless SWEEPS_DISPATCH__ENABLED=false, its dispatcher.

    SIGTERM or Ctrl-C stops it cleanly (exit 0): finished results are written, running
    trials go back to pending at once."""
    import uvicorn

    from service.app import create_app

    app = create_app()
    with _stop_signals() as received:
        # uvicorn catches the signal, shuts the app down (the lifespan stops the
        # dispatcher) and then re-raises it to the handlers it found: ours.
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=log_level,
            timeout_graceful_shutdown=graceful_timeout,
        )
    if received:
        dispatcher = getattr(app.state, "dispatcher", None)
        note(_stopped_line("serve", received[0], dispatcher))


@contextlib.contextmanager
def _stop_signals() -> Iterator[list[int]]:
    """While the block runs, SIGINT and SIGTERM only record themselves in the yielded
    list (the command then stops in order instead of being killed mid-write)."""
    received: list[int] = []
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in saved:
        signal.signal(sig, lambda number, _frame: received.append(number))
    try:
        yield received
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _stopped_line(command: str, signum: int, dispatcher: Any) -> str:
    """The one line a stopped server leaves: which signal, and what it handed back."""
    name = signal.Signals(signum).name
    if dispatcher is None:
        return f"sweeps {command}: stopped ({name})"
    released = dispatcher.released
    trials = f"{released} running trial{'s' if released != 1 else ''}"
    line = f"sweeps {command}: stopped ({name}); {trials} released to pending"
    if dispatcher.kept_at_stop:
        line += f", {dispatcher.kept_at_stop} finished inside running batches kept"
    return line


@app.command(
    "worker", epilog="Example: SWEEPS_RAY_ADDRESS=auto sweeps worker", rich_help_panel="Server"
)
def worker_command() -> None:
    """Run a standalone dispatcher against the configured database and Ray.

    SIGTERM or Ctrl-C stops it cleanly (exit 0): finished results are written, running
    trials go back to pending at once."""
    import logging
    import threading

    from service.settings import get_settings
    from service.wiring import start_services

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    with _stop_signals() as received:
        # The runner keeps these handlers through ray.init (``RayRunner.start``).
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda number, _frame: (received.append(number), stop.set()))
        services = start_services(get_settings(), start_dispatcher=True)
        try:
            note(
                f"dispatcher {services.dispatcher.owner} running on "
                f"{services.runner.describe()}; Ctrl-C to stop"
            )
            stop.wait()
        finally:
            services.stop()
    note(_stopped_line("worker", received[0] if received else signal.SIGTERM, services.dispatcher))


@app.command(
    "migrate",
    epilog="Example: SWEEPS_DATABASE_URL=postgresql+psycopg://… sweeps migrate",
    rich_help_panel="Server",
)
def migrate_command() -> None:
    """Bring the configured database to the latest schema (alembic upgrade head)."""
    from service.settings import get_settings
    from service.store.migrate import upgrade_to_head

    upgrade_to_head(get_settings().database_url)
    note("database at head")
