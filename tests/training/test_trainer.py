"""Training from a spec: a full run end to end, and bad input rejected before any run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sqlalchemy import func, select

from manara.client import Client
from manara.errors import InvalidInputError
from manara.registry.service import RegistryService
from manara.stores.metadata import tables
from manara.tracking.service import TrackingService
from manara.training.spec import parse_spec
from manara.training.trainer import STAGES, train
from manara.workspace import Workspace
from tests.training.conftest import customers, make_spec


def count(workspace: Workspace, table: Any) -> int:
    with workspace.metadata.read() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def test_train_registers_model(workspace: Workspace, csv_path: Path) -> None:
    stages: list[str] = []
    result = train(workspace.context(), parse_spec(make_spec(csv_path)), stages.append)
    assert stages == list(STAGES)

    ctx = workspace.context()
    run = TrackingService(ctx).get_run(result.run_id)
    assert run.status == "FINISHED"
    assert run.params["estimator"] == "sklearn.linear_model.LogisticRegression"
    assert run.metrics == pytest.approx(result.metrics)
    assert {dataset.name for dataset in run.inputs} == {"train", "test"}

    version = result.model_version
    assert version is not None
    assert version.ref == "churn:1"
    assert version.aliases == ("champion",)
    assert version.run_id == result.run_id

    frame = customers()
    test = frame[frame["signup_time"] >= pd.Timestamp("2026-03-01", tz="UTC")]
    loaded = RegistryService(ctx).load("churn@champion")
    outputs = loaded.predict_frame(test)
    target = test["churned"].to_numpy()
    assert result.metrics["roc_auc"] == pytest.approx(
        roc_auc_score(target, outputs["probabilities"][:, 1]), abs=1e-4
    )
    assert result.metrics["accuracy"] == pytest.approx(accuracy_score(target, outputs["label"]))
    assert result.metrics["log_loss"] == pytest.approx(
        log_loss(target, outputs["probabilities"]), abs=1e-4
    )


def test_train_parquet_fraction(sqlite_workspace: Workspace, parquet_path: Path) -> None:
    spec = make_spec(
        parquet_path,
        split={"test_fraction": 0.25, "seed": 1},
        estimator={"type": "hist_gradient_boosting", "params": {"max_iter": 30}},
        register=None,
    )
    result = train(sqlite_workspace.context(), parse_spec(spec))
    assert result.model_version is None
    run = TrackingService(sqlite_workspace.context()).get_run(result.run_id)
    train_input = next(dataset for dataset in run.inputs if dataset.name == "train")
    assert train_input.row_count == 450
    assert 0.5 < result.metrics["roc_auc"] <= 1.0


@pytest.mark.parametrize("estimator", ["xgboost", "lightgbm"])
def test_train_boosting(sqlite_workspace: Workspace, csv_path: Path, estimator: str) -> None:
    pytest.importorskip(estimator)
    params = {"n_estimators": 20}
    if estimator == "lightgbm":
        params["verbose"] = -1
    spec = make_spec(csv_path, estimator={"type": estimator, "params": params})
    result = train(sqlite_workspace.context(), parse_spec(spec))
    assert result.model_version is not None
    assert result.model_version.flavor == estimator
    loaded = RegistryService(sqlite_workspace.context()).load("churn@champion")
    outputs = loaded.predict_frame(customers().head(20))
    assert outputs["probabilities"].shape == (20, 2)


def assert_nothing_created(workspace: Workspace) -> None:
    assert count(workspace, tables.runs) == 0, "a run was created"
    assert count(workspace, tables.experiments) == 0, "an experiment was created"
    assert count(workspace, tables.model_versions) == 0, "a model version was created"


def test_missing_column(workspace: Workspace, csv_path: Path) -> None:
    spec = make_spec(csv_path, features={"numeric": ["amount", "tenure"], "categorical": []})
    with pytest.raises(InvalidInputError) as caught:
        train(workspace.context(), parse_spec(spec))
    assert "'tenure'" in caught.value.message
    assert "amount, visits, plan" in caught.value.message
    assert_nothing_created(workspace)


def test_single_class_target(workspace: Workspace, tmp_path: Path) -> None:
    frame = customers()
    frame["churned"] = 1
    frame.to_parquet(tmp_path / "one.parquet")
    with pytest.raises(InvalidInputError, match="single class"):
        train(workspace.context(), parse_spec(make_spec(tmp_path / "one.parquet")))
    assert_nothing_created(workspace)


def test_naive_timestamps(workspace: Workspace, tmp_path: Path) -> None:
    frame = customers()
    frame["signup_time"] = frame["signup_time"].dt.tz_localize(None)
    frame.to_csv(tmp_path / "naive.csv", index=False)
    with pytest.raises(InvalidInputError) as caught:
        train(workspace.context(), parse_spec(make_spec(tmp_path / "naive.csv")))
    assert "'signup_time'" in caught.value.message
    assert "assume_timezone" in caught.value.message
    assert_nothing_created(workspace)

    spec = make_spec(tmp_path / "naive.csv")
    spec["data"]["assume_timezone"] = "UTC"
    assert train(workspace.context(), parse_spec(spec)).model_version is not None


def test_estimator_not_installed(
    workspace: Workspace, csv_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "xgboost", None)
    spec = make_spec(csv_path, estimator={"type": "xgboost.XGBClassifier"})
    with pytest.raises(InvalidInputError) as caught:
        train(workspace.context(), parse_spec(spec))
    assert "manara[boosting]" in caught.value.message
    assert_nothing_created(workspace)


def test_invalid_specs(csv_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="unknown estimator"):
        parse_spec(make_spec(csv_path, estimator={"type": "os.system"}))
    with pytest.raises(InvalidInputError, match="rmse"):
        parse_spec(make_spec(csv_path, metrics=["rmse"]))
    with pytest.raises(InvalidInputError, match="timezone"):
        parse_spec(make_spec(csv_path, split={"train_until": "2026-03-01T00:00:00"}))


def test_train_through_sdk(client: Client, csv_path: Path) -> None:
    result = train(client, parse_spec(make_spec(csv_path)))
    assert result.model_version is not None
    assert client.registry.resolve("churn@champion").version == 1
    assert client.tracking.get_run(result.run_id).status == "FINISHED"
    assert np.isfinite(result.metrics["roc_auc"])
