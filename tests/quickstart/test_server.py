"""The quickstart's in-process server: real requests, and a clean stop with the log flushed."""

from __future__ import annotations

import socket

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from manara.errors import InvalidInputError
from manara.quickstart.server import running_server
from manara.quickstart.traffic import replay
from manara.registry.service import RegistryService
from manara.tracking.run_context import start_run
from manara.tracking.service import TrackingService
from manara.workspace import Workspace


class _Services:
    def __init__(self, tracking: TrackingService) -> None:
        self.tracking = tracking


def _register(workspace: Workspace) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=300), "y": rng.normal(size=300)})
    labels = (frame["x"] + frame["y"] > 0).astype("int64")
    model = LogisticRegression().fit(frame, labels)
    context = workspace.context()
    tracking = TrackingService(context)
    registry = RegistryService(context, tracking)
    with start_run(_Services(tracking), "server-test") as run:
        registry.log_model(run.id, model, frame.head(20))
    registry.create_version("tiny", run.id)
    return frame


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_replay_and_log(sqlite_workspace: Workspace) -> None:
    frame = _register(sqlite_workspace)
    admin = sqlite_workspace.local_admin()
    token = sqlite_workspace.issue_key(admin).token
    signature = RegistryService(sqlite_workspace.context()).resolve("tiny").signature

    with running_server(sqlite_workspace.settings, "tiny:1") as server:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(headers=headers) as client:
            result = replay(client, server.infer_url, frame, signature, batch_size=64)
        port = server.port

    assert result.requests == 5
    assert result.rows == 300
    assert ((result.probabilities >= 0) & (result.probabilities <= 1)).all()
    assert not _port_open(port), "the server still listens after the block"
    logged = list((sqlite_workspace.settings.predictions_dir / "tiny" / "v1").glob("*.parquet"))
    rows = sum(len(pd.read_parquet(path)) for path in logged)
    assert rows == 300


def test_stops_on_error(sqlite_workspace: Workspace) -> None:
    frame = _register(sqlite_workspace)
    signature = RegistryService(sqlite_workspace.context()).resolve("tiny").signature

    with (
        pytest.raises(InvalidInputError, match="HTTP 401"),
        running_server(sqlite_workspace.settings, "tiny:1") as server,
        httpx.Client() as client,
    ):
        port = server.port
        replay(client, server.infer_url, frame, signature)

    assert not _port_open(port), "the server still listens after the error"
