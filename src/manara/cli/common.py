"""Helpers shared by the command modules: console, settings, the error boundary."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from manara.config import Settings, load_settings
from manara.errors import ManaraError

console = Console()
error_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

EXIT_CODES: dict[str, int] = {
    "invalid_input": 2,
    "signature_mismatch": 2,
    "unsafe_artifact": 2,
    "not_found": 3,
    "conflict": 4,
    "unauthenticated": 5,
    "rate_limited": 5,
    "permission_denied": 5,
    "integrity": 6,
    "unavailable": 7,
}


TLS_CERT_OPTION = typer.Option(
    None,
    "--tls-cert",
    envvar="MANARA_TLS_CERT",
    help="PEM certificate chain; with --tls-key the server speaks HTTPS only.",
)
TLS_KEY_OPTION = typer.Option(
    None,
    "--tls-key",
    envvar="MANARA_TLS_KEY",
    help="PEM private key of --tls-cert; must not be readable by group or others (chmod 600).",
)


def settings() -> Settings:
    return load_settings()


def report_error(error: ManaraError) -> None:
    error_console.print(
        f"[bold red]Error ({error.code}):[/bold red] {error.message}",
        highlight=False,
        soft_wrap=True,
    )


def error_boundary(function: Callable[P, R]) -> Callable[P, R]:
    """Print a known error as one headline with no traceback, and exit non-zero."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except ManaraError as error:
            report_error(error)
            raise typer.Exit(EXIT_CODES.get(error.code, 1)) from None
        except KeyboardInterrupt:
            error_console.print("Interrupted.")
            sys.exit(130)

    return wrapper
