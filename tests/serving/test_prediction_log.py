from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from manara.registry.entities import Signature, TensorSpec
from manara.serving.prediction_log import (
    PredictionLogWriter,
    PredictionRecord,
    prediction_schema,
    write_parquet,
)

SIGNATURE = Signature(
    inputs=(
        TensorSpec("amount", "FP64"),
        TensorSpec("count", "INT64"),
        TensorSpec("city", "BYTES"),
    ),
    outputs=(TensorSpec("label", "BYTES"), TensorSpec("probabilities", "FP64", (-1, 2))),
)
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def record(index: int, rows: int = 2) -> PredictionRecord:
    rng = np.random.default_rng(index)
    probabilities = rng.random((rows, 2))
    return PredictionRecord(
        request_id=f"req-{index}",
        timestamp=START + timedelta(seconds=index, microseconds=7),
        latency_ms=0.5 + index,
        inputs={
            "amount": rng.random(rows),
            "count": rng.integers(0, 100, rows),
            "city": np.array([f"city-{index}-{row}" for row in range(rows)], dtype=object),
        },
        outputs={
            "label": np.array(["yes"] * rows, dtype=object),
            "probabilities": probabilities,
        },
    )


def writer(root: Path, **options: object) -> PredictionLogWriter:
    return PredictionLogWriter(root, "churn", 3, SIGNATURE, **options)  # type: ignore[arg-type]


def read_all(root: Path) -> pa.Table:
    files = sorted((root / "churn" / "v3").glob("part-*.parquet"))
    assert files, "no part files were written"
    return pa.concat_tables([pq.read_table(path) for path in files])


def test_schema_columns() -> None:
    schema = prediction_schema(SIGNATURE)
    assert schema.names == [
        "request_id",
        "model_name",
        "model_version",
        "timestamp",
        "latency_ms",
        "input.amount",
        "input.count",
        "input.city",
        "output.label",
        "output.probabilities",
    ]
    assert schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert schema.field("model_version").type == pa.int64()
    assert schema.field("output.probabilities").type == pa.list_(pa.float64())
    assert schema.field("input.city").type == pa.string()


def test_rows_written_on_close(tmp_path: Path) -> None:
    log = writer(tmp_path, batch_size=3, flush_seconds=60)
    log.start()
    records = [record(index) for index in range(5)]
    for item in records:
        assert log.submit(item)
    log.close()

    table = read_all(tmp_path)
    assert table.num_rows == 10
    assert table.schema == prediction_schema(SIGNATURE)
    table = table.sort_by([("request_id", "ascending")])
    expected = records[4]
    rows = table.filter(pc.equal(table["request_id"], "req-4")).to_pylist()
    assert len(rows) == 2
    assert rows[0]["model_name"] == "churn"
    assert rows[0]["model_version"] == 3
    assert rows[0]["timestamp"] == expected.timestamp
    assert rows[0]["latency_ms"] == expected.latency_ms
    assert [row["input.amount"] for row in rows] == expected.inputs["amount"].tolist()
    assert [row["input.count"] for row in rows] == expected.inputs["count"].tolist()
    assert [row["input.city"] for row in rows] == expected.inputs["city"].tolist()
    assert [row["output.label"] for row in rows] == ["yes", "yes"]
    assert [row["output.probabilities"] for row in rows] == expected.outputs[
        "probabilities"
    ].tolist()


def test_batch_size_splits_files(tmp_path: Path) -> None:
    log = writer(tmp_path, batch_size=4, flush_seconds=60)
    log.start()
    for index in range(4):
        log.submit(record(index))
    log.close()
    sizes = sorted(
        pq.read_metadata(path).num_rows for path in (tmp_path / "churn" / "v3").glob("*.parquet")
    )
    assert sizes == [4, 4]


def test_flush_after_interval(tmp_path: Path) -> None:
    written = threading.Event()

    def sink(table: pa.Table, path: Path) -> None:
        write_parquet(table, path)
        written.set()

    log = writer(tmp_path, batch_size=1000, flush_seconds=0.05, sink=sink)
    log.start()
    log.submit(record(0))
    try:
        assert written.wait(10), "the interval flush never wrote the pending rows"
        assert read_all(tmp_path).num_rows == 2
    finally:
        log.close()


def test_full_queue_drops_without_blocking(tmp_path: Path) -> None:
    release = threading.Event()
    entered = threading.Event()

    def slow_sink(table: pa.Table, path: Path) -> None:
        entered.set()
        release.wait(30)
        write_parquet(table, path)

    log = writer(tmp_path, batch_size=1, flush_seconds=60, max_pending=3, sink=slow_sink)
    log.start()
    assert log.submit(record(0))
    assert entered.wait(10), "the writer never reached the sink"
    # The request in the sink still counts: at most max_pending requests are in memory.
    accepted = [log.submit(record(index)) for index in range(1, 11)]
    assert accepted == [True] * 2 + [False] * 8
    assert log.dropped == 8
    release.set()
    log.close()
    assert read_all(tmp_path).num_rows == 6
    assert log.rows_written == 6


def test_failed_write_counted(tmp_path: Path) -> None:
    calls: list[int] = []

    def flaky_sink(table: pa.Table, path: Path) -> None:
        calls.append(table.num_rows)
        if len(calls) == 1:
            raise OSError("disk full")
        write_parquet(table, path)

    log = writer(tmp_path, batch_size=2, flush_seconds=60, sink=flaky_sink)
    log.start()
    log.submit(record(0))
    log.submit(record(1))
    log.close()
    assert log.rows_failed == 2
    assert log.rows_written == 2
    assert read_all(tmp_path).num_rows == 2


def test_write_leaves_no_temporary(tmp_path: Path) -> None:
    table = writer(tmp_path).to_table([record(0)])
    path = tmp_path / "part-x.parquet"
    write_parquet(table, path)
    assert [p.name for p in tmp_path.iterdir()] == ["part-x.parquet"]


def test_invalid_options_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        writer(tmp_path, batch_size=0)


def test_sliced_conversion_keeps_rows(tmp_path: Path) -> None:
    log = writer(tmp_path)
    records = [record(index, rows=1 + index % 3) for index in range(200)]
    whole = log.to_table(records, pause=True)
    one_by_one = pa.concat_tables([log.to_table([item]) for item in records])
    assert whole.num_rows == sum(1 + index % 3 for index in range(200))
    assert whole.equals(one_by_one)


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="needs POSIX thread priorities")
def test_writer_thread_runs_at_lower_priority(tmp_path: Path) -> None:
    process_nice = os.getpriority(os.PRIO_PROCESS, 0)
    log = writer(tmp_path)
    log.start()
    try:
        thread = log._thread
        assert thread is not None and thread.native_id is not None
        expected = max(10, process_nice)
        deadline = time.monotonic() + 10
        while os.getpriority(os.PRIO_PROCESS, thread.native_id) != expected:
            assert time.monotonic() < deadline, "the writer thread kept its priority"
            time.sleep(0.01)
    finally:
        log.close()
    assert os.getpriority(os.PRIO_PROCESS, 0) == process_nice
