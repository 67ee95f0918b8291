"""``manara runs`` and ``manara experiments``: list, show and compare tracked runs.

The commands go through ``manara.Client``, so they read the local workspace
or, when ``MANARA_SERVER_URL`` is set, a remote control plane.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from manara.cli.common import console, error_boundary
from manara.client import Client
from manara.errors import InvalidInputError, NotFoundError
from manara.tracking.entities import Run

# Run ids are 32 lowercase hex digits; the quickstart and other output print the first 8.
_RUN_ID_PREFIX = re.compile(r"[0-9a-f]{8,31}", re.IGNORECASE)
# Ambiguous prefixes list at most this many candidate runs.
_MAX_CANDIDATES = 5
# Longer param and metric names are cut with an ellipsis in `runs compare`.
_MAX_KEY_WIDTH = 40
_STATUS_STYLES = {"RUNNING": "cyan", "FINISHED": "green", "FAILED": "red", "KILLED": "yellow"}


def register(app: typer.Typer) -> None:
    runs_app = typer.Typer(help="List, show and compare tracked runs.", no_args_is_help=True)
    runs_app.command("list")(list_runs)
    runs_app.command("show")(show_run)
    runs_app.command("compare")(compare_runs)
    app.add_typer(runs_app, name="runs")

    experiments_app = typer.Typer(help="List experiments.", no_args_is_help=True)
    experiments_app.command("list")(list_experiments)
    app.add_typer(experiments_app, name="experiments")


def _time(value: datetime | None) -> str:
    return "" if value is None else value.isoformat(timespec="seconds")


def _status(run: Run) -> str:
    style = _STATUS_STYLES.get(run.status, "white")
    return f"[{style}]{run.status}[/{style}]"


def _number(value: float) -> str:
    return f"{value:.6g}"


@error_boundary
def list_runs(
    experiment: Annotated[
        str | None,
        typer.Option("--experiment", "-e", help="Only runs of the experiment with this name."),
    ] = None,
    filter_string: Annotated[
        str | None,
        typer.Option(
            "--filter",
            "-f",
            help="Filter such as \"metrics.auc > 0.8 and params.max_depth = '5'\".",
        ),
    ] = None,
    order_by: Annotated[
        list[str] | None,
        typer.Option(
            "--order-by", "-o", help="Sort key such as 'metrics.auc DESC'; repeat for more."
        ),
    ] = None,
    max_results: Annotated[
        int, typer.Option("--max-results", "-n", help="Maximum number of runs to list.")
    ] = 100,
) -> None:
    """List runs, newest first unless --order-by sets another order."""
    with Client() as client:
        experiment_ids = None
        if experiment is not None:
            experiment_ids = [client.tracking.get_experiment_by_name(experiment).id]
        runs = client.tracking.search_runs(experiment_ids, filter_string, order_by, max_results)
    table = Table(title=f"Runs ({len(runs)})")
    table.add_column("run id", no_wrap=True)
    table.add_column("name")
    table.add_column("status")
    table.add_column("started")
    table.add_column("metrics")
    for run in runs:
        metrics = ", ".join(f"{key}={_number(value)}" for key, value in run.metrics.items())
        table.add_row(
            run.id, escape(run.name), _status(run), _time(run.start_time), escape(metrics)
        )
    console.print(table)


def _key_value_table(title: str, values: dict[str, str]) -> Table:
    table = Table(title=title)
    table.add_column("key")
    table.add_column("value")
    for key, value in values.items():
        table.add_row(escape(key), escape(value))
    return table


def resolve_run(client: Client, run_id: str) -> Run:
    """Get a run by its full id or by a unique prefix of 8 or more hex digits."""
    if not _RUN_ID_PREFIX.fullmatch(run_id):
        return client.tracking.get_run(run_id)
    run_id = run_id.lower()
    # Search covers only the runs the caller may read, so a prefix never
    # reveals that a run they cannot read exists.
    matches = client.tracking.search_runs(
        None, f"attributes.run_id LIKE '{run_id}%'", None, _MAX_CANDIDATES + 1
    )
    if not matches:
        raise NotFoundError(
            f"Run {run_id!r} not found: no run id starts with it. "
            "List run ids with `manara runs list`."
        )
    if len(matches) > 1:
        shown = ", ".join(run.id for run in matches[:_MAX_CANDIDATES])
        more = ", ..." if len(matches) > _MAX_CANDIDATES else ""
        raise InvalidInputError(
            f"Run id prefix {run_id!r} is ambiguous; it matches {shown}{more}. "
            "Give more characters of the id."
        )
    return matches[0]


@error_boundary
def show_run(
    run_id: Annotated[
        str, typer.Argument(help="Id of the run, or its first 8 or more characters.")
    ],
) -> None:
    """Show one run: attributes, params, latest metrics, tags, inputs and artifacts."""
    with Client() as client:
        run = resolve_run(client, run_id)
        experiment = client.tracking.get_experiment(run.experiment_id)
    console.print(f"[bold]Run {run.id}[/bold] ({escape(run.name)})")
    console.print(f"experiment: {escape(experiment.name)} ({experiment.id})")
    console.print(f"status: {_status(run)}")
    console.print(f"started: {_time(run.start_time)}  ended: {_time(run.end_time) or '-'}")
    console.print(_key_value_table("Params", run.params))
    metrics = {key: _number(value) for key, value in run.metrics.items()}
    console.print(_key_value_table("Metrics (latest)", metrics))
    console.print(_key_value_table("Tags", run.tags))
    if run.inputs:
        inputs = Table(title="Inputs")
        for column in ("name", "context", "rows", "digest", "source"):
            inputs.add_column(column)
        for item in run.inputs:
            inputs.add_row(
                escape(item.name),
                escape(item.context),
                str(item.row_count),
                item.digest[:12],
                escape(item.source),
            )
        console.print(inputs)
    if run.artifacts:
        artifacts = Table(title="Artifacts")
        for column in ("path", "bytes", "sha256"):
            artifacts.add_column(column)
        for artifact in run.artifacts:
            artifacts.add_row(escape(artifact.path), str(artifact.size), artifact.digest[:12])
        console.print(artifacts)


def compare_values(columns: list[dict[str, str]]) -> list[tuple[str, list[str], bool]]:
    """Line up values by key across runs: ``(key, one value per run, whether they differ)``."""
    keys = sorted({key for values in columns for key in values})
    lined_up = []
    for key in keys:
        cells = [values.get(key, "-") for values in columns]
        lined_up.append((key, cells, len(set(cells)) > 1))
    return lined_up


def _compare_rows(table: Table, section: str, columns: list[dict[str, str]]) -> None:
    for key, cells, differs in compare_values(columns):
        shown = [escape(cell) for cell in cells]
        if differs:
            shown = [f"[bold yellow]{cell}[/bold yellow]" for cell in shown]
        table.add_row(section, escape(key), *shown)


@error_boundary
def compare_runs(
    run_ids: Annotated[
        list[str],
        typer.Argument(help="Ids of two or more runs, or their first 8 or more characters."),
    ],
) -> None:
    """Compare params and latest metrics side by side; values that differ are highlighted."""
    if len(run_ids) < 2:
        raise typer.BadParameter("Give at least two run ids to compare.")
    with Client() as client:
        runs = [resolve_run(client, run_id) for run_id in run_ids]
    metrics = [{key: _number(value) for key, value in run.metrics.items()} for run in runs]
    keys = [key for run in runs for key in run.params] + [key for row in metrics for key in row]
    table = Table(title="Run comparison (differing values highlighted)")
    # Rich shrinks every column of a table too wide for the terminal, so the
    # names get a fixed width and the long run ids fold onto more lines instead.
    table.add_column("", no_wrap=True, min_width=len("metric"))
    key_width = min(max(map(len, keys), default=0), _MAX_KEY_WIDTH)
    table.add_column("key", no_wrap=True, min_width=max(key_width, len("status")))
    for run in runs:
        table.add_column(f"{escape(run.name)}\n{run.id}", overflow="fold")
    table.add_row("", "status", *[_status(run) for run in runs])
    _compare_rows(table, "param", [run.params for run in runs])
    _compare_rows(table, "metric", metrics)
    console.print(table)


@error_boundary
def list_experiments() -> None:
    """List experiments, oldest first."""
    with Client() as client:
        experiments = client.tracking.list_experiments()
    table = Table(title=f"Experiments ({len(experiments)})")
    table.add_column("experiment id", no_wrap=True)
    table.add_column("name")
    table.add_column("created")
    table.add_column("description")
    for experiment in experiments:
        table.add_row(
            experiment.id,
            escape(experiment.name),
            _time(experiment.created_at),
            escape(experiment.description),
        )
    console.print(table)
