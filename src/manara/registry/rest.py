"""``RegistryAPI`` over HTTP: the SDK's remote mode, talking to ``manara.api.registry``.

``log_model`` serialises the model here, with the same flavor code as the
local service, and uploads the files through the tracking artifact route
(``PUT /api/v1/runs/{id}/artifacts/{path}``). The server checks them again
when a version is created. ``load`` downloads a version's files, checks
each SHA-256 against the digest the server recorded, and predicts locally.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pandas as pd

from manara.errors import IntegrityError
from manara.registry.entities import ModelVersion, RegisteredModel, Signature
from manara.registry.loading import RegistryLoadedModel, load_version
from manara.registry.packaging import build_package
from manara.registry.service import (
    check_alias,
    check_model_name,
    parse_ref,
    upload_package,
)
from manara.rest import RestTransport
from manara.tracking.rest import RestTracking


def _segment(value: str) -> str:
    return quote(value, safe="")


def _model(body: dict[str, Any]) -> RegisteredModel:
    return RegisteredModel(
        id=body["id"],
        name=body["name"],
        description=body["description"],
        created_at=datetime.fromisoformat(body["created_at"]),
        updated_at=datetime.fromisoformat(body["updated_at"]),
        aliases={str(k): int(v) for k, v in body["aliases"].items()},
        latest_version=body.get("latest_version"),
    )


def _version(body: dict[str, Any]) -> ModelVersion:
    return ModelVersion(
        id=body["id"],
        model_name=body["model_name"],
        version=int(body["version"]),
        run_id=body.get("run_id"),
        flavor=body["flavor"],
        artifacts=dict(body["artifacts"]),
        signature=Signature.from_dict(body["signature"]),
        onnx_verified=bool(body["onnx_verified"]),
        metadata=dict(body["metadata"]),
        description=body["description"],
        created_at=datetime.fromisoformat(body["created_at"]),
        aliases=tuple(body["aliases"]),
    )


class RestRegistry:
    """Implements ``manara.registry.api.RegistryAPI`` (and ``load``) against a Manara server."""

    def __init__(self, transport: RestTransport) -> None:
        self._transport = transport
        self._tracking = RestTracking(transport)

    def create_model(self, name: str, description: str = "") -> RegisteredModel:
        body = {"name": check_model_name(name), "description": description}
        return _model(self._transport.json("POST", "/models", json=body))

    def get_model(self, name: str) -> RegisteredModel:
        return _model(self._transport.json("GET", f"/models/{_segment(check_model_name(name))}"))

    def list_models(self) -> list[RegisteredModel]:
        return [_model(item) for item in self._transport.json("GET", "/models")]

    def log_model(
        self,
        run_id: str,
        model: Any,
        sample_input: pd.DataFrame,
        artifact_path: str = "model",
    ) -> dict[str, Any]:
        package = build_package(model, sample_input)
        upload_package(self._tracking, run_id, artifact_path.strip("/"), package)
        return package.manifest

    def create_version(
        self,
        model_name: str,
        run_id: str,
        artifact_path: str = "model",
        description: str = "",
    ) -> ModelVersion:
        path = f"/models/{_segment(check_model_name(model_name))}/versions"
        body = {"run_id": run_id, "artifact_path": artifact_path, "description": description}
        return _version(self._transport.json("POST", path, json=body))

    def get_version(self, model_name: str, version: int) -> ModelVersion:
        path = f"/models/{_segment(check_model_name(model_name))}/versions/{int(version)}"
        return _version(self._transport.json("GET", path))

    def list_versions(self, model_name: str) -> list[ModelVersion]:
        path = f"/models/{_segment(check_model_name(model_name))}/versions"
        return [_version(item) for item in self._transport.json("GET", path)]

    def resolve(self, ref: str) -> ModelVersion:
        parse_ref(ref)
        return _version(self._transport.json("GET", "/resolve", params={"ref": ref}))

    def set_alias(self, model_name: str, alias: str, version: int) -> ModelVersion:
        path = f"/models/{_segment(check_model_name(model_name))}/aliases/{_segment(alias)}"
        check_alias(alias)
        return _version(self._transport.json("PUT", path, json={"version": int(version)}))

    def delete_alias(self, model_name: str, alias: str) -> None:
        path = f"/models/{_segment(check_model_name(model_name))}/aliases/{_segment(alias)}"
        self._transport.request("DELETE", path)

    def load(self, ref: str) -> RegistryLoadedModel:
        """Download the version named by ``ref`` and load it in this process."""
        version = self.resolve(ref)

        def fetch(role: str, digest: str) -> bytes:
            path = (
                f"/models/{_segment(version.model_name)}/versions/{version.version}"
                f"/artifacts/{_segment(role)}"
            )
            data = self._transport.request("GET", path).content
            actual = hashlib.sha256(data).hexdigest()
            if actual != digest:
                raise IntegrityError(
                    f"Artifact {role!r} of {version.ref} arrived with digest {actual}, but the "
                    f"registry recorded {digest}. It was not loaded; retry, and if it "
                    "persists, register the model again.",
                    ref=version.ref,
                    role=role,
                )
            return data

        return load_version(version, fetch)
