"""``manara projects``, ``manara principals`` and ``manara api-keys``: administer identities.

The commands act on the local workspace. They act as the principal of
``MANARA_API_KEY`` when it is set, else as the local admin, and every change
goes through ``IdentityService``, so it is authorised and audited.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from manara.cli.common import console, error_boundary, settings
from manara.errors import InvalidInputError
from manara.security.identities import IdentityService
from manara.workspace import Workspace

_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """Parse ``90s``, ``15m``, ``12h``, ``30d`` or plain seconds into a positive timedelta."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None or int(match.group(1)) == 0:
        raise InvalidInputError(
            f"Invalid duration {text!r}: use a positive whole number with an optional unit "
            "s, m, h or d, such as 15m or 30d."
        )
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


@dataclass(frozen=True)
class Session:
    workspace: Workspace
    service: IdentityService
    via_api_key: bool
    """True when the command acts as the principal of ``MANARA_API_KEY``."""


@contextmanager
def session() -> Iterator[Session]:
    """Open the workspace and the identity service as the caller's principal."""
    workspace = Workspace.open(settings())
    try:
        api_key = workspace.settings.api_key
        if api_key is not None:
            principal = workspace.authenticator.authenticate(api_key.get())
        else:
            principal = workspace.local_admin()
        service = IdentityService(workspace.context(principal), workspace.authenticator)
        yield Session(workspace, service, api_key is not None)
    finally:
        workspace.close()


def _time(value: datetime | None) -> str:
    return "" if value is None else value.isoformat(timespec="seconds")


def register(app: typer.Typer) -> None:
    projects_app = typer.Typer(help="Create and list projects (tenants).", no_args_is_help=True)
    projects_app.command("create")(create_project)
    projects_app.command("list")(list_projects)
    app.add_typer(projects_app, name="projects")

    principals_app = typer.Typer(
        help="Create, list and disable users and service accounts.", no_args_is_help=True
    )
    principals_app.command("create")(create_principal)
    principals_app.command("add-member")(add_member)
    principals_app.command("list")(list_principals)
    principals_app.command("disable")(disable_principal)
    app.add_typer(principals_app, name="principals")

    api_keys_app = typer.Typer(
        help="Issue, list and revoke API keys of principals.", no_args_is_help=True
    )
    api_keys_app.command("create")(create_api_key)
    api_keys_app.command("list")(list_api_keys)
    api_keys_app.command("revoke")(revoke_api_key)
    app.add_typer(api_keys_app, name="api-keys")


@error_boundary
def create_project(
    name: Annotated[str, typer.Argument(help="Project name: lowercase letters, digits, - and _.")],
    description: Annotated[str, typer.Option(help="Free-text description.")] = "",
) -> None:
    """Create a project."""
    with session() as current:
        project = current.service.create_project(name, description)
    console.print(f"Created project [bold]{escape(project.name)}[/bold].")


@error_boundary
def list_projects() -> None:
    """List projects."""
    with session() as current:
        projects = current.service.list_projects()
    table = Table("name", "created", "description")
    for project in projects:
        table.add_row(escape(project.name), _time(project.created_at), escape(project.description))
    console.print(table)


@error_boundary
def create_principal(
    name: Annotated[str, typer.Argument(help="Unique principal name.")],
    project: Annotated[str, typer.Option("--project", "-p", help="Home project.")] = "default",
    role: Annotated[
        list[str] | None,
        typer.Option("--role", "-r", help="Role in the home project; repeat for several."),
    ] = None,
    service: Annotated[
        bool, typer.Option("--service", help="Create a service account instead of a user.")
    ] = False,
) -> None:
    """Create a user or service account in a project."""
    with session() as current:
        principal = current.service.create_principal(
            name, project, role or [], "service" if service else "user"
        )
    kind = "service account" if service else "user"
    console.print(
        f"Created {kind} [bold]{escape(principal.name)}[/bold] ({principal.id}) in project "
        f"{escape(principal.project)} with roles {escape(', '.join(sorted(principal.roles)))}."
    )


@error_boundary
def add_member(
    name: Annotated[str, typer.Argument(help="Principal name.")],
    project: Annotated[str, typer.Option("--project", "-p", help="Project to join.")],
    role: Annotated[
        list[str], typer.Option("--role", "-r", help="Role in that project; repeat for several.")
    ],
) -> None:
    """Give a principal roles in another project (replaces its roles there)."""
    with session() as current:
        principal = current.service.add_member(name, project, role)
    roles = ", ".join(sorted(principal.roles_in(project)))
    console.print(f"{escape(principal.name)} now has roles {escape(roles)} in {escape(project)}.")


@error_boundary
def list_principals(
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Only principals of this project.")
    ] = None,
) -> None:
    """List principals with their projects, roles and state."""
    with session() as current:
        records = current.service.list_principals(project)
    table = Table("name", "kind", "project", "roles", "other projects", "state", "id")
    for record in records:
        principal = record.principal
        others = "; ".join(
            f"{name}: {','.join(sorted(roles))}"
            for name, roles in sorted(principal.memberships.items())
        )
        state = f"disabled {_time(record.disabled_at)}" if record.disabled_at else "active"
        table.add_row(
            escape(principal.name),
            principal.kind,
            escape(principal.project),
            escape(", ".join(sorted(principal.roles))),
            escape(others),
            state,
            principal.id,
        )
    console.print(table)


@error_boundary
def disable_principal(name: Annotated[str, typer.Argument(help="Principal name.")]) -> None:
    """Disable a principal: its API keys and tokens stop working."""
    with session() as current:
        record = current.service.disable_principal(name)
    console.print(f"Disabled {escape(name)} at {_time(record.disabled_at)}.")


@error_boundary
def create_api_key(
    principal: Annotated[str, typer.Argument(help="Name of the principal the key is for.")],
    expires_in: Annotated[
        str | None,
        typer.Option("--expires-in", help="Lifetime such as 90d or 12h; no expiry when omitted."),
    ] = None,
) -> None:
    """Issue an API key (printed once; store it in a secret manager)."""
    ttl = parse_duration(expires_in) if expires_in else None
    with session() as current:
        key = current.service.issue_api_key(principal, ttl)
    expiry = _time(key.expires_at) or "never"
    console.print(f"API key {key.prefix} for {escape(principal)}, expires {expiry} (shown once):")
    # The key goes to stdout alone on its line so scripts can capture it.
    typer.echo(key.token)


@error_boundary
def list_api_keys(
    principal: Annotated[
        str | None, typer.Option("--principal", help="Only keys of this principal.")
    ] = None,
) -> None:
    """List API keys by prefix (never their secrets)."""
    with session() as current:
        keys = current.service.list_api_keys(principal)
    table = Table("prefix", "principal", "created", "expires", "revoked", "last used")
    for key in keys:
        table.add_row(
            key.prefix,
            escape(key.principal_name),
            _time(key.created_at),
            _time(key.expires_at),
            _time(key.revoked_at),
            _time(key.last_used_at),
        )
    console.print(table)


@error_boundary
def revoke_api_key(prefix: Annotated[str, typer.Argument(help="Prefix of the key.")]) -> None:
    """Revoke an API key by its prefix."""
    with session() as current:
        current.service.revoke_api_key(prefix)
    console.print(f"Revoked API key {escape(prefix)}.")
