"""``manara audit``: verify the audit log, sign a checkpoint, export events, prove an event."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.table import Table

from manara.cli.common import console, error_boundary, error_console, settings
from manara.errors import IntegrityError
from manara.security.audit import AuditLog, open_audit_log, proof_json
from manara.workspace import Workspace

T = TypeVar("T")

# Problems printed by `manara audit verify`; the count of the rest follows.
_MAX_SHOWN = 50


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Check and export the tamper-evident audit log.", no_args_is_help=True)
    group.command("verify")(verify)
    group.command("checkpoint")(checkpoint)
    group.command("export")(export)
    group.command("prove")(prove)
    group.command("public-key")(public_key)
    app.add_typer(group, name="audit")


def _with_log(action: str, use: Callable[[AuditLog], T]) -> T:
    workspace = Workspace.open(settings())
    try:
        ctx = workspace.context()
        ctx.authorize(action, "audit_log")
        return use(open_audit_log(ctx))
    finally:
        workspace.close()


@error_boundary
def verify() -> None:
    """Recompute every leaf hash and root, and check every signed checkpoint."""
    result = _with_log("audit.verify", lambda log: log.verify())
    if result.ok:
        console.print(
            f"Audit log verified: {result.events_checked} events, "
            f"{result.checkpoints_checked} signed checkpoints, root {result.root_hash}."
        )
        return
    table = Table("problem", "seq", "checkpoint", "detail", title="Audit log problems")
    for problem in result.problems[:_MAX_SHOWN]:
        table.add_row(
            problem.kind,
            "" if problem.seq is None else str(problem.seq),
            "" if problem.checkpoint_size is None else str(problem.checkpoint_size),
            problem.message,
        )
    error_console.print(table)
    hidden = len(result.problems) - _MAX_SHOWN
    if hidden > 0:
        error_console.print(f"... and {hidden} more problems.")
    raise IntegrityError(
        f"The audit log failed verification with {len(result.problems)} problems; it was "
        "changed outside Manara. Keep the database as evidence and restore from backup."
    )


@error_boundary
def checkpoint() -> None:
    """Sign the current tree head (size, root hash, time) with the audit key."""
    signed = _with_log("audit.checkpoint", lambda log: log.checkpoint())
    console.print(
        f"Checkpoint at size {signed.tree_size}: root {signed.root_hash}, "
        f"signed {signed.time.isoformat()} by key {signed.key_id[:16]}."
    )


@error_boundary
def export(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="JSON lines file to write (replaced atomically); standard output when omitted.",
        ),
    ] = None,
) -> None:
    """Export every audit event as JSON lines: the canonical event and its leaf hash."""
    if output is None:

        def write(log: AuditLog) -> int:
            count = 0
            for line in log.export_lines():
                typer.echo(line)
                count += 1
            return count

        _with_log("audit.read", write)
        return
    count = _with_log("audit.read", lambda log: log.export(output))
    console.print(f"Exported {count} audit events to {output}.")


@error_boundary
def prove(
    event_id: Annotated[str, typer.Argument(help="Id of the audit event to prove.")],
) -> None:
    """Print the inclusion proof of an event in the latest signed tree head, as JSON."""
    proof = _with_log("audit.read", lambda log: log.prove(event_id))
    # Plain echo: Rich would wrap long hashes and break the JSON.
    typer.echo(proof_json(proof))


@error_boundary
def public_key() -> None:
    """Print the audit signing public key (64 hex digits), the trust anchor for proofs.

    Publish it somewhere an attacker with database access cannot change, and
    pass it to ``tools/verify_audit_proof.py --public-key``.
    """
    key = _with_log("audit.read", lambda log: log.signer.public_key)
    typer.echo(key.hex())
