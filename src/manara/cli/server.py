"""``manara server``: the control-plane REST API."""

from __future__ import annotations

import typer

from manara.cli.common import console, error_boundary, settings
from manara.logs import configure_logging
from manara.workspace import Workspace


def register(app: typer.Typer) -> None:
    app.command("server")(server)


@error_boundary
def server(
    host: str = typer.Option("127.0.0.1", envvar="MANARA_SERVER_HOST", help="Address to bind."),
    port: int = typer.Option(8080, envvar="MANARA_SERVER_PORT", help="TCP port to listen on."),
    log_level: str = typer.Option("info", envvar="MANARA_LOG_LEVEL", help="Server log level."),
) -> None:
    """Run the control-plane REST API (OpenAPI schema at /openapi.json)."""
    import uvicorn

    from manara.api.app import create_app

    configure_logging(log_level, json_lines=True)
    workspace = Workspace.open(settings())
    console.print(f"Manara control plane on http://{host}:{port} (home {workspace.settings.home})")
    try:
        uvicorn.run(create_app(workspace), host=host, port=port, log_config=None, access_log=False)
    finally:
        workspace.close()
