"""Fixtures for the inference server: a workspace with registered models, a live server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import uvicorn
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from manara.config import Settings
from manara.registry.service import RegistryService
from manara.serving.app import InferenceApp
from manara.serving.server import build_app, uvicorn_options
from manara.tracking.service import TrackingService
from manara.workspace import Workspace

MODEL = "churn"
NATIVE_MODEL = "churn-xgb"


def synthetic_frame(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(100.0, 30.0, rows),
            "visits": rng.integers(0, 20, rows),
            "city": rng.choice(["Dubai", "Abu Dhabi", "Sharjah"], rows).astype(object),
        }
    )
    score = (frame["amount"] - 100.0) / 30.0 + 0.2 * frame["visits"] - 2.0
    score += np.where(frame["city"] == "Dubai", 0.8, -0.3)
    labels = (score + rng.normal(0.0, 0.5, rows) > 0).astype(np.int64).to_numpy()
    return frame, labels


def sklearn_pipeline(frame: pd.DataFrame, labels: np.ndarray) -> Pipeline:
    pipeline = make_pipeline(
        make_column_transformer(
            (StandardScaler(), ["amount", "visits"]),
            (OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ),
        LogisticRegression(),
    )
    return pipeline.fit(frame, labels)


@dataclass
class Served:
    """A workspace with both models registered, and a key per role."""

    settings: Settings
    workspace: Workspace
    pipeline: Pipeline
    booster: object
    frame: pd.DataFrame
    admin_key: str
    client_key: str
    viewer_key: str


def register(workspace: Workspace, name: str, model: object, sample: pd.DataFrame) -> None:
    ctx = workspace.context()
    tracking = TrackingService(ctx)
    experiment = tracking.create_experiment(f"train-{name}")
    run = tracking.create_run(experiment.id)
    registry = RegistryService(ctx, tracking)
    registry.log_model(run.id, model, sample)
    registry.create_version(name, run.id)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from xgboost import XGBClassifier

    settings = Settings(
        home=tmp_path_factory.mktemp("serving") / "home",
        prediction_log_batch_size=64,
        prediction_log_flush_seconds=0.2,
        # Every test calls from 127.0.0.1; the tests of bad keys must not
        # lock that client out for the tests that follow.
        auth_max_failures=1_000_000,
    )
    workspace = Workspace.open(settings)
    frame, labels = synthetic_frame(400, seed=11)
    pipeline = sklearn_pipeline(frame, labels)
    register(workspace, MODEL, pipeline, frame.head(20))
    numeric = frame[["amount", "visits"]]
    booster = XGBClassifier(n_estimators=20, max_depth=3, random_state=0).fit(numeric, labels)
    register(workspace, NATIVE_MODEL, booster, numeric.head(20))
    admin = workspace.local_admin()
    client = workspace.create_principal("scorer", {"inference-client"}, kind="service")
    viewer = workspace.create_principal("v", {"viewer"})
    yield Served(
        settings=settings,
        workspace=workspace,
        pipeline=pipeline,
        booster=booster,
        frame=synthetic_frame(50, seed=12)[0],
        admin_key=workspace.issue_key(admin).token,
        client_key=workspace.issue_key(client).token,
        viewer_key=workspace.issue_key(viewer).token,
    )
    workspace.close()


@contextmanager
def running(app: InferenceApp) -> Iterator[int]:
    """Run ``app`` on uvicorn in a thread on a free loopback port; stop it on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on",
        ws="none",
        **uvicorn_options(),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the inference server did not start")
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture(scope="module")
def server_port(served: Served) -> Iterator[int]:
    app = build_app(served.workspace, MODEL)
    with running(app) as port:
        yield port


def served_app(served: Served, ref: str = MODEL) -> InferenceApp:
    return build_app(served.workspace, ref)


def prediction_files(settings: Settings, name: str, version: int = 1) -> list[Path]:
    return sorted((settings.predictions_dir / name / f"v{version}").glob("part-*.parquet"))
