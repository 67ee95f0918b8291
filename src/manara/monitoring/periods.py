"""Drift of each calendar period of the current data against one reference."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from manara.errors import InvalidInputError
from manara.monitoring.drift import compute_drift
from manara.monitoring.results import DriftConfig, DriftReport

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodDrift:
    period: str
    """Label of the period, as pandas writes it: ``2013-07`` for a month."""
    start: datetime
    """First instant of the period, UTC."""
    end: datetime
    """First instant after the period, UTC."""
    rows: int
    report: DriftReport


def drift_by_period(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    period_column: str | None = None,
    freq: str = "M",
    features: Sequence[str] | None = None,
    config: DriftConfig | None = None,
    *,
    categorical: Collection[str] = (),
    numeric: Collection[str] = (),
) -> list[PeriodDrift]:
    """Split ``current`` into calendar periods in UTC and compute drift for each one.

    The time of each row comes from ``period_column``, or from the index
    when it is ``None`` (the prediction log loader puts the prediction time
    there). Times must be timezone-aware. ``freq`` is a pandas period
    alias: ``M`` for months, ``W`` for weeks, ``D`` for days. Periods
    without rows are left out; the result is in time order.
    """
    times = _period_times(current, period_column)
    try:
        periods = times.dt.tz_convert(UTC).dt.tz_localize(None).dt.to_period(freq)
    except ValueError as exc:
        raise InvalidInputError(
            f"Invalid period frequency {freq!r} ({exc}). Use a pandas period alias such as "
            "'M' (month), 'W' (week) or 'D' (day)."
        ) from exc
    if period_column is not None and features is None:
        features = [
            str(c) for c in reference.columns if c in current.columns and c != period_column
        ]
    undated = int(periods.isna().sum())
    if undated:
        logger.warning("drift by period: %d rows without a time were left out", undated)

    results: list[PeriodDrift] = []
    for period in sorted(periods.dropna().unique()):
        rows = current.loc[(periods == period).to_numpy()]
        report = compute_drift(
            reference, rows, features, config, categorical=categorical, numeric=numeric
        )
        results.append(
            PeriodDrift(
                period=str(period),
                start=period.start_time.tz_localize(UTC).to_pydatetime(),
                end=(period + 1).start_time.tz_localize(UTC).to_pydatetime(),
                rows=len(rows),
                report=report,
            )
        )
    return results


def _period_times(current: pd.DataFrame, period_column: str | None) -> pd.Series:
    if period_column is None:
        if not isinstance(current.index, pd.DatetimeIndex):
            raise InvalidInputError(
                "drift_by_period needs period_column=, or a current frame indexed by time; "
                f"the index is a {type(current.index).__name__}."
            )
        times = pd.Series(current.index, index=pd.RangeIndex(len(current)))
        source = "the index"
    else:
        if period_column not in current.columns:
            raise InvalidInputError(
                f"Period column {period_column!r} not found in the current sample. "
                f"Its columns are: {', '.join(map(str, current.columns))}."
            )
        times = current[period_column].reset_index(drop=True)
        source = f"column {period_column!r}"
    if not pd.api.types.is_datetime64_any_dtype(times.dtype):
        raise InvalidInputError(
            f"The times in {source} are {times.dtype}, not timestamps. Convert them with "
            "pandas.to_datetime(..., utc=True)."
        )
    if getattr(times.dtype, "tz", None) is None:
        raise InvalidInputError(
            f"The times in {source} have no timezone. Declare it, for example with "
            ".dt.tz_localize('UTC') for times recorded in UTC."
        )
    return times
