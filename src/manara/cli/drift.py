"""``manara drift``: compare a current sample with a reference and write drift reports."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from manara.cli.common import console, error_boundary, error_console, settings
from manara.errors import InvalidInputError

if TYPE_CHECKING:
    from manara.monitoring.report import ReportFiles
    from manara.monitoring.results import DriftReport

_SOURCE_HELP = "CSV or Parquet file, run:<RUN_ID> or predictions:<MODEL>[:<VERSION>]."


def register(app: typer.Typer) -> None:
    app.command("drift")(drift)


def _names(text: str | None) -> list[str]:
    if not text:
        return []
    return [name.strip() for name in text.split(",") if name.strip()]


@error_boundary
def drift(
    reference: Annotated[
        str,
        typer.Option(
            "--reference", envvar="MANARA_DRIFT_REFERENCE", help=f"Reference sample: {_SOURCE_HELP}"
        ),
    ],
    current: Annotated[
        str,
        typer.Option(
            "--current", envvar="MANARA_DRIFT_CURRENT", help=f"Current sample: {_SOURCE_HELP}"
        ),
    ],
    features: Annotated[
        str | None,
        typer.Option(
            "--features",
            envvar="MANARA_DRIFT_FEATURES",
            help="Comma-separated features to compare; default: every column the samples share.",
        ),
    ] = None,
    categorical: Annotated[
        str | None,
        typer.Option(
            "--categorical",
            envvar="MANARA_DRIFT_CATEGORICAL",
            help="Comma-separated features to compare as categories, whatever their type.",
        ),
    ] = None,
    numeric: Annotated[
        str | None,
        typer.Option(
            "--numeric",
            envvar="MANARA_DRIFT_NUMERIC",
            help="Comma-separated features to compare as numbers, whatever their type.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            envvar="MANARA_DRIFT_SINCE",
            help="Start of the current prediction-log window, ISO 8601 with a timezone "
            "(inclusive).",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            envvar="MANARA_DRIFT_UNTIL",
            help="End of the current prediction-log window, ISO 8601 with a timezone (exclusive).",
        ),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            envvar="MANARA_DRIFT_OUTPUT_DIR",
            help="Folder for the HTML and JSON reports; default: MANARA_HOME/reports.",
        ),
    ] = None,
    drift_share: Annotated[
        float,
        typer.Option(
            "--drift-share",
            envvar="MANARA_DRIFT_SHARE",
            help="Share of drifted features (0-1] at which the data set counts as drifted.",
        ),
    ] = 0.5,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", envvar="MANARA_DRIFT_JSON", help="Print the JSON report instead of a table."
        ),
    ] = False,
    fail_on_drift: Annotated[
        bool,
        typer.Option(
            "--fail-on-drift",
            envvar="MANARA_DRIFT_FAIL_ON_DRIFT",
            help="Exit with status 1 when dataset drift is detected (for CI); otherwise exit 0.",
        ),
    ] = False,
) -> None:
    """Test each feature for drift and write a self-contained HTML report and a JSON report.

    One test decides per feature, by sample size. When either sample has
    1,000 values or fewer: Kolmogorov-Smirnov p-value below 0.05 (numeric),
    chi-square p-value below 0.05 (categorical). When both have more, p-values
    flag trivial differences, so a distance decides instead: normalised
    Wasserstein above 0.1 (numeric), PSI above 0.2 (categorical); the p-values
    are still reported. Pass --features to leave out ids, timestamps and the
    target. Exits 0 whether or not drift is found, unless --fail-on-drift is
    given.
    """
    # Imported here because pandas and SciPy would slow every other command's start.
    from manara.monitoring.drift import compute_drift
    from manara.monitoring.report import ReportContext, report_json, write_reports
    from manara.monitoring.results import DriftConfig
    from manara.monitoring.sources import load_frame, parse_timestamp

    window_since = parse_timestamp(since, "--since") if since else None
    window_until = parse_timestamp(until, "--until") if until else None
    if window_since and window_until and window_since >= window_until:
        raise InvalidInputError(f"--since {since} must be before --until {until}.")
    config = DriftConfig(drift_share=drift_share)
    current_settings = settings()

    report = compute_drift(
        load_frame(reference, settings=current_settings),
        load_frame(current, settings=current_settings, since=window_since, until=window_until),
        _names(features) or None,
        config,
        categorical=_names(categorical),
        numeric=_names(numeric),
    )
    context = ReportContext(generated_at=datetime.now(UTC), reference=reference, current=current)
    files = write_reports(report, output_dir or current_settings.reports_dir, context)

    if as_json:
        typer.echo(report_json(report, context).decode())
        # stdout stays pure JSON; the file paths go to stderr.
        error_console.print(f"HTML report: {files.html}", highlight=False, soft_wrap=True)
        error_console.print(f"JSON report: {files.json}", highlight=False, soft_wrap=True)
    else:
        _print_report(report, files)
    if fail_on_drift and report.summary.dataset_drift:
        raise typer.Exit(1)


def _print_report(report: DriftReport, files: ReportFiles) -> None:
    from manara.monitoring.report import format_number

    table = Table(title="Data drift by feature")
    for column in ("feature", "type", "test", "statistic", "p-value", "drift"):
        table.add_column(column, justify="right" if column in ("statistic", "p-value") else "left")
    for result in report.ranked():
        if result.status == "ok":
            verdict = "[bold red]yes[/bold red]" if result.drift_detected else "no"
        else:
            verdict = f"[yellow]{result.status.replace('_', ' ')}[/yellow]"
        table.add_row(
            escape(result.name),
            result.feature_type,
            result.test or "-",
            format_number(result.statistic),
            format_number(result.p_value),
            verdict,
        )
    console.print(table)

    summary = report.summary
    headline = "Dataset drift detected" if summary.dataset_drift else "No dataset drift"
    console.print(
        f"{headline}: {summary.n_drifted} of {summary.n_tested} tested features drifted "
        f"({summary.share_drifted:.0%}; threshold {summary.drift_share:.0%}).",
        highlight=False,
    )
    for result in report.features:
        if result.message:
            console.print(
                f"[yellow]{escape(result.name)}:[/yellow] {escape(result.message)}",
                highlight=False,
            )
    console.print(f"HTML report: {files.html}", highlight=False, soft_wrap=True)
    console.print(f"JSON report: {files.json}", highlight=False, soft_wrap=True)
