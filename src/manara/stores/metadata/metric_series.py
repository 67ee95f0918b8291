"""Storage of metric values: one chunk of arrays per key and logging call.

A training loop logs a few keys at many steps, and reads them back as whole
series. So each ``log_metrics`` call stores, for each key, one row holding
the steps, timestamps and values as little-endian 64-bit arrays, plus the
key's latest value in a small table that search and run listings read.
Storing a row per value made SQLite's B-tree insert the bottleneck (about
0.5 s per 100,000 values on a 2-core machine). A chunk row per key costs
about the same whatever the batch size.

A chunk is identified by a digest of its content, so a retried call
inserts nothing. The same value logged again in a different batch is kept
twice and shown once: ``decode_history`` removes repeats.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from manara.tracking.validation import MetricBatch

_INT64 = np.dtype("<i8")
_FLOAT64 = np.dtype("<f8")


@dataclass(frozen=True)
class MetricChunk:
    """The values one call logged for one key, encoded for storage."""

    key: str
    digest: str
    count: int
    min_step: int
    max_step: int
    step_data: bytes
    time_data: bytes
    """Eight bytes when every value has the same timestamp, else eight per value."""
    value_data: bytes
    latest: tuple[int, int, float]
    """``(step, timestamp_ms, value)`` of the latest value in the chunk."""


@dataclass(frozen=True)
class MetricSeries:
    """A decoded metric history, sorted by step, then timestamp, then value."""

    steps: np.ndarray
    timestamps_ms: np.ndarray
    values: np.ndarray


def encode_chunks(batch: MetricBatch) -> list[MetricChunk]:
    """Split a checked batch into one chunk per key, in the order keys first appear."""
    if not len(batch):
        return []
    positions = {key: index for index, key in enumerate(dict.fromkeys(batch.keys))}
    codes = np.fromiter(map(positions.__getitem__, batch.keys), dtype=np.intp, count=len(batch))
    if len(positions) == 1:
        groups = [np.arange(len(batch))]
    else:
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(positions) + 1))
        groups = [order[bounds[i] : bounds[i + 1]] for i in range(len(positions))]
    return [
        _chunk(key, batch.steps[group], batch.timestamps_ms[group], batch.values[group])
        for key, group in zip(positions, groups, strict=True)
    ]


def _chunk(key: str, steps: np.ndarray, stamps: np.ndarray, values: np.ndarray) -> MetricChunk:
    step_data = steps.astype(_INT64, copy=False).tobytes()
    value_data = values.astype(_FLOAT64, copy=False).tobytes()
    first = stamps[0]
    same_time = bool((stamps == first).all())
    time_data = (stamps[:1] if same_time else stamps).astype(_INT64, copy=False).tobytes()
    digest = hashlib.blake2b(digest_size=16)
    for part in (key.encode(), step_data, time_data, value_data):
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return MetricChunk(
        key=key,
        digest=digest.hexdigest(),
        count=len(steps),
        min_step=int(steps.min()),
        max_step=int(steps.max()),
        step_data=step_data,
        time_data=time_data,
        value_data=value_data,
        latest=_latest(steps, stamps, values),
    )


def _latest(steps: np.ndarray, stamps: np.ndarray, values: np.ndarray) -> tuple[int, int, float]:
    """Return the value at the highest step, then the latest timestamp, then the highest value."""
    at = np.flatnonzero(steps == steps.max())
    at = at[stamps[at] == stamps[at].max()]
    best = at[np.argmax(values[at])]
    return int(steps[best]), int(stamps[best]), float(values[best])


def decode_chunk(
    count: int, step_data: bytes, time_data: bytes, value_data: bytes
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode one stored chunk into steps, timestamps in milliseconds and values."""
    steps = np.frombuffer(step_data, dtype=_INT64)
    values = np.frombuffer(value_data, dtype=_FLOAT64)
    stamps = np.frombuffer(time_data, dtype=_INT64)
    if len(stamps) == 1 and count != 1:
        stamps = np.full(count, stamps[0], dtype=_INT64)
    if not len(steps) == len(stamps) == len(values) == count:
        raise ValueError(
            f"Corrupt metric chunk: {count} values expected, the arrays contain {len(steps)} steps, "
            f"{len(stamps)} timestamps and {len(values)} values."
        )
    return steps, stamps, values


def decode_history(chunks: Iterable[Sequence[object]]) -> MetricSeries:
    """Merge stored chunks ``(count, step_data, time_data, value_data)`` into one series.

    The result is sorted by step, timestamp and value, with a value logged
    twice (same step, timestamp and value) shown once.
    """
    parts = [decode_chunk(*chunk) for chunk in chunks]  # type: ignore[arg-type]
    if not parts:
        empty_int = np.empty(0, dtype=np.int64)
        return MetricSeries(empty_int, empty_int.copy(), np.empty(0, dtype=np.float64))
    steps = np.concatenate([part[0] for part in parts])
    stamps = np.concatenate([part[1] for part in parts])
    values = np.concatenate([part[2] for part in parts])
    order = np.lexsort((values, stamps, steps))
    steps, stamps, values = steps[order], stamps[order], values[order]
    if len(steps) > 1:
        keep = np.ones(len(steps), dtype=bool)
        keep[1:] = (
            (steps[1:] != steps[:-1]) | (stamps[1:] != stamps[:-1]) | (values[1:] != values[:-1])
        )
        steps, stamps, values = steps[keep], stamps[keep], values[keep]
    return MetricSeries(steps, stamps, values)
