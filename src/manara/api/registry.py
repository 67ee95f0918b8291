"""REST routes of the model registry, thin adapters over ``RegistryService``.

Every route authenticates through ``request_context``; the service then
authorises the action. Model packages are uploaded as run artifacts through
the tracking routes; these routes register, name and serve them.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from manara.api.deps import request_context
from manara.context import Context
from manara.registry.entities import ModelVersion, RegisteredModel
from manara.registry.service import RegistryService

router = APIRouter(prefix="/api/v1", tags=["registry"])

DIGEST_HEADER = "X-Content-SHA256"
"""Response header with the hex SHA-256 of an artifact, for the client to check."""

ContextDep = Annotated[Context, Depends(request_context)]


class ModelCreate(BaseModel):
    name: str = Field(description="Unique model name: letters, digits, '_', '.' or '-'.")
    description: str = ""


class ModelOut(BaseModel):
    id: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime
    aliases: dict[str, int]
    latest_version: int | None

    @classmethod
    def of(cls, model: RegisteredModel) -> ModelOut:
        return cls(
            id=model.id,
            name=model.name,
            description=model.description,
            created_at=model.created_at,
            updated_at=model.updated_at,
            aliases=model.aliases,
            latest_version=model.latest_version,
        )


class VersionCreate(BaseModel):
    run_id: str = Field(description="Run whose artifacts hold the logged model.")
    artifact_path: str = Field(default="model", description="Folder of the model in the run.")
    description: str = ""


class VersionOut(BaseModel):
    id: str
    model_name: str
    version: int
    run_id: str | None
    flavor: str
    artifacts: dict[str, str] = Field(description="Role to SHA-256 digest.")
    signature: dict[str, Any]
    onnx_verified: bool
    metadata: dict[str, Any]
    description: str
    created_at: datetime
    aliases: list[str]

    @classmethod
    def of(cls, version: ModelVersion) -> VersionOut:
        return cls(
            id=version.id,
            model_name=version.model_name,
            version=version.version,
            run_id=version.run_id,
            flavor=version.flavor,
            artifacts=version.artifacts,
            signature=version.signature.to_dict(),
            onnx_verified=version.onnx_verified,
            metadata=version.metadata,
            description=version.description,
            created_at=version.created_at,
            aliases=list(version.aliases),
        )


class AliasSet(BaseModel):
    version: int = Field(description="Version number the alias points to.")


@router.post("/models", status_code=201)
def create_model(body: ModelCreate, ctx: ContextDep) -> ModelOut:
    return ModelOut.of(RegistryService(ctx).create_model(body.name, body.description))


@router.get("/models")
def list_models(ctx: ContextDep) -> list[ModelOut]:
    return [ModelOut.of(model) for model in RegistryService(ctx).list_models()]


@router.get("/models/{name}")
def get_model(name: str, ctx: ContextDep) -> ModelOut:
    return ModelOut.of(RegistryService(ctx).get_model(name))


@router.post("/models/{name}/versions", status_code=201)
async def create_version(name: str, body: VersionCreate, ctx: ContextDep) -> VersionOut:
    """Register the model logged in a run as the next version; checks every file first."""
    service = RegistryService(ctx)
    version = await run_in_threadpool(
        service.create_version, name, body.run_id, body.artifact_path, body.description
    )
    return VersionOut.of(version)


@router.get("/models/{name}/versions")
def list_versions(name: str, ctx: ContextDep) -> list[VersionOut]:
    return [VersionOut.of(version) for version in RegistryService(ctx).list_versions(name)]


@router.get("/models/{name}/versions/{version}")
def get_version(name: str, version: int, ctx: ContextDep) -> VersionOut:
    return VersionOut.of(RegistryService(ctx).get_version(name, version))


@router.get(
    "/models/{name}/versions/{version}/artifacts/{role}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_version_artifact(name: str, version: int, role: str, ctx: ContextDep) -> Response:
    """Download one artifact of a version by role (``manifest``, ``model``, ``onnx`` ...)."""
    data = RegistryService(ctx).read_artifact(name, version, role)
    digest = hashlib.sha256(data).hexdigest()
    return Response(
        content=data, media_type="application/octet-stream", headers={DIGEST_HEADER: digest}
    )


@router.put("/models/{name}/aliases/{alias}")
def set_alias(name: str, alias: str, body: AliasSet, ctx: ContextDep) -> VersionOut:
    return VersionOut.of(RegistryService(ctx).set_alias(name, alias, body.version))


@router.delete("/models/{name}/aliases/{alias}", status_code=204)
def delete_alias(name: str, alias: str, ctx: ContextDep) -> None:
    RegistryService(ctx).delete_alias(name, alias)


@router.get("/resolve")
def resolve(ref: str, ctx: ContextDep) -> VersionOut:
    """Find the version named by ``NAME``, ``NAME@ALIAS`` or ``NAME:VERSION``."""
    return VersionOut.of(RegistryService(ctx).resolve(ref))
