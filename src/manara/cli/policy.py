"""``manara policy``: show, apply, list and check the workspace's Cedar policy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.table import Table

from manara.cli.common import console, error_boundary, settings
from manara.errors import InvalidInputError
from manara.security.cedar import CedarPolicy
from manara.security.policy_versions import CheckResult, PolicyService, parse_context
from manara.workspace import Workspace

T = TypeVar("T")


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Show, apply, list and check the Cedar access policy.", no_args_is_help=True
    )
    group.command("show")(show)
    group.command("apply")(apply)
    group.command("history")(history)
    group.command("check")(check)
    app.add_typer(group, name="policy")


def _with_service(use: Callable[[PolicyService], T]) -> T:
    workspace = Workspace.open(settings())
    try:
        return use(PolicyService(workspace.context()))
    finally:
        workspace.close()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"Cannot read policy file {path}: {exc}.") from exc


@error_boundary
def show() -> None:
    """Print the policy in force and which version it is."""
    version, text = _with_service(lambda service: service.show())
    if version is None:
        console.print("# Policy in force: the default shipped with Manara (no version applied).")
    else:
        console.print(
            f"# Policy in force: version {version.version}, sha256 {version.sha256}, "
            f"applied {version.created_at.isoformat()} by {version.created_by}."
        )
    console.print(text, highlight=False, markup=False)


@error_boundary
def apply(
    file: Annotated[Path, typer.Argument(help="Cedar policy file to make the active version.")],
    comment: Annotated[str, typer.Option(help="Why the policy changes; kept in the history.")] = "",
) -> None:
    """Validate a Cedar policy file and make it the active version; invalid files change nothing."""
    text = _read(file)
    version = _with_service(lambda service: service.apply(text, str(file), comment))
    console.print(f"Policy version {version.version} is active (sha256 {version.sha256}).")


@error_boundary
def history() -> None:
    """List every policy version, oldest first."""
    versions = _with_service(lambda service: service.history())
    if not versions:
        console.print("No policy version applied; the default shipped with Manara is in force.")
        return
    table = Table("version", "active", "applied at", "by", "sha256", "comment")
    for item in versions:
        table.add_row(
            str(item.version),
            "yes" if item.active else "",
            item.created_at.isoformat(),
            item.created_by,
            item.sha256[:16],
            item.comment,
        )
    console.print(table)


@error_boundary
def check(
    principal: Annotated[str, typer.Option(help="Name of the principal making the request.")],
    action: Annotated[str, typer.Option(help="Action as TYPE.VERB, such as run.read.")],
    resource: Annotated[str, typer.Option(help="Resource as TYPE:ID, such as model:churn.")],
    context: Annotated[
        list[str] | None,
        typer.Option(help="Request attribute KEY=VALUE, such as region=uaenorth; repeatable."),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(help="Project of a resource not stored yet, or of a model name."),
    ] = None,
    policy_file: Annotated[
        Path | None,
        typer.Option("--policy", help="Check against this Cedar file instead of the active one."),
    ] = None,
) -> None:
    """Evaluate one request and explain the decision."""
    attributes = parse_context(context or [])
    candidate = None if policy_file is None else CedarPolicy(_read(policy_file), str(policy_file))
    result = _with_service(
        lambda service: service.check(
            principal, action, resource, attributes, project=project, candidate=candidate
        )
    )
    _print_check(result)
    if not result.explanation.decision.allowed:
        raise typer.Exit(1)


def _print_check(result: CheckResult) -> None:
    explanation = result.explanation
    decision = explanation.decision
    verdict = "[bold green]ALLOW[/]" if decision.allowed else "[bold red]DENY[/]"
    console.print(f"{verdict}  reason: {decision.reason}  (policy: {result.policy_source})")
    resource = result.resource
    regions = (
        "any" if resource.allowed_regions is None else ", ".join(sorted(resource.allowed_regions))
    )
    table = Table("", "value", show_header=False)
    table.add_row("action", f"{result.action} (group {explanation.action_group})")
    table.add_row(
        "principal",
        f"{result.principal.name} ({result.principal.kind}), clearance "
        f"{result.principal.clearance}, region {result.principal.region or 'unknown'}",
    )
    roles = "; ".join(f"{p}: {', '.join(r)}" for p, r in explanation.principal_roles.items())
    table.add_row("roles", roles or "none")
    stored = "stored" if result.resource_stored else "not stored; attributes assumed"
    table.add_row("resource", f"{resource.type}:{resource.id} ({stored})")
    table.add_row("project", resource.project)
    table.add_row("classification", resource.classification)
    table.add_row("allowed regions", regions)
    table.add_row("request context", ", ".join(f"{k}={v}" for k, v in result.context.items()))
    table.add_row("permits matched", ", ".join(explanation.permits) or "none")
    table.add_row("forbids matched", ", ".join(explanation.forbids) or "none")
    if explanation.errors:
        table.add_row("evaluation errors", "; ".join(explanation.errors))
    console.print(table)
