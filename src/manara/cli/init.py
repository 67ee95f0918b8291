"""``manara init``: create the workspace, the admin identity and its first API key."""

from __future__ import annotations

import typer

from manara.cli.common import console, error_boundary, settings
from manara.workspace import Workspace


def register(app: typer.Typer) -> None:
    app.command("init")(init)


@error_boundary
def init() -> None:
    """Create the workspace under MANARA_HOME, an admin identity and an API key (shown once)."""
    workspace = Workspace.open(settings())
    try:
        admin, key = workspace.init()
    finally:
        workspace.close()
    console.print(f"Workspace initialised at [bold]{workspace.settings.home}[/bold].")
    console.print(f"Admin principal: {admin.name} ({admin.id})")
    console.print("API key (shown once; store it in a secret manager):")
    # The key goes to stdout alone on its line so scripts can capture it.
    typer.echo(key.token)
