"""The tracking interface shared by the local service and the REST client.

``manara.tracking.service.TrackingService`` implements it on the stores;
``manara.tracking.rest.RestTracking`` implements it over HTTP. The SDK is
written against this protocol, so the same SDK tests run in both modes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from numpy.typing import ArrayLike

from manara.tracking.entities import (
    DatasetInput,
    Experiment,
    Metric,
    Run,
    RunArtifact,
    RunStatus,
)


class TrackingAPI(Protocol):
    def create_experiment(
        self, name: str, description: str = "", tags: Mapping[str, str] | None = None
    ) -> Experiment: ...

    def get_experiment(self, experiment_id: str) -> Experiment: ...

    def get_experiment_by_name(self, name: str) -> Experiment: ...

    def list_experiments(self) -> list[Experiment]: ...

    def create_run(
        self, experiment_id: str, name: str | None = None, tags: Mapping[str, str] | None = None
    ) -> Run: ...

    def get_run(self, run_id: str) -> Run: ...

    def set_run_status(self, run_id: str, status: RunStatus) -> Run: ...

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None: ...

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None: ...

    def log_metrics(self, run_id: str, metrics: Sequence[Metric]) -> None: ...

    def log_metric_series(
        self, run_id: str, key: str, values: ArrayLike, steps: ArrayLike | None = None
    ) -> None: ...

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]: ...

    def log_input(self, run_id: str, dataset: DatasetInput) -> None: ...

    def log_artifact(self, run_id: str, path: str, data: bytes) -> RunArtifact: ...

    def get_artifact(self, run_id: str, path: str) -> bytes: ...

    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
    ) -> list[Run]: ...
