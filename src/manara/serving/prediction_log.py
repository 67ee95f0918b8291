"""The prediction log: every served prediction, written to Parquet off the request path.

The server hands each successful request's arrays to ``submit``, which only
appends to a bounded queue and never waits for space in it. When the queue
is full, the request's records are dropped and counted, with a
rate-limited warning. A background thread, at a lower scheduling priority
than the request path, turns queued requests into rows a slice at a time
and writes a part file every ``batch_size`` rows or ``flush_seconds``
seconds, whichever comes first, and everything left on ``close``.

Files are ``<root>/<model>/v<version>/part-<UTC time>-<uuid>.parquet``,
written under a temporary name beginning with a dot and renamed into place,
so a reader that lists ``*.parquet`` never sees half a file. Each row is
one predicted instance with the columns ``request_id`` (string),
``model_name`` (string), ``model_version`` (int64), ``timestamp``
(timestamp[us, UTC]), ``latency_ms`` (float64), then ``input.<name>`` per
signature input and ``output.<name>`` per output. Integer tensors become
int64 columns (UINT64 stays uint64), floating ones float64, BOOL bool and
BYTES string. A ``(-1, k)`` output such as class probabilities is a list
column of those, for example list<double>.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from manara.files import private_temporary
from manara.registry.entities import Signature, TensorSpec

logger = logging.getLogger(__name__)

Sink = Callable[[pa.Table, Path], None]
"""Writes one batch as a file at the given path."""

_DROP_WARNING_SECONDS = 10.0
_SLICE = 64
"""Requests converted per record batch; see ``PredictionLogWriter.to_table``."""
_WRITER_NICE = 10
_ARROW_SCALARS: Mapping[str, pa.DataType] = {
    "BOOL": pa.bool_(),
    "UINT64": pa.uint64(),
    "FP16": pa.float64(),
    "FP32": pa.float64(),
    "FP64": pa.float64(),
    "BYTES": pa.string(),
}


@dataclass(frozen=True)
class PredictionRecord:
    """One served request as queued: raw arrays, converted to rows by the writer thread."""

    request_id: str
    timestamp: datetime
    latency_ms: float
    inputs: Mapping[str, np.ndarray]
    outputs: Mapping[str, np.ndarray]


def arrow_type(spec: TensorSpec) -> pa.DataType:
    """Return the column type of a tensor: its scalar type, or a list of it for ``(-1, k)``."""
    scalar = _ARROW_SCALARS.get(spec.datatype, pa.int64())
    return pa.list_(scalar) if len(spec.shape) > 1 else scalar


def prediction_schema(signature: Signature) -> pa.Schema:
    fields = [
        pa.field("request_id", pa.string()),
        pa.field("model_name", pa.string()),
        pa.field("model_version", pa.int64()),
        pa.field("timestamp", pa.timestamp("us", tz="UTC")),
        pa.field("latency_ms", pa.float64()),
    ]
    fields += [pa.field(f"input.{spec.name}", arrow_type(spec)) for spec in signature.inputs]
    fields += [pa.field(f"output.{spec.name}", arrow_type(spec)) for spec in signature.outputs]
    return pa.schema(fields)


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` (mode 0600) through a temporary name in the same folder.

    NOTE: the parts are plaintext Parquet holding every request's inputs and
    outputs, unlike artifacts they are not encrypted. File permissions (0600
    files in 0700 folders under a 0700 MANARA_HOME) are their only protection.
    """
    with private_temporary(path) as temporary:
        pq.write_table(table, temporary)


class _Batch:
    """Requests gathered for one part file."""

    def __init__(self) -> None:
        self.records: list[PredictionRecord] = []
        self.rows = 0
        self.started_at = 0.0
        """``time.monotonic()`` when the first request was added."""

    def __len__(self) -> int:
        return len(self.records)

    def add(self, record: PredictionRecord, rows: int) -> None:
        if not self.records:
            self.started_at = time.monotonic()
        self.records.append(record)
        self.rows += rows


class PredictionLogWriter:
    """Batches prediction records on a background thread and writes Parquet part files."""

    def __init__(
        self,
        root: Path,
        model_name: str,
        model_version: int,
        signature: Signature,
        batch_size: int = 512,
        flush_seconds: float = 1.0,
        max_pending: int = 10_000,
        sink: Sink = write_parquet,
    ) -> None:
        if batch_size < 1 or flush_seconds <= 0 or max_pending < 1:
            raise ValueError(
                "batch_size and max_pending must be at least 1 and flush_seconds positive; "
                f"got {batch_size}, {max_pending} and {flush_seconds}."
            )
        self.folder = root / model_name / f"v{model_version}"
        self.model_name = model_name
        self.model_version = model_version
        self.schema = prediction_schema(signature)
        self._signature = signature
        self._batch_size = batch_size
        self._flush_seconds = flush_seconds
        self._sink = sink
        self._max_pending = max_pending
        # The lock guards the open batch, the full batches and the pending
        # count. It is held only to append or swap, never while converting.
        self._lock = threading.Lock()
        self._open = _Batch()
        self._full: deque[_Batch] = deque()
        self._pending = 0
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._dropped = 0
        self._last_drop_warning = float("-inf")
        self.rows_written = 0
        self.rows_failed = 0

    @property
    def dropped(self) -> int:
        """Requests whose records were dropped because the queue was full."""
        return self._dropped

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name=f"prediction-log-{self.model_name}", daemon=True
        )
        self._thread.start()
        logger.info("prediction log started folder=%s", self.folder)

    def submit(self, record: PredictionRecord) -> bool:
        """Queue one request's records; return False when they were dropped."""
        rows = _row_count(record)
        with self._lock:
            if self._pending >= self._max_pending:
                full = True
                self._dropped += 1
            else:
                full = False
                self._pending += 1
                self._open.add(record, rows)
                if self._open.rows >= self._batch_size:
                    self._full.append(self._open)
                    self._open = _Batch()
                    self._wake.set()
        if full:
            self._count_drop()
        return not full

    def _count_drop(self) -> None:
        now = time.monotonic()
        if now - self._last_drop_warning >= _DROP_WARNING_SECONDS:
            self._last_drop_warning = now
            logger.warning(
                "prediction log queue full model=%s version=%s dropped_requests=%d; "
                "the disk is slower than the request rate",
                self.model_name,
                self.model_version,
                self._dropped,
            )

    def close(self, timeout: float | None = 30.0) -> None:
        """Write everything queued, then stop the thread."""
        thread = self._thread
        if thread is None:
            return
        self._closing = True
        self._wake.set()
        thread.join(timeout)
        if thread.is_alive():
            logger.error(
                "prediction log did not finish within %s s folder=%s", timeout, self.folder
            )
            return
        self._thread = None
        self._closing = False
        logger.info(
            "prediction log stopped rows_written=%d rows_failed=%d dropped_requests=%d",
            self.rows_written,
            self.rows_failed,
            self._dropped,
        )

    def _run(self) -> None:
        _lower_thread_priority()
        while True:
            with self._lock:
                started_at = self._open.started_at if len(self._open) else None
            if started_at is None:
                timeout = self._flush_seconds
            else:
                # The oldest open request is written flush_seconds after it arrived.
                timeout = started_at + self._flush_seconds - time.monotonic()
            self._wake.wait(max(0.0, timeout))
            self._wake.clear()
            closing = self._closing
            for batch in self._take(closing):
                self._flush(batch)
                # Counted as pending until written, so max_pending bounds what is in memory.
                with self._lock:
                    self._pending -= len(batch)
            if closing:
                return

    def _take(self, closing: bool) -> list[_Batch]:
        """Remove the full batches, and the open one when it is due or the log closes."""
        with self._lock:
            batches = list(self._full)
            self._full.clear()
            due = len(self._open) and (
                closing or time.monotonic() >= self._open.started_at + self._flush_seconds
            )
            if due:
                batches.append(self._open)
                self._open = _Batch()
        return batches

    def _flush(self, batch: _Batch) -> None:
        try:
            table = self.to_table(batch.records, pause=True)
        except Exception:
            logger.exception("prediction log could not convert %d requests", len(batch))
            return
        now = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.folder / f"part-{now}-{uuid.uuid4().hex}.parquet"
        try:
            self._sink(table, path)
        except Exception:
            self.rows_failed += table.num_rows
            logger.exception("prediction log write failed path=%s rows=%d", path, table.num_rows)
            return
        self.rows_written += table.num_rows

    def to_table(self, records: list[PredictionRecord], pause: bool = False) -> pa.Table:
        """Convert queued requests to one table of rows, one row per predicted instance.

        With ``pause`` the conversion runs ``_SLICE`` requests at a time and
        offers the GIL to other threads between slices. Converting 512 one-row requests in
        one go held it for about 6 ms on a 2-core machine, which the request
        path waited for.
        """
        if len(records) <= _SLICE:
            return pa.Table.from_batches([self._record_batch(records)], self.schema)
        slices = []
        for start in range(0, len(records), _SLICE):
            slices.append(self._record_batch(records[start : start + _SLICE]))
            if pause:
                time.sleep(0)
        return pa.Table.from_batches(slices, self.schema)

    def _record_batch(self, records: list[PredictionRecord]) -> pa.RecordBatch:
        counts = [_row_count(record) for record in records]
        total = sum(counts)
        columns: list[pa.Array] = [
            pa.array(np.repeat([r.request_id for r in records], counts), pa.string()),
            pa.array(np.full(total, self.model_name, dtype=object), pa.string()),
            pa.array(np.full(total, self.model_version, dtype=np.int64)),
            pa.array(
                np.repeat([_micros(r.timestamp) for r in records], counts).astype("<i8"),
                pa.timestamp("us", tz="UTC"),
            ),
            pa.array(np.repeat([r.latency_ms for r in records], counts), pa.float64()),
        ]
        for spec in self._signature.inputs:
            parts = [record.inputs[spec.name].reshape(-1) for record in records]
            columns.append(_column(parts, arrow_type(spec)))
        for spec in self._signature.outputs:
            parts = [record.outputs[spec.name] for record in records]
            columns.append(_column(parts, arrow_type(spec)))
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)


def _lower_thread_priority() -> None:
    """Lower the calling thread's priority to nice 10, or keep it where it is already lower.

    On a server pinned to one core, the writer and the request handler share
    that core. At nice 10 the scheduler gives the handler about ten times the
    writer's share under contention (Linux weights 1024 against 110), and
    runs a newly woken handler ahead of the writer. The writer still gets
    enough time to keep up at full load. Under ``SCHED_IDLE`` it did not: in
    a 10 s run at 64 connections it dropped about a quarter of the requests.
    """
    thread = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, max(current, _WRITER_NICE))
    except (AttributeError, OSError) as exc:
        logger.debug("prediction log keeps normal priority: %s", exc)


def _row_count(record: PredictionRecord) -> int:
    for array in record.outputs.values():
        return len(array)
    return 0


def _micros(timestamp: datetime) -> int:
    delta = timestamp - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _column(parts: list[np.ndarray], arrow: pa.DataType) -> pa.Array:
    values = np.concatenate(parts) if len(parts) > 1 else parts[0]
    if not pa.types.is_list(arrow):
        return _scalar_column(values.reshape(-1), arrow)
    width = values.shape[1] if values.ndim > 1 else 1
    offsets = np.arange(0, values.shape[0] * width + 1, width, dtype=np.int32)
    flat = _scalar_column(values.reshape(-1), arrow.value_type)
    return pa.ListArray.from_arrays(pa.array(offsets), flat, type=arrow)


def _scalar_column(values: np.ndarray, arrow: pa.DataType) -> pa.Array:
    if pa.types.is_string(arrow):
        strings = [v.decode() if isinstance(v, bytes) else str(v) for v in values.tolist()]
        return pa.array(strings, pa.string())
    return pa.array(values, arrow, from_pandas=False)
