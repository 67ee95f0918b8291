"""Serving benchmark: ``manara serve`` against MLServer 1.7, and the model called in-process.

Run from the repository root::

    .venv/bin/python bench/serving.py [--duration 10] [--skip-mlserver]

What it measures, for a one-row request to a scikit-learn pipeline (scaler
and logistic regression) on four numeric columns, ONNX-verified and served
by ONNX Runtime:

* in-process: ``LoadedModel.predict`` on one row, timed per call in a loop
  (microseconds per call, p50 and p99);
* ``manara serve`` with one worker process, with bearer-key authentication
  and prediction logging on;
* MLServer 1.7.1 with mlserver-sklearn serving the same fitted model (saved
  with joblib), in one process (``parallel_workers: 0``), other settings
  left at their defaults.

Both servers get the same Open Inference Protocol JSON body (one tensor per
column, with the ``content_type: pd`` parameter that MLServer needs to
build a DataFrame; Manara ignores it) from wrk in another process, at
concurrency 1, 8 and 64. MLServer is also measured with the request form
its scikit-learn runtime takes by default, one ``[1, 4]`` FP64 tensor, on
the same pipeline fitted on a plain matrix ("mlserver-2d"). When ``taskset`` exists, the server is pinned to
CPU 0 and wrk to CPU 1. MLServer is installed on first use into
``bench/.venvs/mlserver`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import httpx
import numpy as np
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parent.parent
MLSERVER_VENV = ROOT / "bench" / ".venvs" / "mlserver"
MLSERVER_PACKAGES = ("mlserver==1.7.1", "mlserver-sklearn==1.7.1")
MODEL = "bench-classifier"
MATRIX_MODEL = "bench-classifier-2d"
FEATURES = ("f0", "f1", "f2", "f3")
CONCURRENCY = (1, 8, 64)
SERVER_CPU = "0"
LOAD_CPU = "1"


@dataclass(frozen=True)
class Result:
    system: str
    concurrency: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    timeouts: int


def train(home: Path) -> tuple[Pipeline, Pipeline, pd.DataFrame, str]:
    """Fit and register the model in a fresh workspace.

    Returns the model, the same model fitted on a plain matrix (for
    MLServer's two-dimensional request form), the training frame and an
    API key with the inference-client role.
    """
    from manara.config import Settings
    from manara.registry.service import RegistryService
    from manara.tracking.service import TrackingService
    from manara.workspace import Workspace

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(2000, len(FEATURES))), columns=list(FEATURES))
    labels = (frame.to_numpy() @ np.array([1.0, -0.5, 0.25, 2.0]) > 0).astype(np.int64)
    # The column transformer gathers the four column inputs into one matrix,
    # which is the form the registry's ONNX export converts.
    model = make_pipeline(
        make_column_transformer((StandardScaler(), list(FEATURES))), LogisticRegression()
    ).fit(frame, labels)
    matrix_model = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        frame.to_numpy(), labels
    )

    workspace = Workspace.open(Settings(home=home))
    try:
        ctx = workspace.context()
        tracking = TrackingService(ctx)
        run = tracking.create_run(tracking.create_experiment("bench").id)
        registry = RegistryService(ctx, tracking)
        registry.log_model(run.id, model, frame.head(50))
        version = registry.create_version(MODEL, run.id)
        if not version.onnx_verified:
            raise SystemExit(f"the benchmark model was not ONNX-verified: {version.metadata}")
        client = workspace.create_principal("bench", {"inference-client"}, kind="service")
        key = workspace.issue_key(client).token
    finally:
        workspace.close()
    return model, matrix_model, frame, key


def time_in_process(home: Path, row: dict[str, np.ndarray], calls: int) -> tuple[float, float]:
    """Return p50 and p99 microseconds of one-row ``LoadedModel.predict`` calls."""
    from manara.config import Settings
    from manara.registry.service import RegistryService
    from manara.workspace import Workspace

    workspace = Workspace.open(Settings(home=home))
    try:
        loaded = RegistryService(workspace.context()).load(MODEL)
    finally:
        workspace.close()
    for _ in range(500):
        loaded.predict(row)
    samples = np.empty(calls)
    for index in range(calls):
        start = time.perf_counter_ns()
        loaded.predict(row)
        samples[index] = time.perf_counter_ns() - start
    p50, p99 = np.percentile(samples / 1000.0, [50, 99])
    return float(p50), float(p99)


def request_body(frame: pd.DataFrame) -> bytes:
    first = frame.iloc[0]
    return json.dumps(
        {
            "parameters": {"content_type": "pd"},
            "inputs": [
                {"name": name, "datatype": "FP64", "shape": [1], "data": [float(first[name])]}
                for name in FEATURES
            ],
        }
    ).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(command: list[str], cpu: str) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", cpu, *command]
    return command


@contextmanager
def process(command: list[str], env: dict[str, str], ready_url: str) -> Iterator[None]:
    """Start a server, wait until ``ready_url`` returns 200, stop it with SIGINT."""
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(child, log, ready_url)
            yield
        finally:
            child.send_signal(signal.SIGINT)
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def wait_ready(child: subprocess.Popen[bytes], log: IO[bytes], ready_url: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        if child.poll() is not None:
            log.seek(0)
            raise SystemExit(f"{child.args} exited:\n{log.read().decode()[-3000:]}")
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{child.args} did not become ready within 120 s")
        time.sleep(0.2)


def wrk_script(folder: Path, body: bytes, token: str | None, label: str) -> Path:
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(body.decode())}",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    if token is not None:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {token}"')
    path = folder / f"post-{label}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(
    url: str, script: Path, connections: int, seconds: int
) -> tuple[float, float, float, int]:
    """Return requests/s, p50 ms, p99 ms and timeouts; fail on non-2xx or connection errors."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    output = subprocess.run(
        pinned([*command, url], LOAD_CPU), capture_output=True, text=True, check=True
    ).stdout
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    timeouts = int(errors.group(4)) if errors else 0
    if "Non-2xx" in output or (errors and sum(map(int, errors.groups()[:3]))):
        raise SystemExit(f"wrk reported errors against {url}:\n{output}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    percentiles = {
        int(share): float(value) * _UNITS_MS[unit]
        for share, value, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    }
    return rate, percentiles[50], percentiles[99], timeouts


def measure(system: str, url: str, script: Path, seconds: int) -> list[Result]:
    run_wrk(url, script, 8, 2)  # warm-up
    results = []
    for connections in CONCURRENCY:
        rate, p50, p99, timeouts = run_wrk(url, script, connections, seconds)
        results.append(Result(system, connections, rate, p50, p99, timeouts))
        print(
            f"  {system:<11} c={connections:<3} {rate:9.0f} req/s  p50 {p50:7.2f} ms  "
            f"p99 {p99:7.2f} ms  timeouts {timeouts}"
        )
    return results


def bench_manara(home: Path, folder: Path, body: bytes, token: str, seconds: int) -> list[Result]:
    port = free_port()
    env = {**os.environ, "MANARA_HOME": str(home)}
    command = [str(ROOT / ".venv" / "bin" / "manara"), "serve", MODEL, "--port", str(port)]
    command += ["--workers", "1", "--log-level", "warning"]
    base = f"http://127.0.0.1:{port}"
    with process(pinned(command, SERVER_CPU), env, f"{base}/v2/health/live"):
        results = measure(
            "manara",
            f"{base}/v2/models/{MODEL}/infer",
            wrk_script(folder, body, token, "manara"),
            seconds,
        )
    logged = sum(1 for _ in (home / "predictions" / MODEL / "v1").glob("part-*.parquet"))
    print(f"  manara wrote {logged} prediction log files")
    return results


def ensure_mlserver() -> Path:
    executable = MLSERVER_VENV / "bin" / "mlserver"
    if executable.exists():
        return executable
    print(f"installing {' '.join(MLSERVER_PACKAGES)} into {MLSERVER_VENV}")
    subprocess.run([sys.executable, "-m", "venv", str(MLSERVER_VENV)], check=True)
    pip = [str(MLSERVER_VENV / "bin" / "pip"), "install", "-q", *MLSERVER_PACKAGES]
    subprocess.run(pip, check=True)
    return executable


def matrix_body(frame: pd.DataFrame) -> bytes:
    """Build the request form MLServer's scikit-learn runtime takes by default: one ``[1, 4]`` tensor."""
    values = [float(value) for value in frame.iloc[0][list(FEATURES)]]
    tensor = {"name": "predict", "datatype": "FP64", "shape": [1, len(FEATURES)], "data": values}
    return json.dumps({"inputs": [tensor]}).encode()


def save_for_mlserver(repository: Path, name: str, model: Pipeline) -> None:
    import joblib

    (repository / name).mkdir(parents=True)
    joblib.dump(model, repository / name / "model.joblib")
    settings = {
        "name": name,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"},
    }
    (repository / name / "model-settings.json").write_text(json.dumps(settings))


def bench_mlserver(
    models: tuple[Pipeline, Pipeline], folder: Path, bodies: tuple[bytes, bytes], seconds: int
) -> list[Result]:
    executable = ensure_mlserver()
    repository = folder / "mlserver"
    save_for_mlserver(repository, MODEL, models[0])
    save_for_mlserver(repository, MATRIX_MODEL, models[1])
    port = free_port()
    server = {
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "parallel_workers": 0,
    }
    (repository / "settings.json").write_text(json.dumps(server))
    base = f"http://127.0.0.1:{port}"
    command = pinned([str(executable), "start", str(repository)], SERVER_CPU)
    with process(command, dict(os.environ), f"{base}/v2/models/{MATRIX_MODEL}/ready"):
        results = measure(
            "mlserver",
            f"{base}/v2/models/{MODEL}/infer",
            wrk_script(folder, bodies[0], None, "columns"),
            seconds,
        )
        results += measure(
            "mlserver-2d",
            f"{base}/v2/models/{MATRIX_MODEL}/infer",
            wrk_script(folder, bodies[1], None, "matrix"),
            seconds,
        )
    return results


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {memory_kb / 1024 / 1024:.0f} GiB RAM, "
        f"Python {platform.python_version()}, load average {load}"
    )


def print_table(results: list[Result]) -> None:
    """Print a Markdown table; ratios compare with the faster MLServer form at each concurrency."""
    best: dict[int, Result] = {}
    for result in results:
        current = best.get(result.concurrency)
        if result.system.startswith("mlserver") and (
            current is None or result.requests_per_second > current.requests_per_second
        ):
            best[result.concurrency] = result
    print(
        "\n| system | concurrency | req/s | p50 ms | p99 ms | timeouts (2 s) "
        "| req/s vs best MLServer | p99 vs best MLServer |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for result in results:
        other = best.get(result.concurrency)
        ratio = p99 = "-"
        if other is not None and result.system == "manara":
            ratio = f"{result.requests_per_second / other.requests_per_second:.1f}x"
            p99 = f"{result.p99_ms / other.p99_ms:.2f}x"
        print(
            f"| {result.system} | {result.concurrency} | {result.requests_per_second:,.0f} | "
            f"{result.p50_ms:.2f} | {result.p99_ms:.2f} | {result.timeouts} | {ratio} | {p99} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="Seconds per wrk run.")
    parser.add_argument("--calls", type=int, default=20_000, help="In-process predict calls.")
    parser.add_argument("--skip-mlserver", action="store_true", help="Measure Manara only.")
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed; install it (apt-get install wrk) and rerun.")

    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}")
    with tempfile.TemporaryDirectory(prefix="manara-bench-") as temporary:
        folder = Path(temporary)
        home = folder / "home"
        model, matrix_model, frame, token = train(home)
        body = request_body(frame)
        row = {name: frame[name].to_numpy()[:1] for name in FEATURES}
        p50, p99 = time_in_process(home, row, options.calls)
        print(f"in-process LoadedModel.predict, one row: p50 {p50:.1f} us, p99 {p99:.1f} us")
        results = bench_manara(home, folder, body, token, options.duration)
        if not options.skip_mlserver:
            bodies = (body, matrix_body(frame))
            results += bench_mlserver((model, matrix_model), folder, bodies, options.duration)
    print_table(results)


if __name__ == "__main__":
    main()
