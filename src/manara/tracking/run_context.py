"""``start_run``: a run as a context manager, for training scripts and notebooks.

::

    with client.start_run(experiment="churn", run_name="xgb-depth-5") as run:
        run.log_params({"max_depth": 5})
        run.log_metric("auc", 0.91, step=10)

The experiment is created when missing. On leaving the block the run ends
as FINISHED, as FAILED when an exception escaped (it is re-raised), or as
KILLED on ``KeyboardInterrupt``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import pandas as pd
from numpy.typing import ArrayLike

from manara.errors import ConflictError, InvalidInputError, ManaraError, NotFoundError
from manara.tracking.api import TrackingAPI
from manara.tracking.datasets import dataset_input
from manara.tracking.entities import (
    DatasetInput,
    Experiment,
    Metric,
    Run,
    RunArtifact,
    RunStatus,
)

logger = logging.getLogger(__name__)


class HasTracking(Protocol):
    @property
    def tracking(self) -> TrackingAPI: ...


def get_or_create_experiment(tracking: TrackingAPI, name: str) -> Experiment:
    try:
        return tracking.get_experiment_by_name(name)
    except NotFoundError:
        pass
    try:
        return tracking.create_experiment(name)
    except ConflictError:
        # Another process created it after the lookup.
        return tracking.get_experiment_by_name(name)


class ActiveRun:
    """A started run; log to it, then leave the ``with`` block or call ``end``."""

    def __init__(self, tracking: TrackingAPI, run: Run) -> None:
        self._tracking = tracking
        self._run_id = run.id
        self._ended = False

    @property
    def id(self) -> str:
        return self._run_id

    @property
    def run(self) -> Run:
        """The run as stored now, with its params, tags, latest metrics and artifacts."""
        return self._tracking.get_run(self._run_id)

    def log_param(self, key: str, value: Any) -> None:
        self._tracking.log_params(self._run_id, {key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._tracking.log_params(self._run_id, params)

    def log_metric(
        self, key: str, value: float, step: int = 0, timestamp: datetime | None = None
    ) -> None:
        self._tracking.log_metrics(self._run_id, [Metric(key, value, step, timestamp)])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        batch = [Metric(key, value, step) for key, value in metrics.items()]
        self._tracking.log_metrics(self._run_id, batch)

    def log_metric_series(
        self, key: str, values: ArrayLike, steps: ArrayLike | None = None
    ) -> None:
        """Log many values of one metric at once, such as a training history.

        Steps default to 0, 1, 2 and so on.
        """
        self._tracking.log_metric_series(self._run_id, key, values, steps)

    def set_tag(self, key: str, value: str) -> None:
        self._tracking.set_tags(self._run_id, {key: value})

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._tracking.set_tags(self._run_id, tags)

    def log_input(
        self,
        frame: pd.DataFrame,
        name: str,
        source: str = "",
        context: str = "training",
        store_copy: bool = False,
    ) -> DatasetInput:
        """Record a data set the run read; ``store_copy`` also keeps it as a Parquet artifact."""
        artifact_digest = None
        if store_copy:
            buffer = io.BytesIO()
            frame.to_parquet(buffer, index=False)
            stored = self.log_artifact(buffer.getvalue(), f"inputs/{name}.parquet")
            artifact_digest = stored.digest
        dataset = dataset_input(frame, name, source, context, artifact_digest)
        self._tracking.log_input(self._run_id, dataset)
        return dataset

    def log_artifact(
        self, source: str | Path | bytes, artifact_path: str | None = None
    ) -> RunArtifact:
        """Store bytes at ``artifact_path``, or a local file or folder under it.

        A file keeps its name inside ``artifact_path`` (or at the top when it
        is None); a folder's files keep their relative paths. For a folder the
        last stored artifact is returned.
        """
        if isinstance(source, bytes | bytearray):
            if not artifact_path:
                raise InvalidInputError(
                    "Missing artifact_path: pass the path to store bytes at, such as "
                    "'reports/summary.json'."
                )
            return self._tracking.log_artifact(self._run_id, artifact_path, bytes(source))
        local = Path(source)
        prefix = f"{artifact_path.rstrip('/')}/" if artifact_path else ""
        if local.is_file():
            return self._tracking.log_artifact(
                self._run_id, prefix + local.name, local.read_bytes()
            )
        if not local.is_dir():
            raise NotFoundError(f"Local path {str(local)!r} not found; nothing was logged.")
        files = sorted(path for path in local.rglob("*") if path.is_file())
        if not files:
            raise InvalidInputError(f"Folder {str(local)!r} contains no files to log.")
        stored = [
            self._tracking.log_artifact(
                self._run_id, prefix + path.relative_to(local).as_posix(), path.read_bytes()
            )
            for path in files
        ]
        return stored[-1]

    def end(self, status: RunStatus = "FINISHED") -> Run:
        run = self._tracking.set_run_status(self._run_id, status)
        self._ended = True
        return run

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._ended:
            return
        if exc_type is None:
            self.end("FINISHED")
            return
        status: RunStatus = "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED"
        try:
            self.end(status)
        except ManaraError:
            # Keep the original exception; the status update failing is secondary.
            logger.warning("could not mark run %s as %s", self._run_id, status, exc_info=True)


def start_run(
    client: HasTracking,
    experiment: str = "Default",
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> ActiveRun:
    """Start a run in the named experiment, creating the experiment when missing."""
    tracking = client.tracking
    found = get_or_create_experiment(tracking, experiment)
    run = tracking.create_run(found.id, run_name, tags)
    return ActiveRun(tracking, run)
