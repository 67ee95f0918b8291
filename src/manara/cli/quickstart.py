"""``manara quickstart``: the whole platform on nycflights13, from features to drift reports."""

from __future__ import annotations

import calendar
import math
import time
from types import TracebackType
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from manara.cli.common import console, error_boundary, settings

if TYPE_CHECKING:
    from manara.quickstart.run import QuickstartResult


def register(app: typer.Typer) -> None:
    app.command("quickstart")(quickstart)


class RichReporter:
    """Draws each quickstart step as a spinner, or a bar when it has a total, then a tick line."""

    def __init__(self) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task: TaskID | None = None
        self._step = ""
        self._started = 0.0

    def __enter__(self) -> RichReporter:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is not None and exc_type is not None:
            self._progress.console.print(f"[red]✗[/red] {escape(self._step)}")
        self._progress.stop()

    def begin(self, step: str, total: int | None = None) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._step = step
        self._started = time.perf_counter()
        self._task = self._progress.add_task(escape(step), total=total)

    def advance(self, amount: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)

    def end(self, detail: str = "") -> None:
        seconds = time.perf_counter() - self._started
        suffix = f" [dim]— {escape(detail)}[/dim]" if detail else ""
        self._progress.console.print(
            f"[green]✓[/green] {escape(self._step)}{suffix} [dim]({seconds:.1f} s)[/dim]"
        )
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None


def _number(value: float, digits: int = 3) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def _runs_table(result: QuickstartResult) -> Table:
    table = Table(title="Candidate runs (validation: Jul–Aug 2013)", title_justify="left")
    for column in ("run", "estimator", "roc_auc", "log_loss", "accuracy", "ONNX", "seconds"):
        table.add_column(column, justify="left" if column in ("run", "estimator") else "right")
    for candidate in result.candidates:
        champion = candidate.run_id == result.champion_run_id
        table.add_row(
            candidate.run_id[:8] + (" ★" if champion else ""),
            candidate.name,
            _number(candidate.metrics["roc_auc"]),
            _number(candidate.metrics["log_loss"]),
            _number(candidate.metrics["accuracy"]),
            "yes" if candidate.onnx_verified else "no",
            f"{candidate.seconds:.1f}",
        )
    return table


def _performance_table(result: QuickstartResult) -> Table:
    table = Table(title=f"Served {result.champion.ref} per month", title_justify="left")
    for column in ("month", "flights", "roc_auc", "accuracy", "late (actual)", "late (predicted)"):
        table.add_column(column, justify="left" if column == "month" else "right")
    for row in result.monthly.to_dict("records"):
        table.add_row(
            f"{calendar.month_abbr[int(row['month'])]} 2013",
            f"{int(row['rows']):,}",
            _number(float(row["roc_auc"])),
            _number(float(row["accuracy"])),
            f"{100 * float(row['positive_rate']):.1f}%",
            f"{100 * float(row['mean_probability']):.1f}%",
        )
    return table


def _drift_table(result: QuickstartResult) -> Table:
    table = Table(title="Drift of served features vs training data", title_justify="left")
    for column in ("month", "rows", "drifted features", "dataset drift", "top drifting features"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for month in result.drift:
        table.add_row(
            f"{calendar.month_abbr[month.month]} 2013",
            f"{month.rows:,}",
            f"{100 * month.share_drifted:.0f}%",
            "[red]yes[/red]" if month.dataset_drift else "no",
            escape(", ".join(month.top_features) or "–"),
        )
    return table


def print_summary(result: QuickstartResult, seconds: float) -> None:
    from manara.quickstart.run import CHAMPION_ALIAS, MODEL_NAME

    console.print()
    console.print(_runs_table(result))
    console.print(f"Champion run: {result.champion_run_id} (★)")
    version = result.champion
    runtime = "ONNX Runtime" if version.onnx_verified else "native scikit-learn"
    console.print(
        f"Registered [bold]{version.ref}[/bold] with alias [bold]@{CHAMPION_ALIAS}[/bold] "
        f"(served with {runtime})."
    )
    latency = result.latency_ms
    console.print(
        f"Served {result.replay.requests:,} requests, {result.replay.rows:,} rows predicted, "
        f"{result.predictions_logged:,} rows in the prediction log; client latency per request "
        f"p50 {latency['p50_ms']:.1f} ms, p99 {latency['p99_ms']:.1f} ms."
    )
    console.print()
    console.print(_performance_table(result))
    console.print()
    console.print(_drift_table(result))
    console.print(f"Drift report: [link=file://{result.report_html.resolve()}]{result.report_html}")
    if result.audit is not None:
        verdict = (
            "verified" if result.audit.ok else f"FAILED ({len(result.audit.problems)} problems)"
        )
        console.print(
            f"Audit log {verdict}: {result.audit.events_checked:,} events, "
            f"{result.audit.checkpoints_checked} signed checkpoints, root {result.audit.root_hash}."
        )
    console.print()
    console.print("Next, try:")
    for command in (
        "manara runs list",
        f"manara models show {MODEL_NAME}",
        f"manara drift --reference run:{result.champion_run_id} --current predictions:{MODEL_NAME}",
        "manara audit verify",
    ):
        console.print(f"  [cyan]{escape(command)}[/cyan]")
    console.print(f"\nQuickstart finished in {seconds:.0f} s. Workspace: {result.home}")


@error_boundary
def quickstart(
    sample: float = typer.Option(
        1.0,
        envvar="MANARA_QUICKSTART_SAMPLE",
        help="Share of the 2013 flights to use, above 0 and at most 1. Smaller runs faster.",
    ),
    port: int = typer.Option(
        0,
        envvar="MANARA_QUICKSTART_PORT",
        help="Loopback port for the inference server. 0 picks a free port.",
    ),
    batch_size: int = typer.Option(
        500, envvar="MANARA_QUICKSTART_BATCH_SIZE", help="Rows per inference request."
    ),
) -> None:
    """Train, register, serve and monitor a flight-delay model on nycflights13.

    Builds features with point-in-time joins and trains two candidates on
    January–August 2013 as tracked runs. Registers the better one as
    flight-delay@champion and serves it on 127.0.0.1 with authentication and
    the prediction log. Replays September–December as Open Inference
    Protocol requests, scores the predictions against the real outcomes and
    writes drift reports under MANARA_HOME/reports. Running it again on the
    same workspace adds new runs and a new model version.
    """
    # Imported here because the quickstart package loads scikit-learn, pandas,
    # DuckDB and SciPy, which every other command and --help can do without.
    from manara.quickstart.run import QuickstartOptions, run_quickstart

    options = QuickstartOptions(sample=sample, port=port, batch_size=batch_size)
    started = time.perf_counter()
    with RichReporter() as reporter:
        result = run_quickstart(settings(), options, reporter)
    print_summary(result, time.perf_counter() - started)
