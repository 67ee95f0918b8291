"""The tracking service: experiments and runs on the workspace's stores.

Every method queries the policy decision point first (``experiment.create``,
``experiment.read``, ``run.create``, ``run.read``, ``run.update``,
``artifact.write``, ``artifact.read``), then checks its input, then writes
in one transaction. The REST API and the local SDK both call this class.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, get_args

from numpy.typing import ArrayLike

from manara.context import Context
from manara.errors import ConflictError, InvalidInputError, NotFoundError
from manara.ids import new_id
from manara.security.envelope import ArtifactContext
from manara.security.policy import DEFAULT_CLASSIFICATION, check_access
from manara.stores.metadata.access import (
    experiment_access,
    experiment_not_found,
    experiments_access,
    run_access,
    run_not_found,
)
from manara.stores.metadata.placement import run_placement
from manara.stores.metadata.tracking import TrackingRepository
from manara.tracking.entities import (
    TERMINAL_STATUSES,
    DatasetInput,
    Experiment,
    Metric,
    Run,
    RunArtifact,
    RunStatus,
)
from manara.tracking.search import parse_filter, parse_order_by
from manara.tracking.validation import (
    check_artifact_path,
    check_dataset,
    check_key,
    check_metrics,
    check_name,
    check_series,
    check_tags,
    stringify_params,
)

logger = logging.getLogger(__name__)

MAX_SEARCH_RESULTS = 50_000
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)


def check_status(status: object) -> RunStatus:
    if status not in RUN_STATUSES:
        raise InvalidInputError(
            f"Invalid run status {status!r}: use one of {', '.join(RUN_STATUSES)}."
        )
    return status  # type: ignore[return-value]


def check_max_results(max_results: object) -> int:
    if (
        isinstance(max_results, bool)
        or not isinstance(max_results, int)
        or not 1 <= max_results <= MAX_SEARCH_RESULTS
    ):
        raise InvalidInputError(
            f"Invalid max_results {max_results!r}: use an integer from 1 to {MAX_SEARCH_RESULTS}."
        )
    return max_results


def run_artifact_context(ctx: Context, run_id: str, path: str) -> ArtifactContext:
    """Return the encryption context of a run artifact, placed like the run's experiment."""
    placement = run_placement(ctx.metadata, run_id)
    return ctx.artifacts.context(placement.project, f"{run_id}/{path}", placement.classification)


class TrackingService:
    """Implements ``manara.tracking.api.TrackingAPI`` for one Context."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._repository = TrackingRepository(ctx.metadata)

    # Experiments

    def create_experiment(
        self,
        name: str,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        *,
        project: str | None = None,
        classification: str = DEFAULT_CLASSIFICATION,
        allowed_regions: Iterable[str] | None = None,
    ) -> Experiment:
        """Create an experiment in ``project`` (default: the principal's project).

        Its runs and their artifacts inherit its classification and allowed regions.
        """
        access = check_access(
            project or self.ctx.principal.project, classification, allowed_regions
        )
        self.ctx.authorize("experiment.create", "experiment", access=access)
        if not isinstance(description, str):
            raise InvalidInputError(f"Invalid description {description!r}: use a string.")
        experiment = Experiment(
            id=new_id(),
            name=check_name(name, "experiment"),
            description=description,
            tags=check_tags(tags),
            created_at=self.ctx.clock.now(),
            project=access.project,
        )
        self._repository.create_experiment(experiment, self.ctx.principal.id, access)
        logger.info(
            "experiment created id=%s name=%s project=%s",
            experiment.id,
            experiment.name,
            experiment.project,
        )
        return experiment

    def get_experiment(self, experiment_id: str) -> Experiment:
        self._authorize_experiment("experiment.read", experiment_id)
        return self._repository.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str, project: str | None = None) -> Experiment:
        """Find an experiment by name in ``project`` (default: the principal's project)."""
        project = project or self.ctx.principal.project
        found = self._repository.get_experiment_by_name(name, project)
        hidden = NotFoundError(f"Experiment named {name!r} not found. Create it first.", name=name)
        self._authorize_experiment("experiment.read", found.id, not_found=hidden)
        return found

    def list_experiments(self) -> list[Experiment]:
        """List the experiments the principal may read, in every project it belongs to."""
        readable = self._readable_experiments()
        return [
            item
            for item in self._repository.list_experiments(self._projects())
            if item.id in readable
        ]

    def _projects(self) -> set[str]:
        principal = self.ctx.principal
        return {principal.project, *principal.memberships}

    def _readable_experiments(self, action: str = "experiment.read") -> set[str]:
        """Ids of the experiments on which the principal may perform ``action``.

        ``run.read`` checks whether it may read the runs of each experiment:
        runs carry their experiment's attributes.
        """
        found = experiments_access(self.ctx.metadata, self._projects())
        resource_type = action.partition(".")[0]
        return {
            experiment_id
            for experiment_id, access in found.items()
            if self.ctx.permits(action, resource_type, experiment_id, access)
        }

    def _authorize_experiment(
        self,
        action: str,
        experiment_id: str,
        resource_id: str | None = None,
        not_found: NotFoundError | None = None,
    ) -> None:
        """Authorise ``action`` on an experiment, or on a run being created in it."""
        access = experiment_access(self.ctx.metadata, experiment_id)
        self.ctx.authorize(
            action,
            action.partition(".")[0],
            experiment_id if resource_id is None else resource_id,
            access=access,
            not_found=not_found or experiment_not_found(experiment_id),
        )

    def _authorize_run(self, action: str, run_id: str, resource_id: str | None = None) -> None:
        """Authorise ``action`` on a run, or on an artifact of it, with the experiment's attributes."""
        access = run_access(self.ctx.metadata, run_id)
        self.ctx.authorize(
            action,
            action.partition(".")[0],
            run_id if resource_id is None else resource_id,
            access=access,
            not_found=run_not_found(run_id),
        )

    # Runs

    def create_run(
        self, experiment_id: str, name: str | None = None, tags: Mapping[str, str] | None = None
    ) -> Run:
        self._authorize_experiment("run.create", experiment_id, "")
        run_id = new_id()
        run = Run(
            id=run_id,
            experiment_id=experiment_id,
            name=f"run-{run_id[:8]}" if name is None else check_name(name, "run"),
            status="RUNNING",
            start_time=self.ctx.clock.now(),
            end_time=None,
            tags=check_tags(tags),
        )
        self._repository.create_run(run, self.ctx.principal.id)
        logger.info("run created id=%s experiment=%s", run.id, experiment_id)
        return run

    def get_run(self, run_id: str) -> Run:
        self._authorize_run("run.read", run_id)
        return self._repository.get_run(run_id)

    def set_run_status(self, run_id: str, status: RunStatus) -> Run:
        self._authorize_run("run.update", run_id)
        self._repository.set_run_status(run_id, check_status(status), self.ctx.clock.now())
        if status in TERMINAL_STATUSES:
            logger.info("run ended id=%s status=%s", run_id, status)
        return self._repository.get_run(run_id)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self._authorize_run("run.update", run_id)
        self._repository.log_params(run_id, stringify_params(params))

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        self._authorize_run("run.update", run_id)
        self._repository.set_tags(run_id, check_tags(tags))

    def log_metrics(self, run_id: str, metrics: Sequence[Metric]) -> None:
        self._authorize_run("run.update", run_id)
        batch = check_metrics(metrics, self.ctx.clock.now())
        self._repository.log_metrics(run_id, batch)

    def log_metric_series(
        self, run_id: str, key: str, values: ArrayLike, steps: ArrayLike | None = None
    ) -> None:
        """Log many values of one metric from arrays, without building ``Metric`` objects.

        Steps default to 0, 1, 2 and so on; every value gets the current time.
        """
        self._authorize_run("run.update", run_id)
        batch = check_series(key, values, steps, self.ctx.clock.now())
        self._repository.log_metrics(run_id, batch)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        self._authorize_run("run.read", run_id)
        return self._repository.get_metric_history(run_id, check_key(key, "metric"))

    def log_input(self, run_id: str, dataset: DatasetInput) -> None:
        self._authorize_run("run.update", run_id)
        check_dataset(dataset)
        if dataset.artifact_digest is not None and not self._has_stored_copy(
            run_id, dataset.artifact_digest
        ):
            raise NotFoundError(
                f"Stored copy {dataset.artifact_digest} of data set {dataset.name!r} not found "
                "in the artifact store. Log the copy as an artifact first.",
                digest=dataset.artifact_digest,
            )
        self._repository.log_input(run_id, dataset, new_id(), self.ctx.clock.now())

    # Artifacts

    def log_artifact(self, run_id: str, path: str, data: bytes) -> RunArtifact:
        self._authorize_run("artifact.write", run_id, f"{run_id}/{path}")
        check_artifact_path(path)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidInputError(
                f"Invalid content for artifact {path!r}: expected bytes, got {type(data).__name__}."
            )
        # Refuse before storing the blob, so a write to an ended run leaves nothing behind.
        status = self._repository.get_run_status(run_id)
        if status in TERMINAL_STATUSES:
            raise ConflictError(
                f"Cannot log artifacts to run {run_id!r}: it is {status}. Start a new run.",
                run_id=run_id,
                status=status,
            )
        ref = self.ctx.artifacts.put_bytes(
            bytes(data), run_artifact_context(self.ctx, run_id, path)
        )
        artifact = RunArtifact(path=path, digest=ref.digest, size=ref.size)
        self._repository.add_artifact(run_id, artifact, self.ctx.clock.now())
        return artifact

    def get_artifact(self, run_id: str, path: str) -> bytes:
        """Read an artifact; the vault decrypts it and checks its SHA-256 on the way out."""
        self._authorize_run("artifact.read", run_id, f"{run_id}/{path}")
        artifact = self._repository.get_artifact(run_id, check_artifact_path(path))
        return self.ctx.artifacts.get_bytes(
            artifact.digest, run_artifact_context(self.ctx, run_id, path)
        )

    def _has_stored_copy(self, run_id: str, digest: str) -> bool:
        """True when a data set copy is an artifact of the run or a loose stored object."""
        if any(item.digest == digest for item in self._repository.get_run(run_id).artifacts):
            return True
        return self.ctx.artifacts.exists(digest)

    # Search

    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
    ) -> list[Run]:
        """Search the runs of experiments the principal may read; others are left out silently."""
        if isinstance(experiment_ids, str):
            raise InvalidInputError(
                f"Invalid experiment_ids {experiment_ids!r}: pass a list of ids, not one string."
            )
        comparisons = parse_filter(filter_string)
        orders = parse_order_by(list(order_by) if order_by is not None else None)
        max_results = check_max_results(max_results)
        readable = self._readable_experiments("run.read")
        if experiment_ids is not None:
            readable &= set(experiment_ids)
        if not readable:
            return []
        return self._repository.search_runs(
            sorted(readable),
            comparisons,
            orders,
            max_results,
        )
