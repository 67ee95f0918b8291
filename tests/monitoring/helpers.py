"""Helpers for the monitoring tests: prediction log files in the server's format."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def write_prediction_log(
    predictions_dir: Path,
    model: str,
    version: int,
    times: Sequence[datetime],
    inputs: Mapping[str, Sequence[object] | np.ndarray],
    outputs: Mapping[str, Sequence[object] | np.ndarray] | None = None,
) -> Path:
    """Write one part file of rows as the inference server does, and return its path.

    Columns: request_id, model_name, model_version, timestamp (timestamp[us,
    UTC]), latency_ms, then input.<name> per input and output.<name> per output.
    """
    rows = len(times)
    columns: dict[str, pa.Array] = {
        "request_id": pa.array([f"req-{i}" for i in range(rows)], pa.string()),
        "model_name": pa.array([model] * rows, pa.string()),
        "model_version": pa.array([version] * rows, pa.int64()),
        "timestamp": pa.array(list(times), pa.timestamp("us", tz="UTC")),
        "latency_ms": pa.array(np.full(rows, 1.5), pa.float64()),
    }
    for name, values in inputs.items():
        columns[f"input.{name}"] = pa.array(values)
    for name, values in (outputs or {"label": [0] * rows}).items():
        columns[f"output.{name}"] = pa.array(values)
    folder = predictions_dir / model / f"v{version}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{uuid.uuid4().hex}.parquet"
    pq.write_table(pa.table(columns), path)
    return path
