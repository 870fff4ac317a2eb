"""Client commands about sweeps: ``login``, ``plan``, ``submit``, ``watch``, ``status``,
``cancel``.  Each opens a ``finetune_sweeps.Client``, calls one method and prints what
``service.cli.render`` makes of the answer."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from api_schemas.wire import SweepRead
from finetune_sweeps import WaitTimeout
from finetune_sweeps.config import resolve_url, write_config
from service.cli import render
from service.cli.app import (
    EXIT_FAILED,
    EXIT_OK,
    ApiKey,
    Json,
    Submitter,
    Url,
    app,
    emit,
    fail,
    note,
    open_client,
    terminal_width,
)
from service.cli.progress import SweepProgress

SpecPath = Annotated[str, typer.Argument(help="a YAML or JSON spec file; - reads stdin")]
Timeout = Annotated[float, typer.Option(help="give up waiting after this many seconds")]


def _outcome(sweep: SweepRead) -> int:
    """0 while the sweep is alive or succeeded; 1 when it ended any other way."""
    return EXIT_OK if sweep.status in ("succeeded", "pending", "running") else EXIT_FAILED


def _wait(client, sweep: SweepRead, *, quiet: bool, timeout: float, interval: float) -> SweepRead:
    try:
        # The event stream pushes every change; ``interval`` only paces the polling
        # fallback against a server without one.
        if quiet:
            return client.watch(sweep.id, timeout=timeout, poll_s=interval)
        with SweepProgress(sweep.name) as progress:
            return client.watch(sweep.id, progress=progress, timeout=timeout, poll_s=interval)
    except WaitTimeout as exc:
        raise fail(str(exc), EXIT_FAILED) from exc


@app.command(
    "login",
    rich_help_panel="Sweeps",
    epilog="Example: sweeps login --url https://sweeps.lab.example",
)
def login_command(
    url: Url = None,
    key: Annotated[
        str | None, typer.Option("--key", help="the key; asked for (hidden) when omitted")
    ] = None,
) -> None:
    """Store an API key (and the server URL) in the config file, readable by you only.

    The file is $SWEEPS_CONFIG or ~/.config/finetune-sweeps/config.toml, mode 0600; the
    client and every command send the key as Authorization: Bearer.
    """
    if key is None:
        key = (
            typer.prompt("API key", hide_input=True) if sys.stdin.isatty() else sys.stdin.readline()
        )
    key = key.strip()
    if not key:
        raise fail("no key given")
    values = {"api_key": key} | ({"url": url.rstrip("/")} if url else {})
    path = write_config(values)
    note(f"saved the key for {resolve_url(url)} in {path} (mode 0600)")


@app.command(
    "plan", rich_help_panel="Sweeps", epilog="Example: sweeps plan examples/quickstart.yaml"
)
def plan_command(
    spec: SpecPath, url: Url = None, submitter: Submitter = None, as_json: Json = False
) -> None:
    """Dry run: how many trials, how many already cached, Ray batches, estimated cost."""
    with open_client(url, submitter) as client:
        plan = client.plan(spec)
    emit(plan.model_dump_json(indent=2) if as_json else render.plan_text(plan))


@app.command(
    "submit",
    rich_help_panel="Sweeps",
    epilog="Example: sweeps submit examples/quickstart.yaml --wait --idempotency-key nightly-1",
)
def submit_command(
    spec: SpecPath,
    wait: Annotated[bool, typer.Option("--wait", help="show progress until it finishes")] = False,
    idempotency_key: Annotated[
        str | None, typer.Option(help="the same key and spec return the same sweep")
    ] = None,
    timeout: Timeout = 3600.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
    interval: Annotated[float, typer.Option(help="seconds between polls")] = 0.5,
    url: Url = None,
    submitter: Submitter = None,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """Submit a sweep spec; print its id (with --json: id and status).

    Exits 1 when --wait sees the sweep end failed, cancelled or partial.
    """
    with open_client(url, submitter, api_key) as client:
        sweep = client.submit(spec, idempotency_key=idempotency_key)
        note(render.submitted_line(sweep))
        if wait:
            sweep = _wait(client, sweep, quiet=quiet, timeout=timeout, interval=interval)
    emit(json.dumps({"id": sweep.id, "status": sweep.status}) if as_json else sweep.id)
    raise typer.Exit(_outcome(sweep))


@app.command(
    "watch",
    rich_help_panel="Sweeps",
    epilog="Example: sweeps watch 3f2a9c0d4e5b4a1f8c7d6e5f4a3b2c1d",
)
def watch_command(
    sweep_id: Annotated[str, typer.Argument(help="the sweep to follow")],
    timeout: Timeout = 24 * 3600.0,
    interval: Annotated[
        float, typer.Option(help="seconds between polls, against a server without events")
    ] = 1.0,
    url: Url = None,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """Follow a sweep live until it ends, from its event stream (GET /v1/sweeps/ID/events).

    Exits 0 when it succeeded, 1 when it ended failed, cancelled or partial.
    """
    with open_client(url, api_key=api_key) as client:
        sweep = _wait(
            client, client.sweep(sweep_id), quiet=False, timeout=timeout, interval=interval
        )
    if as_json:
        emit(sweep.model_dump_json(indent=2, exclude={"spec"}))
    raise typer.Exit(EXIT_OK if sweep.status == "succeeded" else EXIT_FAILED)


@app.command(
    "status",
    rich_help_panel="Sweeps",
    epilog="Example: sweeps status --limit 5   or   sweeps status SWEEP_ID --json",
)
def status_command(
    sweep_id: Annotated[str | None, typer.Argument(help="one sweep; omit for the list")] = None,
    limit: Annotated[int, typer.Option(help="how many sweeps to list")] = 20,
    status: Annotated[str | None, typer.Option("--status", help="list only this status")] = None,
    url: Url = None,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """One sweep's state and progress, or the newest sweeps as a table."""
    with open_client(url, api_key=api_key) as client:
        if sweep_id:
            sweep = client.sweep(sweep_id)
            emit(sweep.model_dump_json(indent=2) if as_json else render.sweep_detail(sweep))
            return
        page = client.sweeps(limit=limit, status=status)
    if as_json:
        emit(page.model_dump_json(indent=2, exclude={"items": {"__all__": {"spec"}}}))
        return
    table, hidden = render.sweeps_table(page.items, terminal_width())
    emit(table)
    if hidden:
        note(f"({hidden} columns hidden to fit the terminal; --json shows everything)")
    if page.total > len(page.items):
        note(f"{len(page.items)} of {page.total} sweeps; --limit shows more")


@app.command(
    "cancel",
    rich_help_panel="Sweeps",
    epilog="Example: sweeps cancel 3f2a9c0d4e5b4a1f8c7d6e5f4a3b2c1d",
)
def cancel_command(
    sweep_id: Annotated[str, typer.Argument(help="the sweep to cancel")],
    url: Url = None,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """Cancel a sweep's pending trials and the running batches no other sweep needs."""
    with open_client(url, api_key=api_key) as client:
        sweep = client.cancel(sweep_id)
    emit(sweep.model_dump_json(indent=2) if as_json else f"{sweep.id}: {sweep.status}")
