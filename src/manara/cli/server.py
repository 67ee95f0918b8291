"""``manara server``: the control-plane REST API."""

from __future__ import annotations

from pathlib import Path

import typer

from manara.cli.common import TLS_CERT_OPTION, TLS_KEY_OPTION, console, error_boundary, settings
from manara.http_security import tls_options
from manara.logs import configure_logging
from manara.workspace import Workspace


def register(app: typer.Typer) -> None:
    app.command("server")(server)


@error_boundary
def server(
    host: str = typer.Option("127.0.0.1", envvar="MANARA_SERVER_HOST", help="Address to bind."),
    port: int = typer.Option(8080, envvar="MANARA_SERVER_PORT", help="TCP port to listen on."),
    log_level: str = typer.Option("info", envvar="MANARA_LOG_LEVEL", help="Server log level."),
    tls_cert: Path | None = TLS_CERT_OPTION,
    tls_key: Path | None = TLS_KEY_OPTION,
) -> None:
    """Run the control-plane REST API (OpenAPI schema at /openapi.json, with a key).

    Every route except /health/live needs 'Authorization: Bearer <API key>'.
    Each request is logged at INFO level, with secrets and personal data
    redacted.
    """
    import uvicorn

    from manara.api.app import create_app

    tls = tls_options(tls_cert, tls_key)
    configure_logging(log_level, json_lines=True)
    workspace = Workspace.open(settings())
    scheme = "https" if tls else "http"
    console.print(
        f"Manara control plane on {scheme}://{host}:{port} (home {workspace.settings.home})"
    )
    try:
        uvicorn.run(
            create_app(workspace),
            host=host,
            port=port,
            log_config=None,
            access_log=True,
            server_header=False,
            **tls,
        )
    finally:
        workspace.close()
