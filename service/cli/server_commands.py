"""Server-side commands: ``serve`` (API + dispatcher), ``worker`` (a standalone
dispatcher, wired by ``service.wiring`` exactly as the API's lifespan wires its own) and
``migrate``."""

from __future__ import annotations

from typing import Annotated

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
) -> None:
    """Run the HTTP API and, unless SWEEPS_DISPATCH__ENABLED=false, its dispatcher."""
    import uvicorn

    from service.app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level=log_level)


@app.command(
    "worker", epilog="Example: SWEEPS_RAY_ADDRESS=auto sweeps worker", rich_help_panel="Server"
)
def worker_command() -> None:
    """Run a standalone dispatcher against the configured database and Ray; Ctrl-C stops it."""
    import logging
    import signal
    import threading

    from service.settings import get_settings
    from service.wiring import start_services

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    services = start_services(get_settings(), start_dispatcher=True)
    # After Ray's start: ray.init installs handlers of its own that would replace ours.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        note(
            f"dispatcher {services.dispatcher.owner} running on {services.runner.describe()}; "
            "Ctrl-C to stop"
        )
        stop.wait()
    finally:
        services.stop()


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
