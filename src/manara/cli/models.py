"""``manara models``: list, show and register models, and move their aliases.

The commands go through ``manara.Client``, so they act on the local
workspace or, when ``MANARA_SERVER_URL`` is set, on a remote control plane.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from manara.cli.approvals import approvals_app
from manara.cli.common import console, error_boundary
from manara.client import Client
from manara.registry.entities import ModelVersion


def register(app: typer.Typer) -> None:
    models_app = typer.Typer(help="Registered models, versions and aliases.", no_args_is_help=True)
    models_app.command("list")(list_models)
    models_app.command("show")(show_model)
    models_app.command("versions")(list_versions)
    models_app.command("register")(register_version)

    alias_app = typer.Typer(help="Point an alias at a version, or remove it.", no_args_is_help=True)
    alias_app.command("set")(set_alias)
    alias_app.command("delete")(delete_alias)
    models_app.add_typer(alias_app, name="alias")
    models_app.add_typer(approvals_app, name="approvals")
    app.add_typer(models_app, name="models")


def _time(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def _versions_table(title: str, versions: list[ModelVersion]) -> Table:
    table = Table(title=title)
    table.add_column("version", justify="right")
    table.add_column("aliases")
    table.add_column("flavor")
    table.add_column("runtime")
    table.add_column("run id", no_wrap=True)
    table.add_column("created")
    table.add_column("description")
    for version in versions:
        table.add_row(
            str(version.version),
            escape(", ".join(version.aliases)),
            version.flavor,
            "onnxruntime" if version.onnx_verified else "native",
            version.run_id or "(file)",
            _time(version.created_at),
            escape(version.description),
        )
    return table


@error_boundary
def list_models() -> None:
    """List registered models with their latest version and aliases."""
    with Client() as client:
        models = client.registry.list_models()
    table = Table(title=f"Models ({len(models)})")
    table.add_column("name")
    table.add_column("latest", justify="right")
    table.add_column("aliases")
    table.add_column("updated")
    for model in models:
        aliases = ", ".join(f"{alias}->{number}" for alias, number in model.aliases.items())
        latest = "" if model.latest_version is None else str(model.latest_version)
        table.add_row(escape(model.name), latest, escape(aliases), _time(model.updated_at))
    console.print(table)


@error_boundary
def show_model(name: Annotated[str, typer.Argument(help="Model name.")]) -> None:
    """Show a model, its aliases and its versions."""
    with Client() as client:
        model = client.registry.get_model(name)
        versions = client.registry.list_versions(name)
    console.print(f"[bold]{escape(model.name)}[/bold]  id {model.id}")
    if model.description:
        console.print(escape(model.description))
    console.print(f"Created {_time(model.created_at)}, updated {_time(model.updated_at)}")
    aliases = ", ".join(f"{alias} -> {number}" for alias, number in model.aliases.items())
    console.print(f"Aliases: {escape(aliases) if aliases else '(none)'}")
    console.print(_versions_table(f"Versions ({len(versions)})", versions))
    for version in versions:
        if not version.onnx_verified and version.metadata.get("onnx_reason"):
            reason = escape(str(version.metadata["onnx_reason"]))
            console.print(f"Version {version.version} runs natively: {reason}")


@error_boundary
def list_versions(name: Annotated[str, typer.Argument(help="Model name.")]) -> None:
    """List the versions of a model."""
    with Client() as client:
        versions = client.registry.list_versions(name)
    console.print(_versions_table(f"Versions of {escape(name)} ({len(versions)})", versions))


@error_boundary
def register_version(
    name: Annotated[str, typer.Argument(help="Model name; created if missing.")],
    run_id: Annotated[str, typer.Option("--run", help="Run whose artifacts hold the model.")],
    path: Annotated[
        str, typer.Option("--path", help="Artifact folder of the model in the run.")
    ] = "model",
    description: Annotated[str, typer.Option(help="Description of the version.")] = "",
) -> None:
    """Register the model logged in a run as the model's next version."""
    with Client() as client:
        version = client.registry.create_version(name, run_id, path, description)
    runtime = "onnxruntime" if version.onnx_verified else "native"
    console.print(f"Registered [bold]{escape(version.ref)}[/bold] (runtime {runtime}).")


@error_boundary
def set_alias(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Argument(help="Alias, such as champion.")],
    version: Annotated[int, typer.Argument(help="Version number the alias points to.")],
) -> None:
    """Point an alias at a version, moving it if it already exists."""
    with Client() as client:
        result = client.registry.set_alias(name, alias, version)
    console.print(f"{escape(name)}@{escape(alias)} -> version {result.version}")


@error_boundary
def delete_alias(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Argument(help="Alias to remove.")],
) -> None:
    """Remove an alias; the version it pointed to is kept."""
    with Client() as client:
        client.registry.delete_alias(name, alias)
    console.print(f"Deleted alias {escape(name)}@{escape(alias)}.")
