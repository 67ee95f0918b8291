"""Data set descriptions: digest stability and sensitivity, schema and row count."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from manara.errors import InvalidInputError
from manara.tracking.datasets import content_digest, dataset_input

_FRAME_CODE = textwrap.dedent(
    """
    import numpy as np, pandas as pd
    frame = pd.DataFrame({
        "amount": np.linspace(0.0, 1.0, 50),
        "count": np.arange(50, dtype="int64"),
        "flag": np.arange(50) % 2 == 0,
        "plan": pd.array([["basic", "pro", None][i % 3] for i in range(50)], dtype=object),
        "when": pd.date_range("2026-01-01", periods=50, freq="h", tz="Asia/Dubai"),
        "text": pd.array([f"row {i}" for i in range(50)], dtype="string"),
    })
    """
)


def _frame() -> pd.DataFrame:
    namespace: dict[str, object] = {}
    exec(_FRAME_CODE, namespace)
    frame = namespace["frame"]
    assert isinstance(frame, pd.DataFrame)
    return frame


def test_digest_same_in_other_process() -> None:
    code = _FRAME_CODE + (
        "from manara.tracking.datasets import content_digest\nprint(content_digest(frame))"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == content_digest(_frame())


def test_digest_is_sha256_hex() -> None:
    digest = content_digest(_frame())
    assert len(digest) == 64
    assert int(digest, 16) >= 0


def test_digest_equal_for_copy() -> None:
    frame = _frame()
    assert content_digest(frame.copy(deep=True)) == content_digest(frame)


def test_digest_ignores_index() -> None:
    frame = _frame()
    assert content_digest(frame.set_axis(range(100, 150))) == content_digest(frame)


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.assign(amount=f["amount"].where(f.index != 3, 0.123)),
        lambda f: f.assign(plan=f["plan"].where(f.index != 0, "other")),
        lambda f: f.assign(count=f["count"].astype("int32")),
        lambda f: f[list(reversed(f.columns))],
        lambda f: f.rename(columns={"amount": "value"}),
        lambda f: f.iloc[:-1],
        lambda f: f.assign(when=f["when"].dt.tz_convert("UTC")),
    ],
    ids=["value", "string", "dtype", "order", "name", "rows", "zone"],
)
def test_digest_changes_with_content(change: object) -> None:
    frame = _frame()
    changed = change(frame)  # type: ignore[operator]
    assert content_digest(changed) != content_digest(frame)


def test_nan_payloads_hash_alike() -> None:
    quiet = np.array([np.nan, 1.0])
    other = quiet.copy()
    other.view("u8")[0] = 0x7FF8_0000_0000_0001
    assert np.isnan(other[0])
    left = pd.DataFrame({"x": quiet})
    right = pd.DataFrame({"x": other})
    assert content_digest(left) == content_digest(right)


def test_negative_zero_hashes_as_zero() -> None:
    assert content_digest(pd.DataFrame({"x": [-0.0]})) == content_digest(pd.DataFrame({"x": [0.0]}))


def test_missing_differs_from_text() -> None:
    with_none = pd.DataFrame({"x": pd.array([None, "a"], dtype=object)})
    with_text = pd.DataFrame({"x": pd.array(["None", "a"], dtype=object)})
    assert content_digest(with_none) != content_digest(with_text)


def test_dataset_input_fields() -> None:
    frame = _frame()
    described = dataset_input(frame, "train", source="s3://bucket/train.parquet", context="eval")
    assert described.row_count == len(frame)
    assert described.schema == {str(c): str(t) for c, t in frame.dtypes.items()}
    assert described.digest == content_digest(frame)
    assert described.source == "s3://bucket/train.parquet"
    assert described.context == "eval"


def test_duplicate_columns_rejected() -> None:
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(InvalidInputError, match="duplicate column"):
        content_digest(frame)


def test_non_frame_rejected() -> None:
    with pytest.raises(InvalidInputError, match="expected a pandas DataFrame"):
        dataset_input([1, 2], "x")  # type: ignore[arg-type]
