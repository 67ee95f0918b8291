"""``manara serve``: the online inference server (Open Inference Protocol v2)."""

from __future__ import annotations

from pathlib import Path

import typer

from manara.cli.common import TLS_CERT_OPTION, TLS_KEY_OPTION, console, error_boundary, settings
from manara.errors import InvalidInputError
from manara.http_security import tls_options
from manara.logs import configure_logging


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


@error_boundary
def serve(
    model: str = typer.Argument(
        ..., help="Model to serve: NAME (latest version), NAME@ALIAS or NAME:VERSION."
    ),
    host: str = typer.Option("127.0.0.1", envvar="MANARA_SERVE_HOST", help="Address to bind."),
    port: int = typer.Option(8000, envvar="MANARA_SERVE_PORT", help="TCP port to listen on."),
    workers: int = typer.Option(
        1,
        envvar="MANARA_SERVE_WORKERS",
        help="Worker processes; each loads the model and writes its own prediction log files.",
    ),
    log_level: str = typer.Option(
        "info",
        envvar="MANARA_LOG_LEVEL",
        help="Server log level; 'debug' adds one line per request.",
    ),
    tls_cert: Path | None = TLS_CERT_OPTION,
    tls_key: Path | None = TLS_KEY_OPTION,
) -> None:
    """Serve a registered model over the Open Inference Protocol v2 REST API.

    The version is resolved once at start. Every route except
    /v2/health/live needs 'Authorization: Bearer <API key>', and inference
    needs the model.invoke permission. Predictions are logged to Parquet
    under MANARA_HOME/predictions/<model>/v<version>/.
    """
    from manara.serving.server import serve as run_server

    if workers < 1:
        raise InvalidInputError(f"--workers must be at least 1; got {workers}.")
    tls_options(tls_cert, tls_key)
    configure_logging(log_level, json_lines=True)
    scheme = "https" if tls_cert is not None else "http"
    console.print(f"Manara inference server for {model} on {scheme}://{host}:{port}/v2")
    run_server(
        settings(),
        model,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
