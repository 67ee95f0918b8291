"""Prediction logging and failure handling of a running server, and ``manara serve``."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import tritonclient.http as triton

from manara.registry.loading import RegistryLoadedModel
from manara.registry.service import RegistryService
from manara.serving.app import InferenceApp
from manara.serving.auth import ServingAuth
from manara.serving.model import ServedModel
from manara.serving.prediction_log import PredictionLogWriter, Sink, write_parquet
from tests.serving.conftest import MODEL, Served, prediction_files, running
from tests.serving.test_server import bearer, triton_inputs


def logging_app(served: Served, root: Path, sink: Sink = write_parquet) -> InferenceApp:
    loaded = RegistryService(served.workspace.context()).load(MODEL)
    model = ServedModel(loaded)
    writer = PredictionLogWriter(
        root, model.name, model.version, loaded.signature, batch_size=1, sink=sink
    )
    auth = ServingAuth(served.workspace.authenticator, served.workspace.policy, model.name)
    return InferenceApp(model, auth, writer, clock=served.workspace.clock)


def read_log(root: Path) -> pa.Table:
    files = sorted((root / MODEL / "v1").glob("part-*.parquet"))
    assert files, f"no prediction log files under {root}"
    return pa.concat_tables([pq.read_table(path) for path in files])


def test_requests_logged_after_shutdown(served: Served, tmp_path: Path) -> None:
    frame = served.frame.head(3)
    with running(logging_app(served, tmp_path)) as port:
        client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
        try:
            for index in range(7):
                client.infer(
                    MODEL,
                    triton_inputs(frame, binary=index % 2 == 0),
                    request_id=f"log-{index}",
                    headers=bearer(served.client_key),
                )
        finally:
            client.close()

    table = read_log(tmp_path)
    assert table.num_rows == 7 * 3
    assert sorted(set(table["request_id"].to_pylist())) == [f"log-{i}" for i in range(7)]
    assert set(table["model_version"].to_pylist()) == {1}
    assert all(latency > 0 for latency in table["latency_ms"].to_pylist())
    first = table.filter(pc.equal(table["request_id"], "log-3"))
    assert first["input.city"].to_pylist() == frame["city"].tolist()
    assert first["input.visits"].to_pylist() == frame["visits"].tolist()
    assert first["output.label"].to_pylist() == served.pipeline.predict(frame).tolist()
    np.testing.assert_allclose(
        np.array(first["output.probabilities"].to_pylist()),
        served.pipeline.predict_proba(frame),
        atol=1e-6,
    )


def test_slow_disk_does_not_block(served: Served, tmp_path: Path) -> None:
    entered = threading.Event()
    release = threading.Event()

    def slow_sink(table: pa.Table, path: Path) -> None:
        entered.set()
        release.wait(60)
        write_parquet(table, path)

    app = logging_app(served, tmp_path, sink=slow_sink)
    writer = app.prediction_log
    assert writer is not None
    body = {"records": served.frame.head(2).to_dict(orient="records")}
    with running(app) as port:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            statuses = [
                http.post(
                    f"/v2/models/{MODEL}/records", json=body, headers=bearer(served.client_key)
                ).status_code
                for _ in range(20)
            ]
            assert entered.wait(10), "the writer never reached the sink"
            assert statuses == [200] * 20
            assert writer.rows_written == 0, "responses were sent while the disk write waited"
        release.set()
    assert read_log(tmp_path).num_rows == 20 * 2
    assert writer.dropped == 0


class FailingModel(RegistryLoadedModel):
    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise RuntimeError("internal detail that must not reach the client")


def test_internal_error_is_500(
    served: Served, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    loaded = RegistryService(served.workspace.context()).load(MODEL)
    failing = FailingModel(loaded.version, loaded.runtime, None)
    auth = ServingAuth(served.workspace.authenticator, served.workspace.policy, MODEL)
    app = InferenceApp(ServedModel(failing), auth)
    body = {"records": served.frame.head(1).to_dict(orient="records")}
    with caplog.at_level(logging.ERROR, logger="manara.serving.app"), running(app) as port:
        response = httpx.post(
            f"http://127.0.0.1:{port}/v2/models/{MODEL}/records",
            json=body,
            headers=bearer(served.client_key),
        )
    assert response.status_code == 500
    message = response.json()["error"]
    assert "internal detail" not in message
    request_id = message.split("request id ")[1].split(")")[0]
    assert any(request_id in record.getMessage() for record in caplog.records)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_live(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"manara serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/v2/health/live", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("manara serve did not become live within 60 s")


def test_cli_serves_and_flushes(served: Served) -> None:
    port = free_port()
    env = {**os.environ, "MANARA_HOME": str(served.settings.home)}
    command = [sys.executable, "-c", "from manara.cli.main import run; run()", "serve"]
    process = subprocess.Popen(
        [*command, f"{MODEL}@latest", "--port", str(port), "--log-level", "debug"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )

    try:
        wait_live(f"http://127.0.0.1:{port}", process)
        client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
        try:
            client.infer(
                MODEL,
                triton_inputs(served.frame.head(4), True),
                request_id="cli-request",
                headers=bearer(served.client_key),
            )
        finally:
            client.close()
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)

    log = stderr.decode()
    assert process.returncode == 0, log
    assert "serving model=churn version=1 runtime=onnxruntime" in log
    assert "request_id=cli-request" in log
    assert served.client_key not in log
    ids = pa.concat_tables(
        [
            pq.read_table(path, columns=["request_id"])
            for path in prediction_files(served.settings, MODEL)
        ]
    )["request_id"].to_pylist()
    assert ids.count("cli-request") == 4


def test_cli_unknown_model_fails(served: Served) -> None:
    env = {**os.environ, "MANARA_HOME": str(served.settings.home)}
    result = subprocess.run(
        [sys.executable, "-c", "from manara.cli.main import run; run()", "serve", "missing"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 3, result.stderr.decode()
    assert "missing" in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()
