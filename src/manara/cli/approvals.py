"""``manara models approvals``: scan pickle models and decide their registration requests.

The commands act on the local workspace. They run as the principal of
``MANARA_API_KEY`` when it is set, else as the local admin, because a
request must be decided by a principal other than the one that made it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from manara.cli.common import console, error_boundary, settings
from manara.registry.approval import ArtifactApproval
from manara.workspace import Workspace

if TYPE_CHECKING:
    from manara.registry.service import RegistryService

approvals_app = typer.Typer(
    help="Requests to register pickle or joblib models: scan, list, approve, reject.",
    no_args_is_help=True,
)


@contextmanager
def _registry() -> Iterator[RegistryService]:
    # The registry service loads pandas, which the rest of the CLI does not need.
    from manara.registry.service import RegistryService

    current = settings()
    workspace = Workspace.open(current)
    try:
        principal = None
        if current.api_key is not None:
            principal = workspace.authenticator.authenticate(current.api_key.get())
        yield RegistryService(workspace.context(principal))
    finally:
        workspace.close()


def _show(approval: ArtifactApproval) -> None:
    dangerous = ", ".join(approval.scan.get("dangerous", [])) or "none"
    console.print(
        f"Approval [bold]{approval.id}[/bold] for model {escape(approval.model_name)}: "
        f"{approval.status} (digest {approval.digest}, dangerous globals: {escape(dangerous)})."
    )


@approvals_app.command("request")
@error_boundary
def request(
    name: Annotated[str, typer.Argument(help="Model name the file would be registered as.")],
    source: Annotated[
        str, typer.Argument(help="Pickle or joblib file, or artifact path with --run.")
    ],
    run_id: Annotated[
        str | None, typer.Option("--run", help="Run that contains SOURCE as an artifact.")
    ] = None,
) -> None:
    """Scan a pickle or joblib model and record a request for another principal to approve."""
    with _registry() as registry:
        target = source if run_id is not None else Path(source)
        _show(registry.request_unsafe_registration(name, target, run_id))


@approvals_app.command("list")
@error_boundary
def list_approvals(
    status: Annotated[
        str | None, typer.Option(help="Only requests in this state: pending, approved, rejected.")
    ] = None,
) -> None:
    """List the registration requests of the principal's project."""
    with _registry() as registry:
        approvals = registry.list_approvals(status)
    table = Table(title="Pickle registration requests")
    for column in ("id", "model", "status", "kind", "dangerous globals", "requested by"):
        table.add_column(column)
    for item in approvals:
        table.add_row(
            item.id,
            escape(item.model_name),
            item.status,
            item.kind,
            escape(", ".join(item.scan.get("dangerous", []))),
            item.requested_by,
        )
    console.print(table)


@approvals_app.command("approve")
@error_boundary
def approve(
    approval_id: Annotated[str, typer.Argument(help="Id of the request.")],
    reason: Annotated[str, typer.Option(help="Why it is approved, kept in the audit log.")] = "",
) -> None:
    """Approve a pending request made by another principal."""
    with _registry() as registry:
        _show(registry.approve(approval_id, reason))


@approvals_app.command("reject")
@error_boundary
def reject(
    approval_id: Annotated[str, typer.Argument(help="Id of the request.")],
    reason: Annotated[str, typer.Option(help="Why it is rejected, kept in the audit log.")] = "",
) -> None:
    """Reject a pending request."""
    with _registry() as registry:
        _show(registry.reject(approval_id, reason))
