"""Loading drift samples from files, tracked runs and the prediction log."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from manara.client import Client
from manara.config import Settings
from manara.errors import InvalidInputError, NotFoundError
from manara.monitoring.sources import (
    load_frame,
    parse_predictions_spec,
    parse_timestamp,
    read_prediction_log,
    training_dataset,
)
from manara.stores.artifacts import ArtifactStore
from manara.tracking.entities import DatasetInput, Run
from manara.workspace import Workspace
from tests.monitoring.helpers import write_prediction_log

START = datetime(2024, 3, 1, tzinfo=UTC)


def hours(count: int, start: datetime = START) -> list[datetime]:
    return [start + timedelta(hours=i) for i in range(count)]


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


def test_csv_and_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.5, 2.5], "c": ["a", "b"]})
    frame.to_csv(tmp_path / "data.csv", index=False)
    frame.to_parquet(tmp_path / "data.parquet")

    from_csv = load_frame(str(tmp_path / "data.csv"))
    from_parquet = load_frame(str(tmp_path / "data.parquet"))

    assert from_csv["x"].tolist() == [1.5, 2.5]
    assert from_parquet["c"].tolist() == ["a", "b"]


def test_file_errors(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("x\n1\n")
    (tmp_path / "bad.parquet").write_text("not parquet")

    with pytest.raises(InvalidInputError, match="must end in"):
        load_frame(str(tmp_path / "data.txt"))
    with pytest.raises(NotFoundError, match="not found"):
        load_frame(str(tmp_path / "absent.csv"))
    with pytest.raises(InvalidInputError, match="Could not read"):
        load_frame(str(tmp_path / "bad.parquet"))
    with pytest.raises(InvalidInputError, match="prediction log only"):
        load_frame(str(tmp_path / "data.txt"), since=START)


def test_prediction_log_inputs(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    write_prediction_log(
        settings.predictions_dir, "delay", 1, hours(3), {"distance": [1.0, 2.0, 3.0]}
    )
    write_prediction_log(
        settings.predictions_dir,
        "delay",
        1,
        hours(2, START + timedelta(days=1)),
        {"distance": [4.0, 5.0]},
    )

    frame = load_frame("predictions:delay:1", settings=settings)

    assert list(frame.columns) == ["distance"]
    assert sorted(frame["distance"].tolist()) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert str(frame.index.tz) == "UTC"


def test_prediction_log_window(tmp_path: Path) -> None:
    root = tmp_path / "predictions"
    write_prediction_log(root, "delay", 2, hours(48), {"distance": np.arange(48.0)})

    window = read_prediction_log(
        root, "delay", 2, since=START + timedelta(hours=10), until=START + timedelta(hours=20)
    )

    assert window["input.distance"].tolist() == [float(i) for i in range(10, 20)]
    assert window["timestamp"].min() == pd.Timestamp(START + timedelta(hours=10))


def test_window_in_other_zone(tmp_path: Path) -> None:
    root = tmp_path / "predictions"
    write_prediction_log(root, "delay", 2, hours(24), {"distance": np.arange(24.0)})
    dubai = parse_timestamp("2024-03-01T10:00:00+04:00")

    window = read_prediction_log(root, "delay", 2, since=dubai)

    assert window["input.distance"].min() == 6.0


def test_all_versions_and_schema_change(tmp_path: Path) -> None:
    root = tmp_path / "predictions"
    write_prediction_log(root, "delay", 1, hours(2), {"distance": [1, 2]})
    write_prediction_log(
        root, "delay", 2, hours(2), {"distance": [3.5, 4.5], "carrier": ["a", "b"]}
    )

    log = read_prediction_log(root, "delay")

    assert sorted(log["model_version"].tolist()) == [1, 1, 2, 2]
    assert sorted(log["input.distance"].tolist()) == [1.0, 2.0, 3.5, 4.5]
    assert int(log["input.carrier"].isna().sum()) == 2


def test_prediction_log_errors(tmp_path: Path) -> None:
    root = tmp_path / "predictions"
    write_prediction_log(root, "delay", 1, hours(5), {"distance": np.arange(5.0)})

    with pytest.raises(NotFoundError, match="No prediction log for model other"):
        read_prediction_log(root, "other")
    with pytest.raises(InvalidInputError, match="Widen the time window"):
        read_prediction_log(root, "delay", 1, since=START + timedelta(days=30))
    with pytest.raises(InvalidInputError, match="has no timezone"):
        read_prediction_log(root, "delay", 1, since=datetime(2024, 3, 1))


def test_incompatible_log_files(tmp_path: Path) -> None:
    root = tmp_path / "predictions"
    write_prediction_log(root, "delay", 1, hours(2), {"distance": [1.0, 2.0]})
    write_prediction_log(root, "delay", 1, hours(2), {"distance": ["far", "near"]})

    with pytest.raises(InvalidInputError, match="Could not read the prediction log"):
        read_prediction_log(root, "delay", 1)


def test_vector_inputs_left_out(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    write_prediction_log(
        settings.predictions_dir,
        "m",
        1,
        hours(2),
        {"x": [1.0, 2.0], "embedding": [[0.1, 0.2], [0.3, 0.4]]},
    )

    frame = load_frame("predictions:m", settings=settings)

    assert list(frame.columns) == ["x"]


def test_real_prediction_log_writer(tmp_path: Path) -> None:
    from manara.registry.entities import Signature, TensorSpec
    from manara.serving.prediction_log import PredictionLogWriter, PredictionRecord, write_parquet

    settings = Settings(home=tmp_path / "home")
    signature = Signature(
        inputs=(TensorSpec("distance", "FP64"), TensorSpec("carrier", "BYTES")),
        outputs=(TensorSpec("delay", "FP64"),),
    )
    writer = PredictionLogWriter(settings.predictions_dir, "delay", 4, signature)
    record = PredictionRecord(
        request_id="r1",
        timestamp=START,
        latency_ms=2.0,
        inputs={"distance": np.array([100.0, 200.0]), "carrier": np.array(["AA", "UA"], object)},
        outputs={"delay": np.array([1.0, 2.0])},
    )
    write_parquet(writer.to_table([record]), writer.folder / "part-test.parquet")

    frame = load_frame("predictions:delay:v4", settings=settings)

    assert sorted(frame.columns) == ["carrier", "distance"]
    assert frame["distance"].tolist() == [100.0, 200.0]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("predictions:delay", ("delay", None)),
        ("predictions:delay:3", ("delay", 3)),
        ("predictions:delay:v12", ("delay", 12)),
    ],
)
def test_parse_predictions_spec(spec: str, expected: tuple[str, int | None]) -> None:
    assert parse_predictions_spec(spec) == expected


@pytest.mark.parametrize("spec", ["predictions:", "predictions:a/b", "predictions:m:latest"])
def test_bad_predictions_spec(spec: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_predictions_spec(spec)


def test_parse_timestamp() -> None:
    assert parse_timestamp("2024-03-01T00:00:00Z") == START
    with pytest.raises(InvalidInputError, match="has no timezone"):
        parse_timestamp("2024-03-01T00:00:00", "--since")
    with pytest.raises(InvalidInputError, match="ISO 8601"):
        parse_timestamp("yesterday", "--since")


def run_with(inputs: list[DatasetInput]) -> Run:
    return Run(
        id="run1",
        experiment_id="e1",
        name="r",
        status="FINISHED",
        start_time=START,
        end_time=START,
        inputs=inputs,
    )


def dataset(context: str, artifact_digest: str | None, name: str = "train") -> DatasetInput:
    return DatasetInput(
        name=name,
        digest="0" * 64,
        schema={},
        row_count=0,
        source="",
        context=context,
        artifact_digest=artifact_digest,
    )


def test_training_dataset_from_artifacts(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    other = pd.DataFrame({"x": [9.0]})
    train_ref = store.put_bytes(parquet_bytes(train))
    other_ref = store.put_bytes(parquet_bytes(other))
    run = run_with(
        [
            dataset("training", None, "nocopy"),
            dataset("evaluation", other_ref.digest),
            dataset("training", train_ref.digest),
        ]
    )

    frame = training_dataset(run, store)

    assert frame["x"].tolist() == [1.0, 2.0, 3.0]


def test_training_dataset_without_copy(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))

    with pytest.raises(InvalidInputError, match="no stored copy"):
        training_dataset(run_with([dataset("training", None)]), store)


def test_training_dataset_not_parquet(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    ref = store.put_bytes(b"x,y\n1,2\n")

    with pytest.raises(InvalidInputError, match="not a Parquet file"):
        training_dataset(run_with([dataset("training", ref.digest)]), store)


def test_run_source_end_to_end(sqlite_workspace: Workspace) -> None:
    from manara.tracking.datasets import dataset_input

    train = pd.DataFrame({"distance": [100.0, 250.0, 400.0], "carrier": ["AA", "UA", "AA"]})
    stored = sqlite_workspace.artifacts.put_bytes(parquet_bytes(train))
    with Client(url="", workspace=sqlite_workspace) as client:
        experiment = client.tracking.create_experiment("drift-source")
        run = client.tracking.create_run(experiment.id)
        client.tracking.log_input(
            run.id, dataset_input(train, "flights", artifact_digest=stored.digest)
        )

    frame = load_frame(f"run:{run.id}", settings=sqlite_workspace.settings)

    pd.testing.assert_frame_equal(frame, train)


def test_run_source_unknown_run(sqlite_workspace: Workspace) -> None:
    with pytest.raises(NotFoundError):
        load_frame("run:" + "f" * 32, settings=sqlite_workspace.settings)
    with pytest.raises(InvalidInputError, match="Missing run id"):
        load_frame("run:", settings=sqlite_workspace.settings)
