"""Fixtures of the registry tests: a seeded mixed-type data set and fitted pipelines."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from manara.context import Context
from manara.registry.service import RegistryService
from manara.tracking.service import TrackingService
from manara.workspace import Workspace
from tests.sdk_modes import client  # noqa: F401

NUMERIC = ["amount", "visits"]
CATEGORICAL = ["plan"]


def make_frame(rows: int = 400, seed: int = 7) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(50.0, 15.0, rows),
            "visits": rng.integers(0, 20, rows),
            "plan": rng.choice(["basic", "plus", "pro"], rows),
        }
    )
    score = 0.05 * (frame["amount"] - 50) + 0.2 * (frame["plan"] == "pro") - 0.1 * frame["visits"]
    target = (score + rng.normal(0.0, 0.5, rows) > -1.0).astype(np.int64).to_numpy()
    return frame, target


def preprocessor() -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
            ("numeric", SimpleImputer(), NUMERIC),
        ]
    )


def fit_pipeline(estimator: Any) -> tuple[Pipeline, pd.DataFrame]:
    frame, target = make_frame()
    pipeline = Pipeline([("prepare", preprocessor()), ("model", estimator)])
    pipeline.fit(frame, target)
    return pipeline, frame


@pytest.fixture(scope="session")
def logistic() -> tuple[Pipeline, pd.DataFrame]:
    return fit_pipeline(LogisticRegression(max_iter=500))


@pytest.fixture(scope="session")
def boosted() -> tuple[Pipeline, pd.DataFrame]:
    return fit_pipeline(HistGradientBoostingClassifier(max_iter=20, random_state=0))


@pytest.fixture(scope="session")
def unexported() -> tuple[Pipeline, pd.DataFrame]:
    """A pipeline skl2onnx cannot convert: it applies a NumPy function to a column."""
    frame, target = make_frame()
    prepare = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
            ("amount", SimpleImputer(), ["amount"]),
            ("visits", FunctionTransformer(np.log1p), ["visits"]),
        ]
    )
    pipeline = Pipeline([("prepare", prepare), ("model", LogisticRegression(max_iter=500))])
    pipeline.fit(frame, target)
    return pipeline, frame


@pytest.fixture
def ctx(workspace: Workspace) -> Context:
    return workspace.context()


@pytest.fixture
def tracking(ctx: Context) -> TrackingService:
    return TrackingService(ctx)


@pytest.fixture
def registry(ctx: Context) -> RegistryService:
    return RegistryService(ctx)


@pytest.fixture
def new_run(tracking: TrackingService) -> Any:
    counter = iter(range(1000))

    def create() -> str:
        name = f"registry-tests-{next(counter)}"
        experiment = tracking.create_experiment(name)
        return tracking.create_run(experiment.id).id

    return create


@pytest.fixture
def register(registry: RegistryService, new_run: Any) -> Any:
    """Log ``model`` into a fresh run and register it under ``name``; return the version."""

    def create(name: str, model: Any, sample: pd.DataFrame) -> Any:
        run_id = new_run()
        registry.log_model(run_id, model, sample.head(50))
        return registry.create_version(name, run_id)

    return create
