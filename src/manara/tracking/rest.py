"""``TrackingAPI`` over HTTP: the SDK's remote mode, talking to ``manara.api.tracking``.

Input is checked here with the same functions the service uses, so bad
values fail before a request is sent; the server checks again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from numpy.typing import ArrayLike

from manara.errors import IntegrityError
from manara.rest import RestTransport
from manara.tracking.entities import (
    DatasetInput,
    Experiment,
    Metric,
    Run,
    RunArtifact,
    RunStatus,
)
from manara.tracking.validation import (
    MetricBatch,
    check_artifact_path,
    check_dataset,
    check_key,
    check_metrics,
    check_series,
    check_tags,
    from_timestamp_ms,
    stringify_params,
)

# Must match manara.api.tracking.DIGEST_HEADER; the SDK does not import the server.
DIGEST_HEADER = "X-Content-SHA256"


def _segment(value: str) -> str:
    return quote(value, safe="")


def _experiment(body: dict[str, Any]) -> Experiment:
    return Experiment(
        id=body["id"],
        name=body["name"],
        description=body["description"],
        tags=dict(body["tags"]),
        created_at=datetime.fromisoformat(body["created_at"]),
    )


def _dataset(body: dict[str, Any]) -> DatasetInput:
    return DatasetInput(
        name=body["name"],
        digest=body["digest"],
        schema=dict(body["schema"]),
        row_count=body["row_count"],
        source=body["source"],
        context=body["context"],
        artifact_digest=body.get("artifact_digest"),
    )


def _artifact(body: dict[str, Any]) -> RunArtifact:
    return RunArtifact(path=body["path"], digest=body["digest"], size=body["size"])


def _run(body: dict[str, Any]) -> Run:
    end_time = body.get("end_time")
    return Run(
        id=body["id"],
        experiment_id=body["experiment_id"],
        name=body["name"],
        status=body["status"],
        start_time=datetime.fromisoformat(body["start_time"]),
        end_time=datetime.fromisoformat(end_time) if end_time else None,
        params=dict(body["params"]),
        tags=dict(body["tags"]),
        metrics={key: float(value) for key, value in body["metrics"].items()},
        inputs=[_dataset(item) for item in body["inputs"]],
        artifacts=[_artifact(item) for item in body["artifacts"]],
    )


class RestTracking:
    """Implements ``manara.tracking.api.TrackingAPI`` against a Manara server."""

    def __init__(self, transport: RestTransport) -> None:
        self._transport = transport

    def create_experiment(
        self, name: str, description: str = "", tags: Mapping[str, str] | None = None
    ) -> Experiment:
        body = {"name": name, "description": description, "tags": check_tags(tags)}
        return _experiment(self._transport.json("POST", "/experiments", json=body))

    def get_experiment(self, experiment_id: str) -> Experiment:
        path = f"/experiments/{_segment(experiment_id)}"
        return _experiment(self._transport.json("GET", path))

    def get_experiment_by_name(self, name: str) -> Experiment:
        path = f"/experiments/by-name/{_segment(name)}"
        return _experiment(self._transport.json("GET", path))

    def list_experiments(self) -> list[Experiment]:
        return [_experiment(item) for item in self._transport.json("GET", "/experiments")]

    def create_run(
        self, experiment_id: str, name: str | None = None, tags: Mapping[str, str] | None = None
    ) -> Run:
        body = {"experiment_id": experiment_id, "name": name, "tags": check_tags(tags)}
        return _run(self._transport.json("POST", "/runs", json=body))

    def get_run(self, run_id: str) -> Run:
        return _run(self._transport.json("GET", f"/runs/{_segment(run_id)}"))

    def set_run_status(self, run_id: str, status: RunStatus) -> Run:
        path = f"/runs/{_segment(run_id)}"
        return _run(self._transport.json("PATCH", path, json={"status": status}))

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        body = {"params": stringify_params(params)}
        self._transport.request("POST", f"/runs/{_segment(run_id)}/params", json=body)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        body = {"tags": check_tags(tags)}
        self._transport.request("POST", f"/runs/{_segment(run_id)}/tags", json=body)

    def log_metrics(self, run_id: str, metrics: Sequence[Metric]) -> None:
        # Metrics without a timestamp are stamped here, when they were logged,
        # rather than when the server receives them.
        self._send_metrics(run_id, check_metrics(metrics, datetime.now().astimezone()))

    def log_metric_series(
        self, run_id: str, key: str, values: ArrayLike, steps: ArrayLike | None = None
    ) -> None:
        self._send_metrics(run_id, check_series(key, values, steps, datetime.now().astimezone()))

    def _send_metrics(self, run_id: str, batch: MetricBatch) -> None:
        body = {
            "metrics": [
                {
                    "key": key,
                    "value": value,
                    "step": step,
                    "timestamp": from_timestamp_ms(timestamp_ms).isoformat(),
                }
                for key, value, step, timestamp_ms in zip(
                    batch.keys,
                    batch.values.tolist(),
                    batch.steps.tolist(),
                    batch.timestamps_ms.tolist(),
                    strict=True,
                )
            ]
        }
        self._transport.request("POST", f"/runs/{_segment(run_id)}/metrics", json=body)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        path = f"/runs/{_segment(run_id)}/metrics/{quote(check_key(key, 'metric'), safe='/')}"
        return [
            Metric(
                key=item["key"],
                value=float(item["value"]),
                step=item["step"],
                timestamp=datetime.fromisoformat(item["timestamp"]),
            )
            for item in self._transport.json("GET", path)
        ]

    def log_input(self, run_id: str, dataset: DatasetInput) -> None:
        check_dataset(dataset)
        body = {
            "name": dataset.name,
            "digest": dataset.digest,
            "schema": dataset.schema,
            "row_count": dataset.row_count,
            "source": dataset.source,
            "context": dataset.context,
            "artifact_digest": dataset.artifact_digest,
        }
        self._transport.request("POST", f"/runs/{_segment(run_id)}/inputs", json=body)

    def log_artifact(self, run_id: str, path: str, data: bytes) -> RunArtifact:
        url = f"/runs/{_segment(run_id)}/artifacts/{quote(check_artifact_path(path), safe='/')}"
        response = self._transport.request(
            "PUT",
            url,
            content=bytes(data),
            headers={"Content-Type": "application/octet-stream"},
        )
        return _artifact(response.json())

    def get_artifact(self, run_id: str, path: str) -> bytes:
        url = f"/runs/{_segment(run_id)}/artifacts/{quote(check_artifact_path(path), safe='/')}"
        response = self._transport.request("GET", url)
        data = response.content
        expected = response.headers.get(DIGEST_HEADER)
        actual = hashlib.sha256(data).hexdigest()
        if expected is not None and expected != actual:
            raise IntegrityError(
                f"Artifact {path!r} of run {run_id!r} arrived corrupt: it hashes to {actual}, "
                f"the server sent {expected}. Retry the download.",
                run_id=run_id,
                path=path,
            )
        return data

    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
    ) -> list[Run]:
        body = {
            "experiment_ids": None if experiment_ids is None else list(experiment_ids),
            "filter": filter_string,
            "order_by": None if order_by is None else list(order_by),
            "max_results": max_results,
        }
        response = self._transport.json("POST", "/runs/search", json=body)
        return [_run(item) for item in response["runs"]]
