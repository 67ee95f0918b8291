"""The registry interface shared by the local service and the REST client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import pandas as pd

from manara.registry.entities import ModelVersion, RegisteredModel, Signature


class LoadedModel(Protocol):
    """A model version ready to predict, on ONNX Runtime or natively."""

    version: ModelVersion
    runtime: str
    """``onnxruntime`` or ``native``."""

    @property
    def signature(self) -> Signature: ...

    def predict(self, inputs: Mapping[str, np.ndarray] | pd.DataFrame) -> dict[str, np.ndarray]:
        """Map input tensors (one 1-D array per signature input, equal lengths) to outputs.

        A DataFrame is passed to ``predict_frame``. Inputs are checked against
        the signature first, so a missing input, a wrong datatype, a wrong shape
        or an input that is neither a mapping nor a DataFrame raises
        ``SignatureError`` naming it.
        """
        ...

    def predict_frame(self, frame: pd.DataFrame) -> dict[str, np.ndarray]: ...


class RegistryAPI(Protocol):
    def create_model(self, name: str, description: str = "") -> RegisteredModel: ...

    def get_model(self, name: str) -> RegisteredModel: ...

    def list_models(self) -> list[RegisteredModel]: ...

    def log_model(
        self,
        run_id: str,
        model: Any,
        sample_input: pd.DataFrame,
        artifact_path: str = "model",
    ) -> dict[str, Any]:
        """Serialise ``model`` in a safe format into the run's artifacts.

        Returns the manifest: flavor, signature, artifact paths, and whether
        an ONNX export was made and matched the native predictions.
        """
        ...

    def create_version(
        self,
        model_name: str,
        run_id: str,
        artifact_path: str = "model",
        description: str = "",
    ) -> ModelVersion: ...

    def get_version(self, model_name: str, version: int) -> ModelVersion: ...

    def list_versions(self, model_name: str) -> list[ModelVersion]: ...

    def resolve(self, ref: str) -> ModelVersion:
        """Find the version named by ``NAME``, ``NAME@ALIAS`` or ``NAME:VERSION``."""
        ...

    def set_alias(self, model_name: str, alias: str, version: int) -> ModelVersion: ...

    def delete_alias(self, model_name: str, alias: str) -> None: ...
