"""Server-side account commands: ``sweeps admin create-user`` writes straight to the
configured database (the first admin has no key yet to call the API with)."""

from __future__ import annotations

from typing import Annotated

import typer

from service.cli.app import app, emit, note

admin_app = typer.Typer(
    help="Accounts, on the server (the first admin; everything else: /v1/users, /v1/keys).",
    no_args_is_help=True,
)
app.add_typer(admin_app, name="admin", rich_help_panel="Server")


@admin_app.command(
    "create-user",
    epilog="Example: sweeps admin create-user ada --admin   (prints ada's first key, once)",
)
def create_user_command(
    name: Annotated[str, typer.Argument(help="login name; sweeps record it as their owner")],
    admin: Annotated[bool, typer.Option("--admin", help="may manage users and keys")] = False,
    service: Annotated[
        bool, typer.Option("--service", help="a service account (CI): its sweeps are class ci")
    ] = False,
    share: Annotated[float, typer.Option(min=0.001, help="fair-share weight")] = 1.0,
) -> None:
    """Create a user in the configured database and print its first API key (shown once)."""
    from service.auth.bootstrap import create_user_with_key
    from service.settings import get_settings

    key = create_user_with_key(
        get_settings(), name, admin=admin, kind="service" if service else "user", share=share
    )
    role = "admin" if admin else ("service account" if service else "user")
    note(
        f"{role} {name} created; API key (shown once, store it now; scopes: "
        f"{', '.join(key.scopes)}; expires {key.expires_at:%Y-%m-%d}):"
    )
    emit(key.key)
