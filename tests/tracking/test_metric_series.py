"""The chunk codec against a plain reference: a sorted set of (step, timestamp, value)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manara.stores.metadata.metric_series import decode_chunk, decode_history, encode_chunks
from manara.tracking.validation import MetricBatch

_METRIC = st.tuples(
    st.sampled_from(["loss", "acc", "a/b"]),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(0, 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
)


def _batch(metrics: list[tuple[str, int, int, float]]) -> MetricBatch:
    return MetricBatch(
        [key for key, _, _, _ in metrics],
        np.array([value for _, _, _, value in metrics], dtype=np.float64),
        np.array([step for _, step, _, _ in metrics], dtype=np.int64),
        np.array([stamp for _, _, stamp, _ in metrics], dtype=np.int64),
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_METRIC, min_size=1, max_size=40), min_size=1, max_size=5))
def test_history_latest_match_reference(calls: list[list[tuple[str, int, int, float]]]) -> None:
    stored: dict[str, list[tuple[int, bytes, bytes, bytes]]] = {}
    latest: dict[str, tuple[int, int, float]] = {}
    for call in calls:
        for chunk in encode_chunks(_batch(call)):
            stored.setdefault(chunk.key, []).append(
                (chunk.count, chunk.step_data, chunk.time_data, chunk.value_data)
            )
            latest[chunk.key] = max(latest.get(chunk.key, chunk.latest), chunk.latest)
    every = [metric for call in calls for metric in call]
    for key in {key for key, _, _, _ in every}:
        # 0.0 and -0.0 are one value for the store, as for SQL.
        expected = sorted({(s, t, v + 0.0) for k, s, t, v in every if k == key})
        history = decode_history(stored[key])
        got = list(
            zip(
                history.steps.tolist(),
                history.timestamps_ms.tolist(),
                (history.values + 0.0).tolist(),
                strict=True,
            )
        )
        assert got == expected
        assert latest[key][:2] == expected[-1][:2]
        assert latest[key][2] == expected[-1][2]


def test_retried_call_has_same_digests() -> None:
    metrics = [("loss", step, 5, step / 3) for step in range(100)]
    first = encode_chunks(_batch(metrics))
    again = encode_chunks(_batch(metrics))
    assert [chunk.digest for chunk in first] == [chunk.digest for chunk in again]
    changed = encode_chunks(_batch([*metrics[:-1], ("loss", 99, 5, 0.0)]))
    assert changed[0].digest != first[0].digest


def test_one_timestamp_stored_once() -> None:
    (same,) = encode_chunks(_batch([("loss", step, 7, 1.0) for step in range(1000)]))
    (mixed,) = encode_chunks(_batch([("loss", step, step, 1.0) for step in range(1000)]))
    assert len(same.time_data) == 8
    assert len(mixed.time_data) == 8000
    assert (
        decode_chunk(1000, same.step_data, same.time_data, same.value_data)[1].tolist()
        == [7] * 1000
    )


def test_truncated_chunk_rejected() -> None:
    (chunk,) = encode_chunks(_batch([("loss", step, step, 1.0) for step in range(10)]))
    with pytest.raises(ValueError, match="Corrupt metric chunk: 10 values expected"):
        decode_chunk(10, chunk.step_data, chunk.time_data, chunk.value_data[:-8])
