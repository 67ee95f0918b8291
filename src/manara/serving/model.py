"""The model a server serves, with its metadata responses built once."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from manara.registry.api import LoadedModel
from manara.serving.protocol import ModelSchema


class ServedModel:
    """One loaded model version and everything the protocol needs about it."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.name = loaded.version.model_name
        self.version = loaded.version.version
        self.version_label = str(self.version)
        self.runtime = loaded.runtime
        self.schema = ModelSchema(loaded.signature)
        self.metadata_body = orjson.dumps(self.metadata())
        self.ready_body = orjson.dumps(
            {"name": self.name, "version": self.version_label, "ready": True}
        )

    @property
    def platform(self) -> str:
        """``onnxruntime_onnx`` as Triton names it, else the native flavor (``sklearn`` ...)."""
        if self.runtime == "onnxruntime":
            return "onnxruntime_onnx"
        return self.loaded.version.flavor

    def metadata(self) -> dict[str, Any]:
        signature = self.loaded.signature
        return {
            "name": self.name,
            "versions": [self.version_label],
            "platform": self.platform,
            "inputs": [spec.to_dict() for spec in signature.inputs],
            "outputs": [spec.to_dict() for spec in signature.outputs],
        }

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.loaded.predict(inputs)
