"""``manara token``: issue a short-lived signed token for a service account."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from manara.cli.common import error_boundary, error_console
from manara.cli.principals import parse_duration, session


def register(app: typer.Typer) -> None:
    app.command("token")(issue_token)


@error_boundary
def issue_token(
    name: Annotated[str, typer.Argument(help="Name of the service account.")],
    expires_in: Annotated[
        str | None,
        typer.Option(
            "--expires-in",
            help="Lifetime such as 15m or 1h (at most 24h); default MANARA_TOKEN_TTL_SECONDS.",
        ),
    ] = None,
) -> None:
    """Print a signed JWT for a service account (15 minutes by default).

    An admin may issue one for any service account; a service account may
    exchange its own API key (MANARA_API_KEY) for one.
    """
    with session() as current:
        seconds = current.workspace.settings.token_ttl_seconds
        ttl = parse_duration(expires_in) if expires_in else timedelta(seconds=seconds)
        issued = current.service.issue_token(name, ttl, via_api_key=current.via_api_key)
    error_console.print(f"Token for {name}, expires {issued.expires_at.isoformat()}:")
    # The token goes to stdout alone so that scripts can capture it.
    typer.echo(issued.token)
