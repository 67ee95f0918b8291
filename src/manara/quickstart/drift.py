"""Drift of the served features per month against the champion's training data.

The reference is the stored copy of the champion run's training data set,
read the way ``manara drift --reference run:<id>`` reads it. The current
sample is what the inference server wrote to its prediction log, so the
reports describe the traffic the model actually received. Months are the
flights' local months, taken from the served ``month`` input, because the
log's own timestamps are the replay time, not the flight time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from manara.context import Context
from manara.errors import InvalidInputError
from manara.monitoring.drift import compute_drift
from manara.monitoring.report import ReportContext, write_reports
from manara.monitoring.results import DriftReport
from manara.monitoring.sources import prediction_inputs, read_prediction_log, training_dataset
from manara.quickstart.data import FEATURE_COLUMNS
from manara.registry.entities import ModelVersion

logger = logging.getLogger(__name__)

TOP_FEATURES = 3


@dataclass(frozen=True)
class MonthDrift:
    month: int
    """Calendar month of 2013 in New York time."""
    rows: int
    share_drifted: float
    """Share of the tested features that drifted."""
    dataset_drift: bool
    top_features: tuple[str, ...]
    """Drifted features with the highest drift scores, highest first."""


@dataclass(frozen=True)
class DriftOutcome:
    months: list[MonthDrift]
    overall: DriftReport
    """All served months together."""
    predictions_logged: int
    """Rows read back from the prediction log of the served version."""
    html: Path
    json: Path


def month_drift(month: int, report: DriftReport) -> MonthDrift:
    drifted = [f.name for f in report.ranked() if f.drift_detected]
    return MonthDrift(
        month=month,
        rows=report.summary.current_rows,
        share_drifted=report.summary.share_drifted,
        dataset_drift=report.summary.dataset_drift,
        top_features=tuple(drifted[:TOP_FEATURES]),
    )


def _served_inputs(context: Context, version: ModelVersion) -> pd.DataFrame:
    log = read_prediction_log(context.settings.predictions_dir, version.model_name, version.version)
    inputs = prediction_inputs(log).reset_index(drop=True)
    missing = [name for name in FEATURE_COLUMNS if name not in inputs.columns]
    if missing:
        raise InvalidInputError(
            f"The prediction log of {version.ref} lacks the inputs {', '.join(missing)}, so "
            "it was not written by the quickstart's model."
        )
    return inputs


def monthly_drift(context: Context, run_id: str, version: ModelVersion) -> DriftOutcome:
    """Compare each served month with the training data and write the reports.

    Writes ``quickstart-v<N>-drift.html`` and ``.json`` for all served
    months, and one pair per month (``quickstart-v<N>-drift-2013-09`` ...),
    under the workspace's reports folder.
    """
    from manara.tracking.service import TrackingService

    tracking = TrackingService(context)
    run = tracking.get_run(run_id)
    reference = training_dataset(run, context.artifacts, tracking)
    current = _served_inputs(context, version)
    features = list(FEATURE_COLUMNS)
    now = context.clock.now()
    stem = f"quickstart-v{version.version}-drift"
    reports_dir = context.settings.reports_dir

    months: list[MonthDrift] = []
    for value in sorted(current["month"].dropna().unique()):
        month = int(value)
        rows = current[current["month"] == value]
        report = compute_drift(reference, rows, features)
        label = f"2013-{month:02d}"
        period_context = _context(now, run_id, version, label)
        write_reports(report, reports_dir, period_context, stem=f"{stem}-{label}")
        months.append(month_drift(month, report))

    overall = compute_drift(reference, current, features)
    files = write_reports(
        overall,
        context.settings.reports_dir,
        _context(now, run_id, version, "Sep–Dec 2013"),
        stem=stem,
    )
    logger.info("quickstart drift computed months=%d rows=%d", len(months), len(current))
    return DriftOutcome(months, overall, len(current), files.html, files.json)


def _context(now: datetime, run_id: str, version: ModelVersion, period: str) -> ReportContext:
    return ReportContext(
        generated_at=now,
        reference=f"run:{run_id} (training data, Jan–Aug 2013)",
        current=f"predictions:{version.model_name}:{version.version} (flights of {period})",
        title=f"Flight-delay drift, {period}",
    )
