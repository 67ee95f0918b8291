"""``manara keys``: manage the key encryption keys of encrypted artifacts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import typer
from rich.table import Table

from manara.cli.common import console, error_boundary, settings
from manara.errors import ConflictError
from manara.security.keyops import KeyService
from manara.security.signing import SigningKeyring
from manara.stores.artifacts.encrypted import RewrapReport
from manara.workspace import Workspace

keys_app = typer.Typer(
    help="Manage the key encryption keys (KEKs) that wrap the data keys of encrypted "
    "artifacts, and print the artifact signing public key.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")


@contextmanager
def _service() -> Iterator[KeyService]:
    workspace = Workspace.open(settings())
    try:
        yield KeyService(workspace.context(), workspace.artifacts.encrypted)
    finally:
        workspace.close()


def _print_report(report: RewrapReport) -> None:
    console.print(
        f"Re-wrapped {len(report.rewrapped)} objects (data not re-encrypted); "
        f"{len(report.already_current)} were already current."
    )
    if report.failed:
        for digest, message in sorted(report.failed.items()):
            console.print(f"  failed {digest}: {message}", highlight=False)
        raise ConflictError(
            f"{len(report.failed)} objects could not be re-wrapped and still need their "
            "old key version; do not retire it. Fix the errors above, then run "
            "`manara keys rewrap`."
        )


@keys_app.command("list")
@error_boundary
def list_versions() -> None:
    """List the KEK versions, their state and how many objects each one wraps."""
    with _service() as service:
        usages = service.list_versions()
    table = Table("version", "state")
    # Three 25-character timestamps do not fit an 80-column terminal, so they
    # fold onto a second line there instead of ending in an ellipsis.
    for column in ("created", "retired", "destroyed"):
        table.add_column(column, overflow="fold")
    table.add_column("objects")
    for usage in usages:
        version = usage.version
        table.add_row(
            str(version.version),
            version.state.value,
            _stamp(version.created_at),
            _stamp(version.retired_at),
            _stamp(version.destroyed_at),
            str(usage.objects),
        )
    console.print(table)


def _stamp(value: datetime | None) -> str:
    return "" if value is None else value.isoformat(timespec="seconds")


@keys_app.command("rotate")
@error_boundary
def rotate() -> None:
    """Create a new active KEK version and re-wrap every object's data key under it."""
    with _service() as service:
        rotation = service.rotate()
    console.print(f"Rotated to key version {rotation.version}.")
    _print_report(rotation.rewrap)
    console.print(
        "Older versions still decrypt until retired: `manara keys retire VERSION`.",
        highlight=False,
    )


@keys_app.command("rewrap")
@error_boundary
def rewrap() -> None:
    """Re-wrap every object not yet under the active KEK version."""
    with _service() as service:
        report = service.rewrap()
    _print_report(report)


@keys_app.command("retire")
@error_boundary
def retire(
    version: int = typer.Argument(..., help="KEK version to retire."),
    force: bool = typer.Option(
        False, "--force", help="Retire even if objects still need this version to decrypt."
    ),
) -> None:
    """Stop a KEK version from unwrapping data keys; its material is kept."""
    with _service() as service:
        service.retire(version, force=force)
    console.print(f"Retired key version {version}; `manara keys reinstate {version}` undoes it.")


@keys_app.command("reinstate")
@error_boundary
def reinstate(version: int = typer.Argument(..., help="Retired KEK version.")) -> None:
    """Let a retired KEK version unwrap data keys again."""
    with _service() as service:
        service.reinstate(version)
    console.print(f"Reinstated key version {version}.")


@keys_app.command("destroy")
@error_boundary
def destroy(
    version: int = typer.Argument(..., help="KEK version to destroy."),
    yes: bool = typer.Option(False, "--yes", help="Confirm the irreversible destruction."),
) -> None:
    """Erase a KEK version: objects wrapped under it become unreadable (crypto-shredding)."""
    with _service() as service:
        lost = service.destroy(version, confirmed=yes)
    console.print(f"Destroyed key version {version}; {lost} objects are now unreadable.")


@keys_app.command("public-key")
@error_boundary
def public_key(
    key_id: str = typer.Option("", help="Id of an earlier signing key; default: current."),
) -> None:
    """Print the signing public key (PEM) that verifies artifact signatures."""
    keyring = SigningKeyring(settings().home / "keys")
    typer.echo(keyring.public_key_pem(key_id or None), nl=False)
