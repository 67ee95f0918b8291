"""Entry point of the ``manara`` command: builds the Typer app from the command modules."""

from __future__ import annotations

import typer

from manara import __version__
from manara.cli import (
    audit,
    drift,
    init,
    keys,
    models,
    policy,
    principals,
    quickstart,
    runs,
    serve,
    server,
    token,
    train,
)
from manara.logs import configure_logging


def _version(value: bool) -> None:
    if value:
        typer.echo(f"manara {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="manara",
        help="Manara: train, track, register, serve and monitor models, secure by default.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def main(
        log_level: str = typer.Option(
            "WARNING", envvar="MANARA_CLI_LOG_LEVEL", help="Log level of the command's own output."
        ),
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Print the version."
        ),
    ) -> None:
        configure_logging(log_level)

    for module in (
        init,
        runs,
        models,
        train,
        serve,
        drift,
        server,
        quickstart,
        keys,
        audit,
        principals,
        token,
        policy,
    ):
        module.register(app)
    return app


def run() -> None:
    build_app()()
