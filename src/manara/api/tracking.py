"""REST routes of experiment tracking, thin adapters over ``TrackingService``.

Every route authenticates through ``request_context``; the service then
authorises the action. Artifact bodies travel as raw bytes
(``application/octet-stream``), everything else as JSON.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt
from starlette.concurrency import run_in_threadpool

from manara.api.deps import request_context
from manara.context import Context
from manara.tracking.entities import (
    DatasetInput,
    Experiment,
    Metric,
    Run,
    RunArtifact,
    RunStatus,
)
from manara.tracking.service import TrackingService

router = APIRouter(prefix="/api/v1", tags=["tracking"])

DIGEST_HEADER = "X-Content-SHA256"
"""Response header with the hex SHA-256 of an artifact, for the client to check."""

ContextDep = Annotated[Context, Depends(request_context)]


class ExperimentCreate(BaseModel):
    name: str = Field(description="Unique experiment name.")
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)


class ExperimentOut(BaseModel):
    id: str
    name: str
    description: str
    tags: dict[str, str]
    created_at: datetime

    @classmethod
    def of(cls, experiment: Experiment) -> ExperimentOut:
        return cls(**vars(experiment))


class RunCreate(BaseModel):
    experiment_id: str
    name: str | None = Field(default=None, description="Run name; generated when omitted.")
    tags: dict[str, str] = Field(default_factory=dict)


class RunStatusUpdate(BaseModel):
    status: RunStatus


class DatasetInputModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str
    digest: str = Field(description="Hex SHA-256 of the data set's canonical content.")
    data_schema: dict[str, str] = Field(alias="schema", description="Column name to dtype.")
    row_count: int
    source: str
    context: str = "training"
    artifact_digest: str | None = None

    @classmethod
    def of(cls, dataset: DatasetInput) -> DatasetInputModel:
        values = vars(dataset) | {"data_schema": dataset.schema}
        del values["schema"]
        return cls(**values)

    def to_entity(self) -> DatasetInput:
        return DatasetInput(
            name=self.name,
            digest=self.digest,
            schema=self.data_schema,
            row_count=self.row_count,
            source=self.source,
            context=self.context,
            artifact_digest=self.artifact_digest,
        )


class RunArtifactOut(BaseModel):
    path: str
    digest: str = Field(description="Hex SHA-256 of the content.")
    size: int = Field(description="Bytes.")

    @classmethod
    def of(cls, artifact: RunArtifact) -> RunArtifactOut:
        return cls(**vars(artifact))


class RunOut(BaseModel):
    id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: datetime
    end_time: datetime | None
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, float] = Field(description="Latest value of each metric.")
    inputs: list[DatasetInputModel]
    artifacts: list[RunArtifactOut]

    @classmethod
    def of(cls, run: Run) -> RunOut:
        values: dict[str, Any] = vars(run) | {
            "inputs": [DatasetInputModel.of(item) for item in run.inputs],
            "artifacts": [RunArtifactOut.of(item) for item in run.artifacts],
        }
        return cls(**values)


class ParamsIn(BaseModel):
    params: dict[str, str] = Field(description="Values are stored as strings.")


class TagsIn(BaseModel):
    tags: dict[str, str]


class MetricIn(BaseModel):
    key: str
    value: StrictFloat | StrictInt
    step: StrictInt = 0
    timestamp: datetime | None = Field(
        default=None, description="Timezone-aware time of measurement; the server's now if null."
    )


class MetricsIn(BaseModel):
    metrics: list[MetricIn]


class MetricOut(BaseModel):
    key: str
    value: float
    step: int
    timestamp: datetime


class SearchRequest(BaseModel):
    experiment_ids: list[str] | None = Field(
        default=None, description="Experiments to search; all when null."
    )
    filter: str | None = Field(
        default=None, examples=["metrics.auc > 0.8 and params.max_depth = '5'"]
    )
    order_by: list[str] | None = Field(default=None, examples=[["metrics.auc DESC"]])
    max_results: int = 1000


class SearchResponse(BaseModel):
    runs: list[RunOut]


_OCTET_STREAM_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post("/experiments", status_code=201)
def create_experiment(body: ExperimentCreate, ctx: ContextDep) -> ExperimentOut:
    service = TrackingService(ctx)
    return ExperimentOut.of(service.create_experiment(body.name, body.description, body.tags))


@router.get("/experiments")
def list_experiments(ctx: ContextDep) -> list[ExperimentOut]:
    return [ExperimentOut.of(item) for item in TrackingService(ctx).list_experiments()]


@router.get("/experiments/by-name/{name}")
def get_experiment_by_name(name: str, ctx: ContextDep) -> ExperimentOut:
    return ExperimentOut.of(TrackingService(ctx).get_experiment_by_name(name))


@router.get("/experiments/{experiment_id}")
def get_experiment(experiment_id: str, ctx: ContextDep) -> ExperimentOut:
    return ExperimentOut.of(TrackingService(ctx).get_experiment(experiment_id))


@router.post("/runs", status_code=201)
def create_run(body: RunCreate, ctx: ContextDep) -> RunOut:
    run = TrackingService(ctx).create_run(body.experiment_id, body.name, body.tags)
    return RunOut.of(run)


@router.get("/runs/{run_id}")
def get_run(run_id: str, ctx: ContextDep) -> RunOut:
    return RunOut.of(TrackingService(ctx).get_run(run_id))


@router.patch("/runs/{run_id}")
def set_run_status(run_id: str, body: RunStatusUpdate, ctx: ContextDep) -> RunOut:
    return RunOut.of(TrackingService(ctx).set_run_status(run_id, body.status))


@router.post("/runs/{run_id}/params", status_code=204)
def log_params(run_id: str, body: ParamsIn, ctx: ContextDep) -> None:
    TrackingService(ctx).log_params(run_id, body.params)


@router.post("/runs/{run_id}/tags", status_code=204)
def set_tags(run_id: str, body: TagsIn, ctx: ContextDep) -> None:
    TrackingService(ctx).set_tags(run_id, body.tags)


@router.post("/runs/{run_id}/metrics", status_code=204)
def log_metrics(run_id: str, body: MetricsIn, ctx: ContextDep) -> None:
    metrics = [Metric(m.key, m.value, m.step, m.timestamp) for m in body.metrics]
    TrackingService(ctx).log_metrics(run_id, metrics)


@router.get("/runs/{run_id}/metrics/{key:path}")
def get_metric_history(run_id: str, key: str, ctx: ContextDep) -> list[MetricOut]:
    history = TrackingService(ctx).get_metric_history(run_id, key)
    return [MetricOut(**metric._asdict()) for metric in history]


@router.post("/runs/{run_id}/inputs", status_code=204)
def log_input(run_id: str, body: DatasetInputModel, ctx: ContextDep) -> None:
    TrackingService(ctx).log_input(run_id, body.to_entity())


@router.put("/runs/{run_id}/artifacts/{path:path}", openapi_extra=_OCTET_STREAM_BODY)
async def put_artifact(run_id: str, path: str, request: Request, ctx: ContextDep) -> RunArtifactOut:
    """Store the raw request body as the run's artifact at ``path``."""
    data = await request.body()
    service = TrackingService(ctx)
    artifact = await run_in_threadpool(service.log_artifact, run_id, path, data)
    return RunArtifactOut.of(artifact)


@router.get(
    "/runs/{run_id}/artifacts/{path:path}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_artifact(run_id: str, path: str, ctx: ContextDep) -> Response:
    data = TrackingService(ctx).get_artifact(run_id, path)
    digest = hashlib.sha256(data).hexdigest()
    return Response(
        content=data, media_type="application/octet-stream", headers={DIGEST_HEADER: digest}
    )


@router.post("/runs/search")
def search_runs(body: SearchRequest, ctx: ContextDep) -> SearchResponse:
    runs = TrackingService(ctx).search_runs(
        body.experiment_ids, body.filter, body.order_by, body.max_results
    )
    return SearchResponse(runs=[RunOut.of(run) for run in runs])
