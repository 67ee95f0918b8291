"""``manara train SPEC.yaml``: run a training spec with a progress display."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from manara.cli.common import console, error_boundary
from manara.client import Client
from manara.training.spec import load_spec

if TYPE_CHECKING:
    from manara.training.trainer import TrainingResult


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)


@error_boundary
def train_command(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC.yaml", help="Training spec (YAML).")],
) -> None:
    """Train, evaluate, track and register a model as the spec describes."""
    # The trainer loads scikit-learn and SciPy, which the rest of the CLI does not need.
    from manara.training.trainer import STAGES, train

    spec = load_spec(spec_path)
    with (
        Client() as client,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress,
    ):
        task = progress.add_task("starting", total=len(STAGES))

        def advance(stage: str) -> None:
            progress.update(task, description=stage, completed=STAGES.index(stage))

        result = train(client, spec, advance)
        progress.update(task, description="done", completed=len(STAGES))
    _print_result(result)


def _print_result(result: TrainingResult) -> None:
    console.print(f"Run [bold]{result.run_id}[/bold] finished.")
    table = Table(title="Test metrics")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.metrics.items():
        table.add_row(name, f"{value:.6g}")
    console.print(table)
    for name, reason in result.skipped_metrics.items():
        console.print(f"Skipped {name}: {escape(reason)}")
    version = result.model_version
    if version is not None:
        runtime = "onnxruntime" if version.onnx_verified else "native"
        aliases = f" (aliases: {', '.join(version.aliases)})" if version.aliases else ""
        console.print(f"Registered [bold]{escape(version.ref)}[/bold]{aliases}, runtime {runtime}.")
