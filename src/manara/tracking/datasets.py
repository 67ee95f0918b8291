"""Describe a pandas DataFrame as a ``DatasetInput``: content digest, schema and row count.

The digest is a SHA-256 over a canonical serialisation that depends only on
the column names, their dtypes and the values, so the same frame hashes the
same in every process and on every machine:

- a header: the JSON list of ``[column name, dtype name]`` pairs and the row count;
- per column, numeric and boolean data as little-endian bytes, with every
  NaN written as one fixed bit pattern and ``-0.0`` as ``0.0``;
- datetimes and timedeltas as int64 nanoseconds (after conversion to UTC for
  zone-aware columns; the zone is part of the dtype name);
- any other column value by value: a type tag, then the UTF-8 text of
  strings, the bytes of bytes objects, or ``repr`` of other values, each with
  its length, and missing values (None, NaN, NA, NaT) as one tag.

The index is not part of the content; call ``reset_index()`` first to include it.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from typing import Any

import numpy as np
import pandas as pd

from manara.errors import InvalidInputError
from manara.tracking.entities import DatasetInput

_MISSING = b"\x00"
_STRING = b"s"
_BYTES = b"b"
_OTHER = b"o"
_FLOAT_TAG = b"f"
_CANONICAL_NAN = struct.pack("<d", math.nan)


def _numeric_bytes(values: np.ndarray[Any, Any]) -> bytes:
    if values.dtype.kind == "f":
        values = values.astype("<f8", copy=True)
        values[values == 0.0] = 0.0
        nan_mask = np.isnan(values)
        if nan_mask.any():
            values[nan_mask] = np.frombuffer(_CANONICAL_NAN, dtype="<f8")[0]
        return values.tobytes()
    if values.dtype.kind == "b":
        return values.astype("u1").tobytes()
    return values.astype(values.dtype.newbyteorder("<"), copy=False).tobytes()


def _value_bytes(value: Any) -> bytes:
    if value is None or value is pd.NA or value is pd.NaT:
        return _MISSING
    if isinstance(value, float) and math.isnan(value):
        return _MISSING
    if isinstance(value, str):
        data, tag = value.encode("utf-8"), _STRING
    elif isinstance(value, bytes):
        data, tag = value, _BYTES
    elif isinstance(value, float | np.floating):
        data, tag = struct.pack("<d", float(value) + 0.0), _FLOAT_TAG
    else:
        data, tag = repr(value).encode("utf-8"), _OTHER
    return tag + struct.pack("<Q", len(data)) + data


def _column_bytes(series: pd.Series[Any]) -> bytes:
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return _numeric_bytes(series.to_numpy())
    if isinstance(dtype, np.dtype) and dtype.kind in "mM":
        return series.to_numpy().view("<i8").tobytes()
    if isinstance(dtype, pd.DatetimeTZDtype):
        utc = series.dt.tz_convert("UTC").dt.tz_localize(None)
        data: bytes = utc.to_numpy().view("<i8").tobytes()
        return data
    return b"".join(_value_bytes(value) for value in series.astype(object).tolist())


def schema_of(frame: pd.DataFrame) -> dict[str, str]:
    """Map each column name to its dtype name."""
    return {str(column): str(dtype) for column, dtype in frame.dtypes.items()}


def content_digest(frame: pd.DataFrame) -> str:
    """Return the hex SHA-256 of the frame's canonical serialisation (see module docstring)."""
    names = [str(column) for column in frame.columns]
    if len(set(names)) != len(names):
        raise InvalidInputError(
            f"Cannot describe a data set with duplicate column names {names}; rename them first."
        )
    header = json.dumps(
        {
            "columns": [
                [name, str(frame[column].dtype)]
                for name, column in zip(names, frame.columns, strict=True)
            ],
            "rows": len(frame),
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )
    hasher = hashlib.sha256(header.encode("utf-8"))
    for column in frame.columns:
        data = _column_bytes(frame[column])
        hasher.update(struct.pack("<Q", len(data)))
        hasher.update(data)
    return hasher.hexdigest()


def dataset_input(
    frame: pd.DataFrame,
    name: str,
    source: str = "",
    context: str = "training",
    artifact_digest: str | None = None,
) -> DatasetInput:
    """Describe ``frame`` for ``log_input``: its digest, schema and row count."""
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInputError(
            f"Invalid data set {name!r}: expected a pandas DataFrame, got {type(frame).__name__}."
        )
    return DatasetInput(
        name=name,
        digest=content_digest(frame),
        schema=schema_of(frame),
        row_count=len(frame),
        source=source,
        context=context,
        artifact_digest=artifact_digest,
    )
