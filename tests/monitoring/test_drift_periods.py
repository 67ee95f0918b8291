"""drift_by_period: one drift report per calendar month of the current data."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from manara.errors import InvalidInputError
from manara.monitoring import compute_drift, drift_by_period


def monthly_frame() -> pd.DataFrame:
    """Three months of data; only the last one is shifted."""
    rng = np.random.default_rng(0)
    months = []
    for month, shift in ((1, 0.0), (2, 0.0), (3, 1.5)):
        times = pd.date_range(f"2024-{month:02d}-01", periods=200, freq="h", tz="UTC")
        months.append(pd.DataFrame({"time": times, "x": rng.normal(shift, 1.0, 200)}))
    return pd.concat(months, ignore_index=True)


def reference_frame() -> pd.DataFrame:
    return pd.DataFrame({"x": np.random.default_rng(1).normal(0.0, 1.0, 500)})


def test_one_report_per_month() -> None:
    current = monthly_frame()

    periods = drift_by_period(reference_frame(), current, period_column="time")

    assert [p.period for p in periods] == ["2024-01", "2024-02", "2024-03"]
    assert [p.rows for p in periods] == [200, 200, 200]
    assert periods[0].start == datetime(2024, 1, 1, tzinfo=UTC)
    assert periods[0].end == datetime(2024, 2, 1, tzinfo=UTC)
    assert [p.report.feature("x").drift_detected for p in periods] == [False, False, True]


def test_period_matches_direct_computation() -> None:
    current = monthly_frame()
    march = current[current["time"] >= pd.Timestamp("2024-03-01", tz="UTC")]

    periods = drift_by_period(reference_frame(), current, period_column="time")
    direct = compute_drift(reference_frame(), march, features=["x"])

    assert periods[2].report.feature("x").statistics == direct.feature("x").statistics


def test_periods_are_utc_months() -> None:
    # 2024-01-31T22:00Z is already 1 February in Dubai (UTC+4); it counts for January.
    times = pd.DatetimeIndex(["2024-01-31T22:00Z"] * 20 + ["2024-02-01T01:00Z"] * 30)
    current = pd.DataFrame({"x": np.arange(50.0)}, index=times.tz_convert("Asia/Dubai"))

    periods = drift_by_period(reference_frame(), current)

    assert [p.period for p in periods] == ["2024-01", "2024-02"]
    assert [p.rows for p in periods] == [20, 30]


def test_weekly_periods() -> None:
    periods = drift_by_period(reference_frame(), monthly_frame(), period_column="time", freq="W")

    assert len(periods) > 3
    assert sum(p.rows for p in periods) == 600


def test_naive_times_rejected() -> None:
    current = monthly_frame()
    current["time"] = current["time"].dt.tz_localize(None)

    with pytest.raises(InvalidInputError, match="no timezone"):
        drift_by_period(reference_frame(), current, period_column="time")


def test_period_errors() -> None:
    current = monthly_frame()

    with pytest.raises(InvalidInputError, match="not found"):
        drift_by_period(reference_frame(), current, period_column="when")
    with pytest.raises(InvalidInputError, match="indexed by time"):
        drift_by_period(reference_frame(), current)
    with pytest.raises(InvalidInputError, match="not timestamps"):
        drift_by_period(reference_frame(), current, period_column="x")
    with pytest.raises(InvalidInputError, match="frequency"):
        drift_by_period(reference_frame(), current, period_column="time", freq="fortnight")
