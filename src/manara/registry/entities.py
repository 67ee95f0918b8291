"""Domain objects of the model registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Open Inference Protocol v2 tensor data types.
DATATYPES: frozenset[str] = frozenset(
    {
        "BOOL",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "FP16",
        "FP32",
        "FP64",
        "BYTES",
    }
)


@dataclass(frozen=True)
class TensorSpec:
    """One named input or output: its Open Inference Protocol datatype and shape.

    A model's tabular inputs are one tensor per column, shaped ``[-1]`` or
    ``[-1, 1]``; ``-1`` stands for any size in that dimension.
    """

    name: str
    datatype: str
    shape: tuple[int, ...] = (-1,)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSpec:
        return cls(name=data["name"], datatype=data["datatype"], shape=tuple(data["shape"]))


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [spec.to_dict() for spec in self.inputs],
            "outputs": [spec.to_dict() for spec in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        return cls(
            inputs=tuple(TensorSpec.from_dict(item) for item in data["inputs"]),
            outputs=tuple(TensorSpec.from_dict(item) for item in data["outputs"]),
        )


@dataclass(frozen=True)
class RegisteredModel:
    id: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime
    aliases: dict[str, int] = field(default_factory=dict)
    """Alias name to version number."""
    latest_version: int | None = None
    project: str = "default"


@dataclass(frozen=True)
class ModelVersion:
    id: str
    model_name: str
    version: int
    run_id: str | None
    flavor: str
    """``sklearn``, ``xgboost`` or ``lightgbm``."""
    artifacts: dict[str, str]
    """Role (``model``, ``onnx``, ``manifest``) to artifact digest."""
    signature: Signature
    onnx_verified: bool
    """True when an ONNX export exists and its outputs matched the native model's."""
    metadata: dict[str, Any]
    description: str
    created_at: datetime
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.model_name}:{self.version}"
