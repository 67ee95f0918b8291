"""Checks on what callers log: keys, param values, metrics and artifact paths.

The local service and the REST client run the same checks, so a bad value
fails before anything is sent or written. Every check raises
``InvalidInputError`` naming the value and the fix.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from manara.errors import InvalidInputError
from manara.tracking.entities import DatasetInput, Metric

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 6000
MAX_ARTIFACT_PATH_LENGTH = 1024
MAX_NAME_LENGTH = 256
# Steps are stored as signed 64-bit integers. -2**63 is rejected too, so the
# accepted range is symmetric.
_MAX_STEP = 2**63 - 1


@dataclass(frozen=True)
class MetricBatch:
    """Checked metrics, ready to store, as parallel columns.

    Columns rather than one tuple per metric: the store writes each key's
    values as arrays, and numpy checks a column in one call.
    """

    keys: list[str]
    values: np.ndarray
    """float64, all finite."""
    steps: np.ndarray
    """int64."""
    timestamps_ms: np.ndarray
    """int64, milliseconds since the epoch."""

    def __len__(self) -> int:
        return len(self.keys)


def check_key(key: object, kind: str) -> str:
    """Check a param, tag or metric key: a non-empty relative name of at most 250 characters."""
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"Invalid {kind} key {key!r}: use a non-empty string.", key=key)
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInputError(
            f"Invalid {kind} key {key[:40]!r}...: it has {len(key)} characters, "
            f"the maximum is {MAX_KEY_LENGTH}.",
            key=key,
        )
    if key.startswith("/") or ".." in key:
        raise InvalidInputError(
            f"Invalid {kind} key {key!r}: a key may not start with '/' or contain '..'.",
            key=key,
        )
    return key


def check_name(name: object, kind: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"Invalid {kind} name {name!r}: use a non-empty string.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"Invalid {kind} name {name[:40]!r}...: it has {len(name)} characters, "
            f"the maximum is {MAX_NAME_LENGTH}."
        )
    return name


def stringify_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Check param keys and turn each value into its ``str``, at most 6000 characters."""
    checked: dict[str, str] = {}
    for key, value in params.items():
        check_key(key, "param")
        text = value if isinstance(value, str) else str(value)
        if len(text) > MAX_PARAM_VALUE_LENGTH:
            raise InvalidInputError(
                f"Invalid value for param {key!r}: it has {len(text)} characters, the maximum "
                f"is {MAX_PARAM_VALUE_LENGTH}. Log long values as an artifact instead.",
                key=key,
            )
        checked[key] = text
    return checked


def check_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    checked: dict[str, str] = {}
    for key, value in (tags or {}).items():
        check_key(key, "tag")
        if not isinstance(value, str):
            raise InvalidInputError(
                f"Invalid value for tag {key!r}: {value!r} is a {type(value).__name__}; "
                "tag values must be strings.",
                key=key,
            )
        if len(value) > MAX_TAG_VALUE_LENGTH:
            raise InvalidInputError(
                f"Invalid value for tag {key!r}: it has {len(value)} characters, the maximum "
                f"is {MAX_TAG_VALUE_LENGTH}.",
                key=key,
            )
        checked[key] = value
    return checked


def _invalid_value(metric: Metric, reason: str) -> InvalidInputError:
    return InvalidInputError(
        f"Invalid value for metric {metric.key!r} at step {metric.step}: {metric.value!r} "
        f"{reason}. Nothing was logged.",
        key=metric.key,
    )


def to_timestamp_ms(timestamp: datetime) -> int:
    if timestamp.tzinfo is None:
        raise InvalidInputError(
            f"Invalid metric timestamp {timestamp.isoformat()}: it has no time zone. "
            "Pass a timezone-aware datetime, such as datetime.now(UTC)."
        )
    return int(timestamp.timestamp() * 1000)


def from_timestamp_ms(timestamp_ms: int) -> datetime:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC)


def check_metrics(metrics: Sequence[Metric], now: datetime) -> MetricBatch:
    """Check every metric before any is stored; ``now`` stamps metrics without a timestamp.

    Values must be real numbers (bool is rejected) and finite; steps must be
    integers that fit in 64 bits.
    """
    # NOTE: NaN and infinities are rejected because JSON has no literal for
    # them and search compares latest values in SQL, where SQLite turns NaN
    # into NULL.
    now_ms = to_timestamp_ms(now)
    fast = _plain_batch(metrics, now_ms)
    if fast is not None:
        return fast
    seen_keys: set[str] = set()
    keys: list[str] = []
    values: list[float] = []
    steps: list[int] = []
    stamps: list[int] = []
    for metric in metrics:
        if not isinstance(metric, Metric):
            raise InvalidInputError(
                f"Invalid metric {metric!r}: pass manara.tracking.entities.Metric objects."
            )
        key, value, step = metric.key, metric.value, metric.step
        if key not in seen_keys:
            check_key(key, "metric")
            seen_keys.add(key)
        if type(value) is not float:
            value = _check_number(metric)
        if not math.isfinite(value):
            raise _invalid_value(metric, "is not finite; only finite values can be stored")
        if type(step) is not int:
            step = _check_step(metric)
        if not -_MAX_STEP <= step <= _MAX_STEP:
            raise InvalidInputError(
                f"Invalid step {step} for metric {key!r}: it does not fit in 64 bits.", key=key
            )
        keys.append(key)
        values.append(value)
        steps.append(step)
        stamps.append(now_ms if metric.timestamp is None else _metric_timestamp(metric))
    return MetricBatch(
        keys,
        np.array(values, dtype=np.float64),
        np.array(steps, dtype=np.int64),
        np.array(stamps, dtype=np.int64),
    )


def check_series(
    key: str,
    values: ArrayLike,
    steps: ArrayLike | None,
    now: datetime,
) -> MetricBatch:
    """Check one metric's values and steps given as arrays, and stamp every value ``now``.

    ``steps`` defaults to 0, 1, 2 and so on. Values must be real numbers
    (booleans are rejected) and finite, steps integers, both one-dimensional
    and of the same length.
    """
    check_key(key, "metric")
    value_array = _series_array(values, key, "values")
    if value_array.dtype.kind not in "iuf":
        raise InvalidInputError(
            f"Invalid values for metric {key!r}: expected real numbers, got an array of "
            f"{value_array.dtype}. Nothing was logged.",
            key=key,
        )
    if steps is None:
        step_array = np.arange(len(value_array), dtype=np.int64)
    else:
        step_array = _series_array(steps, key, "steps")
        if step_array.dtype.kind not in "iu" and len(step_array):
            raise InvalidInputError(
                f"Invalid steps for metric {key!r}: expected integers, got an array of "
                f"{step_array.dtype}. Nothing was logged.",
                key=key,
            )
        if len(step_array) != len(value_array):
            raise InvalidInputError(
                f"Invalid series for metric {key!r}: {len(value_array)} values but "
                f"{len(step_array)} steps. Pass one step per value. Nothing was logged.",
                key=key,
            )
        if len(step_array):
            for extreme in (int(step_array.max()), int(step_array.min())):
                if not -_MAX_STEP <= extreme <= _MAX_STEP:
                    raise InvalidInputError(
                        f"Invalid step {extreme} for metric {key!r}: it does not fit in 64 bits. "
                        "Nothing was logged.",
                        key=key,
                    )
    value_array = value_array.astype(np.float64)
    finite = np.isfinite(value_array)
    if not finite.all():
        index = int(np.flatnonzero(~finite)[0])
        raise InvalidInputError(
            f"Invalid value for metric {key!r} at step {int(step_array[index])}: "
            f"{float(value_array[index])!r} is not finite; only finite values can be stored. "
            "Nothing was logged.",
            key=key,
        )
    return MetricBatch(
        [key] * len(value_array),
        value_array,
        step_array.astype(np.int64),
        np.full(len(value_array), to_timestamp_ms(now), dtype=np.int64),
    )


def _series_array(data: ArrayLike, key: str, name: str) -> np.ndarray:
    try:
        array = np.asarray(data)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"Invalid {name} for metric {key!r}: not an array ({exc}). Nothing was logged.",
            key=key,
        ) from exc
    if array.ndim != 1:
        raise InvalidInputError(
            f"Invalid {name} for metric {key!r}: expected a one-dimensional array, got shape "
            f"{array.shape}. Nothing was logged.",
            key=key,
        )
    return array


def _metric_timestamp(metric: Metric) -> int:
    timestamp = metric.timestamp
    if not isinstance(timestamp, datetime):
        raise InvalidInputError(
            f"Invalid timestamp {timestamp!r} for metric {metric.key!r}: use a timezone-aware "
            "datetime or None for now.",
            key=metric.key,
        )
    return to_timestamp_ms(timestamp)


def _plain_batch(metrics: Sequence[Metric], now_ms: int) -> MetricBatch | None:
    """Return a batch of plain metrics checked column by column, or ``None``.

    Plain means: ``Metric`` objects with float values that are all finite,
    int steps within 64 bits and no timestamps, which is what training loops
    log. Checking whole columns took a fraction of the time of the loop in
    ``check_metrics``; any other batch goes through that loop, which names
    the first bad metric.
    """
    # set(map(type, ...)) runs in C: about a quarter faster than all() over a generator.
    if not metrics or set(map(type, metrics)) != {Metric}:
        return None
    if [metric.timestamp for metric in metrics].count(None) != len(metrics):
        return None
    values = [metric.value for metric in metrics]
    steps = [metric.step for metric in metrics]
    if set(map(type, values)) != {float} or set(map(type, steps)) != {int}:
        return None
    value_array = np.fromiter(values, dtype=np.float64, count=len(values))
    if not np.isfinite(value_array).all():
        return None
    try:
        step_array = np.fromiter(steps, dtype=np.int64, count=len(steps))
    except OverflowError:
        return None
    if step_array.min() < -_MAX_STEP:
        return None
    keys = [metric.key for metric in metrics]
    for key in set(keys):
        check_key(key, "metric")
    return MetricBatch(keys, value_array, step_array, np.full(len(keys), now_ms, dtype=np.int64))


def _check_number(metric: Metric) -> float:
    value = metric.value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _invalid_value(metric, "is not a number")
    try:
        return float(value)
    except OverflowError as exc:
        raise _invalid_value(metric, "is not finite; only finite values can be stored") from exc


def _check_step(metric: Metric) -> int:
    step = metric.step
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidInputError(
            f"Invalid step {step!r} for metric {metric.key!r}: use an integer.", key=metric.key
        )
    return int(step)


def check_artifact_path(path: object) -> str:
    """Check that an artifact path is relative and stays inside the run."""
    if not isinstance(path, str) or not path:
        raise InvalidInputError(f"Invalid artifact path {path!r}: use a non-empty relative path.")
    if len(path) > MAX_ARTIFACT_PATH_LENGTH:
        raise InvalidInputError(
            f"Invalid artifact path {path[:40]!r}...: it has {len(path)} characters, the "
            f"maximum is {MAX_ARTIFACT_PATH_LENGTH}."
        )
    reason = None
    if path.startswith("/"):
        reason = "it is absolute"
    elif "\\" in path:
        reason = "it contains a backslash; use '/' between folders"
    elif "\x00" in path:
        reason = "it contains a NUL character"
    elif ":" in path.split("/", 1)[0]:
        reason = "it starts with a drive or URL scheme"
    else:
        segments = path.split("/")
        if ".." in segments:
            reason = "it contains a '..' segment"
        elif "." in segments or "" in segments:
            reason = "it contains an empty or '.' segment"
    if reason is not None:
        raise InvalidInputError(
            f"Invalid artifact path {path!r}: {reason}. Use a relative path such as "
            "'model/model.onnx'.",
            path=path,
        )
    return path


def check_dataset(dataset: DatasetInput) -> DatasetInput:
    check_name(dataset.name, "data set")
    check_name(dataset.context, "data set context")
    for digest in (dataset.digest, dataset.artifact_digest):
        if digest is not None and (
            len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest)
        ):
            raise InvalidInputError(
                f"Invalid digest {digest!r} for data set {dataset.name!r}: expected 64 "
                "lowercase hex characters of SHA-256. Build inputs with "
                "manara.tracking.datasets.dataset_input.",
            )
    if isinstance(dataset.row_count, bool) or not isinstance(dataset.row_count, int):
        raise InvalidInputError(f"Invalid row count {dataset.row_count!r}: use an integer.")
    if dataset.row_count < 0:
        raise InvalidInputError(f"Invalid row count {dataset.row_count}: it is negative.")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in dataset.schema.items()):
        raise InvalidInputError(
            f"Invalid schema for data set {dataset.name!r}: map column names to dtype names."
        )
    return dataset
