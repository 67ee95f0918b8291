"""Metric logging throughput: Manara (local mode) against MLflow, both on SQLite.

Usage, from the repository root::

    .venv/bin/python bench/tracking.py [--write-docs]

MLflow is installed into its own virtual environment (bench/.venvs/mlflow,
git-ignored) and runs as a subprocess, so its pinned dependencies never
touch Manara's environment. Both systems log the same metrics (10 keys,
increasing steps) into a fresh SQLite database on the same disk:

- batched: 100,000 metrics; Manara in calls of 10,000, MLflow with
  ``MlflowClient.log_batch`` in calls of 1,000 (MLflow's limit per call);
- one by one: 2,000 metrics, one call each.

Timings include building the metric objects and exclude creating the
database, the experiment and the run. Manara is also timed with its
columnar ``log_metric_series`` (arrays of steps and values per key, no
``Metric`` objects), which MLflow has no counterpart for; the headline
ratio uses the ``Metric`` path. ``--write-docs`` replaces the
"Tracking" section of docs/benchmarks.md with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MLFLOW_VENV = ROOT / "bench" / ".venvs" / "mlflow"
MLFLOW_REQUIREMENTS = ["mlflow-skinny==3.18.0", "sqlalchemy>=2,<3", "alembic>=1.13,<2"]
DOCS = ROOT / "docs" / "benchmarks.md"
KEYS = 10
NOTES = """\
Manara stores each call's values as one chunk of arrays per metric key
(steps, timestamps and values as 64-bit arrays) plus the latest value of
each key. A batch of 10,000 metrics over 10 keys is 10 chunk rows and 10
upserts. A row per value, as MLflow stores them, made SQLite's B-tree
insert about half of Manara's time before. What remains is mostly building
the `Metric` objects (the same loop for both systems) and checking them one
column at a time. `log_metric_series` takes one key's steps and values as
arrays and builds no `Metric` objects; MLflow has no such call, so it is
left out of the ratio. This machine's speed changed by up to 2.5x between runs
on one day (MLflow batched: 3,100 to 10,000 metrics/s), so compare the
ratio within one run, not numbers across runs.
"""

MLFLOW_SCRIPT = """
import json, sys, time, logging
logging.disable(logging.WARNING)
from mlflow.tracking import MlflowClient
from mlflow.entities import Metric

uri, total, batch, single = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
client = MlflowClient(tracking_uri=uri)
experiment_id = client.create_experiment("bench")
results = {}

run_id = client.create_run(experiment_id).info.run_id
start = time.perf_counter()
for offset in range(0, total, batch):
    now = int(time.time() * 1000)
    metrics = [Metric(f"m{i % 10}", i * 0.5, now, i // 10) for i in range(offset, offset + batch)]
    client.log_batch(run_id, metrics=metrics)
results["batched"] = time.perf_counter() - start

run_id = client.create_run(experiment_id).info.run_id
start = time.perf_counter()
for i in range(single):
    client.log_metric(run_id, f"m{i % 10}", i * 0.5, step=i // 10)
results["single"] = time.perf_counter() - start
print(json.dumps(results))
"""


def mlflow_python() -> Path:
    """Create the MLflow virtual environment on first use; return its interpreter."""
    python = MLFLOW_VENV / "bin" / "python"
    marker = MLFLOW_VENV / "requirements.txt"
    wanted = "\n".join(MLFLOW_REQUIREMENTS)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"installing {', '.join(MLFLOW_REQUIREMENTS)} into {MLFLOW_VENV} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *MLFLOW_REQUIREMENTS], check=True)
    marker.write_text(wanted)
    return python


def run_mlflow(workdir: Path, total: int, batch: int, single: int) -> dict[str, float]:
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    env = dict(os.environ, MLFLOW_ENABLE_ASYNC_LOGGING="false", PYTHONWARNINGS="ignore")
    completed = subprocess.run(
        [str(mlflow_python()), "-c", MLFLOW_SCRIPT, uri, str(total), str(batch), str(single)],
        check=True,
        capture_output=True,
        text=True,
        cwd=workdir,
        env=env,
    )
    result: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def run_manara(workdir: Path, total: int, batch: int, single: int) -> dict[str, float]:
    from manara.client import Client
    from manara.config import Settings
    from manara.tracking.entities import Metric

    results: dict[str, float] = {}
    with Client(settings=Settings(home=workdir / "manara")) as client:
        experiment = client.tracking.create_experiment("bench")
        run_id = client.tracking.create_run(experiment.id).id
        start = time.perf_counter()
        for offset in range(0, total, batch):
            metrics = [
                Metric(f"m{i % KEYS}", i * 0.5, i // KEYS) for i in range(offset, offset + batch)
            ]
            client.tracking.log_metrics(run_id, metrics)
        results["batched"] = time.perf_counter() - start

        # The same values through the columnar API: one key's steps and values per call.
        run_id = client.tracking.create_run(experiment.id).id
        start = time.perf_counter()
        per_key = total // KEYS
        for key in range(KEYS):
            for offset in range(0, per_key, batch):
                steps = np.arange(offset, min(offset + batch, per_key))
                values = (steps * KEYS + key) * 0.5
                client.tracking.log_metric_series(run_id, f"m{key}", values, steps)
        results["series"] = time.perf_counter() - start

        run_id = client.tracking.create_run(experiment.id).id
        start = time.perf_counter()
        for i in range(single):
            client.tracking.log_metrics(run_id, [Metric(f"m{i % KEYS}", i * 0.5, i // KEYS)])
        results["single"] = time.perf_counter() - start
    return results


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    cores = len(os.sched_getaffinity(0))
    return (
        f"{cores} CPUs available (nproc), {cpu}, {memory_kib / 1024 / 1024:.1f} GiB RAM, "
        f"Linux {platform.release()}, Python {platform.python_version()}"
    )


def table_rows(
    manara: dict[str, float], mlflow: dict[str, float], total: int, batch: int, single: int
) -> list[list[str]]:
    rows = []
    for system, mode, count, seconds in (
        ("Manara", f"batched, {batch:,} per call", total, manara["batched"]),
        ("MLflow 3.18.0", "log_batch, 1,000 per call", total, mlflow["batched"]),
        ("Manara", f"log_metric_series, {batch:,} per call", total, manara["series"]),
        ("Manara", "one per call", single, manara["single"]),
        ("MLflow 3.18.0", "log_metric, one per call", single, mlflow["single"]),
    ):
        rows.append([system, mode, f"{count:,}", f"{seconds:.3f}", f"{count / seconds:,.0f}"])
    return rows


def markdown(rows: list[list[str]], ratios: dict[str, float], command: str) -> str:
    header = ["system", "mode", "metrics", "seconds", "metrics/s"]
    lines = [
        "## Tracking",
        "",
        "Metric logging throughput, Manara local mode against MLflow's `MlflowClient`, "
        "each on a fresh SQLite database (bench/tracking.py; MLflow runs in its own "
        "virtual environment).",
        "",
        f"- command: `{command}`",
        f"- machine: {machine()}",
        f"- date: {datetime.now(UTC).date().isoformat()}",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += [
        "",
        f"Manara/MLflow throughput: batched {ratios['batched']:.1f}x, "
        f"one by one {ratios['single']:.1f}x.",
        "",
        NOTES,
    ]
    return "\n".join(lines)


def write_docs(section: str) -> None:
    """Replace the "## Tracking" section of docs/benchmarks.md, keeping the others."""
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n\n"
    pattern = re.compile(r"^## Tracking\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", type=int, default=100_000, help="Metrics in batched mode.")
    parser.add_argument("--batch", type=int, default=10_000, help="Manara metrics per call.")
    parser.add_argument("--single", type=int, default=2_000, help="Metrics logged one by one.")
    parser.add_argument("--write-docs", action="store_true", help="Update docs/benchmarks.md.")
    args = parser.parse_args()

    MLFLOW_VENV.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=MLFLOW_VENV.parent) as scratch:
        workdir = Path(scratch)
        manara = run_manara(workdir, args.metrics, args.batch, args.single)
        mlflow = run_mlflow(workdir, args.metrics, 1000, args.single)

    rows = table_rows(manara, mlflow, args.metrics, args.batch, args.single)
    ratios = {mode: mlflow[mode] / manara[mode] for mode in ("batched", "single")}
    widths = [
        max(len(row[i]) for row in rows + [["system", "mode", "metrics", "seconds", "metrics/s"]])
        for i in range(5)
    ]
    for row in [["system", "mode", "metrics", "seconds", "metrics/s"], *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(f"Manara/MLflow: batched {ratios['batched']:.1f}x, one by one {ratios['single']:.1f}x")

    if args.write_docs:
        command = ".venv/bin/python bench/tracking.py --write-docs"
        write_docs(markdown(rows, ratios, command))
        print(f"wrote {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
