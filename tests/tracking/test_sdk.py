"""The SDK in local and remote mode: the same calls, the same results and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from manara.client import Client
from manara.errors import ConflictError, InvalidInputError, NotFoundError
from manara.tracking.entities import Metric


def test_start_run_finishes(client: Client) -> None:
    with client.start_run(experiment="churn", run_name="first", tags={"team": "a"}) as run:
        run.log_param("max_depth", 5)
        run.log_params({"lr": 0.1, "model": "xgb"})
        run.log_metric("auc", 0.8, step=1)
        run.log_metric("auc", 0.9, step=2)
        run.log_metrics({"loss": 0.3, "acc": 0.7}, step=2)
        run.set_tag("stage", "dev")
        run.set_tags({"owner": "sara"})
        assert run.run.status == "RUNNING"
    stored = client.tracking.get_run(run.id)
    assert stored.status == "FINISHED"
    assert stored.end_time is not None
    assert stored.name == "first"
    assert stored.params == {"lr": "0.1", "max_depth": "5", "model": "xgb"}
    assert stored.metrics == {"acc": 0.7, "auc": 0.9, "loss": 0.3}
    assert stored.tags == {"owner": "sara", "stage": "dev", "team": "a"}
    experiment = client.tracking.get_experiment_by_name("churn")
    assert stored.experiment_id == experiment.id


def test_start_run_reuses_experiment(client: Client) -> None:
    with client.start_run(experiment="shared") as first:
        pass
    with client.start_run(experiment="shared") as second:
        pass
    assert first.run.experiment_id == second.run.experiment_id
    assert [e.name for e in client.tracking.list_experiments()] == ["shared"]


def test_exception_marks_failed(client: Client) -> None:
    with pytest.raises(ValueError, match="boom"), client.start_run(experiment="e") as run:
        raise ValueError("boom")
    assert client.tracking.get_run(run.id).status == "FAILED"


def test_interrupt_marks_killed(client: Client) -> None:
    with pytest.raises(KeyboardInterrupt), client.start_run(experiment="e") as run:
        raise KeyboardInterrupt
    assert client.tracking.get_run(run.id).status == "KILLED"


def test_errors_same_in_both_modes(client: Client) -> None:
    with client.start_run(experiment="e") as run:
        run.log_param("depth", 5)
        with pytest.raises(ConflictError, match="'depth'"):
            run.log_param("depth", 6)
        with pytest.raises(InvalidInputError, match="'abc' is not a number"):
            run.log_metric("auc", "abc")  # type: ignore[arg-type]
    with pytest.raises(ConflictError, match="FINISHED"):
        client.tracking.log_metrics(run.id, [Metric("auc", 1.0)])
    with pytest.raises(NotFoundError, match="'missing'"):
        client.tracking.get_run("missing")
    client.tracking.create_experiment("dup")
    with pytest.raises(ConflictError, match="'dup'"):
        client.tracking.create_experiment("dup")
    with pytest.raises(InvalidInputError, match="position"):
        client.tracking.search_runs(None, "metrics.auc >")


def test_metric_history(client: Client) -> None:
    with client.start_run(experiment="e") as run:
        client.tracking.log_metrics(
            run.id, [Metric("train/loss", 1.0 / (step + 1), step) for step in range(500)][::-1]
        )
    history = client.tracking.get_metric_history(run.id, "train/loss")
    assert [m.step for m in history] == list(range(500))
    assert history[3].value == 0.25
    assert all(m.timestamp is not None and m.timestamp.tzinfo is not None for m in history)


def test_metric_series_round_trip(client: Client) -> None:
    losses = 1.0 / np.arange(1, 2001)
    with client.start_run(experiment="e") as run:
        run.log_metric_series("loss", losses)
        run.log_metric_series("lr", [0.1, 0.05, 0.01], steps=np.array([0, 1000, 1999]))
    history = client.tracking.get_metric_history(run.id, "loss")
    assert [m.step for m in history] == list(range(2000))
    assert [m.value for m in history] == losses.tolist()
    assert client.tracking.get_run(run.id).metrics == {"loss": losses[-1], "lr": 0.01}


@pytest.mark.parametrize(
    ("values", "steps", "message"),
    [
        ([1.0, float("nan"), 3.0], [10, 11, 12], "'loss' at step 11: nan is not finite"),
        ([1.0, 2.0], [0, 1, 2], "2 values but 3 steps"),
        ([[1.0, 2.0]], None, "one-dimensional array, got shape \\(1, 2\\)"),
        ([True, False], None, "expected real numbers, got an array of bool"),
        (["a", "b"], None, "expected real numbers, got an array of <U1"),
        ([1.0, 2.0], [0.5, 1.5], "expected integers, got an array of float64"),
        ([1.0], [2**63], "step 9223372036854775808 .* does not fit in 64 bits"),
        ([1.0], [-(2**63)], "step -9223372036854775808 .* does not fit in 64 bits"),
    ],
)
def test_metric_series_invalid_rejected(
    client: Client, values: object, steps: object, message: str
) -> None:
    with (
        client.start_run(experiment="e") as run,
        pytest.raises(InvalidInputError, match=message),
    ):
        run.log_metric_series("loss", values, steps)  # type: ignore[arg-type]
    assert client.tracking.get_metric_history(run.id, "loss") == []


def test_artifacts(client: Client, tmp_path: Path) -> None:
    (tmp_path / "report.txt").write_text("hello")
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"\x08\x01onnx")
    (folder / "sub" / "notes é.md").write_text("notes")
    with client.start_run(experiment="e") as run:
        run.log_artifact(tmp_path / "report.txt")
        run.log_artifact(str(folder), "packaged")
        run.log_artifact(b'{"a": 1}', "metrics/summary.json")
        with pytest.raises(InvalidInputError, match="Invalid artifact path"):
            run.log_artifact(b"x", "../escape")
    paths = [artifact.path for artifact in run.run.artifacts]
    assert paths == [
        "metrics/summary.json",
        "packaged/model.onnx",
        "packaged/sub/notes é.md",
        "report.txt",
    ]
    assert client.tracking.get_artifact(run.id, "packaged/sub/notes é.md") == b"notes"
    assert client.tracking.get_artifact(run.id, "metrics/summary.json") == b'{"a": 1}'
    with pytest.raises(NotFoundError):
        client.tracking.get_artifact(run.id, "nope.txt")


def test_log_input(client: Client) -> None:
    frame = pd.DataFrame({"amount": [1.5, 2.5, None], "plan": ["a", "b", "c"]})
    with client.start_run(experiment="e") as run:
        described = run.log_input(frame, "train", source="file://train.parquet", store_copy=True)
    (stored,) = run.run.inputs
    assert stored == described
    assert stored.row_count == 3
    assert stored.schema["amount"] == "float64"
    assert stored.artifact_digest is not None
    copy = client.tracking.get_artifact(run.id, "inputs/train.parquet")
    assert pd.read_parquet(__import__("io").BytesIO(copy)).equals(frame)


def test_search(client: Client) -> None:
    for depth, auc in ((3, 0.7), (5, 0.9), (7, 0.8)):
        with client.start_run(experiment="s", run_name=f"d{depth}") as run:
            run.log_param("depth", depth)
            run.log_metric("auc", auc)
    experiment_id = client.tracking.get_experiment_by_name("s").id
    found = client.tracking.search_runs([experiment_id], "metrics.auc >= 0.8", ["metrics.auc DESC"])
    assert [run.name for run in found] == ["d5", "d7"]
    found = client.tracking.search_runs(None, "params.depth = '3' and status = 'FINISHED'")
    assert [run.name for run in found] == ["d3"]
