"""Reading, checking and splitting a training data set before any run is created."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from manara.errors import InvalidInputError
from manara.training.spec import TrainingSpec

_MAX_LISTED_COLUMNS = 40


@dataclass(frozen=True)
class SplitData:
    train: pd.DataFrame
    test: pd.DataFrame


def read_frame(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise InvalidInputError(
            f"Unsupported data file {path.name!r}: use a .csv or .parquet file."
        )
    if not path.is_file():
        raise InvalidInputError(f"Data file {path} not found. Check data.path in the spec.")
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"Cannot read the data file {path}: {exc}") from exc


def _available(frame: pd.DataFrame) -> str:
    names = [str(column) for column in frame.columns]
    listed = ", ".join(names[:_MAX_LISTED_COLUMNS])
    more = (
        f" and {len(names) - _MAX_LISTED_COLUMNS} more" if len(names) > _MAX_LISTED_COLUMNS else ""
    )
    return listed + more


def check_columns(frame: pd.DataFrame, spec: TrainingSpec) -> None:
    """Raise ``InvalidInputError`` naming the first spec column the data lacks."""
    required = [*spec.features.columns, spec.target]
    if spec.data.timestamp_column:
        required.append(spec.data.timestamp_column)
    for column in required:
        if column not in frame.columns:
            raise InvalidInputError(
                f"Column {column!r} named in the spec is missing from {spec.data.path.name}. "
                f"Available columns: {_available(frame)}.",
                column=column,
            )
    for column in spec.features.numeric:
        dtype = frame[column].dtype
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            raise InvalidInputError(
                f"Numeric feature {column!r} has dtype {dtype}. List it under "
                "features.categorical, or convert it to numbers.",
                column=column,
            )
    missing_target = int(frame[spec.target].isna().sum())
    if missing_target:
        raise InvalidInputError(
            f"The target {spec.target!r} is missing in {missing_target} rows. Drop or fill "
            "those rows before training.",
            column=spec.target,
        )


def parse_timestamps(frame: pd.DataFrame, spec: TrainingSpec) -> pd.Series:
    """Return the timestamp column as UTC; reject zone-less values unless the spec names a zone."""
    column = spec.data.timestamp_column
    if column is None:
        raise InvalidInputError("This spec has no data.timestamp_column.")
    raw = frame[column]
    try:
        stamps = raw if isinstance(raw.dtype, pd.DatetimeTZDtype) else pd.to_datetime(raw)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(
            f"Cannot read column {column!r} as timestamps: {exc}. Use ISO 8601 values with a "
            "time zone offset, such as 2026-03-01T12:00:00Z.",
            column=column,
        ) from exc
    if not isinstance(stamps.dtype, pd.DatetimeTZDtype):
        if spec.data.assume_timezone is None:
            raise InvalidInputError(
                f"Timestamp column {column!r} has no time zone, so its times are ambiguous. "
                "Store the values with an offset (such as 2026-03-01T12:00:00Z), or declare "
                "the zone in the spec with data.assume_timezone: UTC.",
                column=column,
            )
        stamps = stamps.dt.tz_localize(spec.data.assume_timezone)
    if stamps.isna().any():
        raise InvalidInputError(
            f"Timestamp column {column!r} has {int(stamps.isna().sum())} missing values. "
            "Drop or fill those rows.",
            column=column,
        )
    return stamps.dt.tz_convert("UTC")


def split_frame(frame: pd.DataFrame, spec: TrainingSpec) -> SplitData:
    split = spec.split
    if split.by_time:
        stamps = parse_timestamps(frame, spec)
        train = frame[(stamps < split.train_until).to_numpy()]
        test = frame[(stamps >= split.test_from).to_numpy()]
    else:
        if spec.data.timestamp_column is not None:
            parse_timestamps(frame, spec)
        rng = np.random.default_rng(split.seed)
        order = rng.permutation(len(frame))
        test_rows = int(round(len(frame) * float(split.test_fraction or 0.2)))
        test = frame.iloc[np.sort(order[:test_rows])]
        train = frame.iloc[np.sort(order[test_rows:])]
    for part, rows in (("training", train), ("test", test)):
        if len(rows) == 0:
            raise InvalidInputError(
                f"The {part} split of {spec.data.path.name} is empty. Adjust the split "
                "in the spec (train_until, test_from or test_fraction)."
            )
    return SplitData(train.reset_index(drop=True), test.reset_index(drop=True))


def check_target(data: SplitData, spec: TrainingSpec) -> None:
    if spec.task != "classification":
        if not pd.api.types.is_numeric_dtype(data.train[spec.target].dtype):
            raise InvalidInputError(
                f"The target {spec.target!r} must be numeric for a regressor; it has dtype "
                f"{data.train[spec.target].dtype}.",
                column=spec.target,
            )
        return
    classes = pd.unique(data.train[spec.target])
    if len(classes) < 2:
        raise InvalidInputError(
            f"The target {spec.target!r} has a single class ({classes[0]!r}) in the training "
            "split, so there is nothing to learn. Check the target column and the split.",
            column=spec.target,
        )
    if spec.estimator.entry.class_path == "xgboost.XGBClassifier":
        expected = set(range(len(classes)))
        if (
            not pd.api.types.is_integer_dtype(data.train[spec.target].dtype)
            or set(classes.tolist()) != expected
        ):
            raise InvalidInputError(
                f"XGBClassifier needs the target {spec.target!r} encoded as 0 to "
                f"{len(classes) - 1}; it has the classes {sorted(map(str, classes))[:10]}. "
                "Encode the labels, or use another estimator.",
                column=spec.target,
            )
