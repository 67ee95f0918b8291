"""Loaded model versions: ONNX Runtime when a verified export exists, else the native flavor.

Everything that can be prepared once is prepared in the constructor (the
ONNX Runtime session, the input casts, the signature checks), because
``predict`` sits on the inference server's hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import orjson
import pandas as pd

from manara.errors import IntegrityError
from manara.registry.entities import ModelVersion, Signature
from manara.registry.flavors.base import NativePredictor, flavor_by_name
from manara.registry.onnx import ONNX_FILE, OnnxRunner
from manara.registry.pickle_guard import reject_pickle
from manara.registry.signature import (
    LABEL_OUTPUT,
    PREDICTION_OUTPUT,
    PROBABILITIES_OUTPUT,
    SignatureValidator,
    inputs_to_frame,
)

ONNX_RUNTIME = "onnxruntime"
NATIVE_RUNTIME = "native"


# Below this many rows a native prediction runs on one OpenMP/BLAS thread: spreading a
# small batch over threads costs more than it saves, several times more on a loaded host.
SINGLE_THREAD_ROWS = 1024


class _NativeRunner:
    def __init__(self, predictor: NativePredictor, signature: Signature) -> None:
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

        self._predictor = predictor
        self._signature = signature
        self._threadpools = ThreadpoolController()
        label = next((s for s in signature.outputs if s.name == LABEL_OUTPUT), None)
        self._bytes_labels = label is not None and label.datatype == "BYTES"

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        frame = inputs_to_frame(self._signature, inputs)
        if len(frame) >= SINGLE_THREAD_ROWS:
            return self._predict(frame)
        with self._threadpools.limit(limits=1):
            return self._predict(frame)

    def _predict(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        if self._predictor.classes is None:
            predictions = np.asarray(self._predictor.predict(frame), dtype=np.float64)
            return {PREDICTION_OUTPUT: predictions.reshape(-1)}
        labels, probabilities = self._predictor.predict_with_proba(frame)
        labels = labels.reshape(-1)
        if self._bytes_labels:
            labels = labels.astype(str).astype(object)
        return {LABEL_OUTPUT: labels, PROBABILITIES_OUTPUT: probabilities}


class RegistryLoadedModel:
    """A model version ready to predict; implements ``manara.registry.api.LoadedModel``."""

    def __init__(self, version: ModelVersion, runtime: str, runner: Any) -> None:
        self.version = version
        self.runtime = runtime
        self._runner = runner
        self._validator = SignatureValidator(version.signature)

    @property
    def signature(self) -> Signature:
        return self.version.signature

    def predict(self, inputs: Mapping[str, np.ndarray] | pd.DataFrame) -> dict[str, np.ndarray]:
        if isinstance(inputs, pd.DataFrame):
            return self.predict_frame(inputs)
        self._validator.validate(inputs)
        outputs: dict[str, np.ndarray] = self._runner.run(inputs)
        return outputs

    def predict_frame(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        return self.predict(self._validator.frame_to_inputs(frame))

    def __repr__(self) -> str:
        return f"RegistryLoadedModel({self.version.ref}, runtime={self.runtime!r})"


def build_loaded_model(
    version: ModelVersion, manifest: Mapping[str, Any], files: Mapping[str, bytes]
) -> RegistryLoadedModel:
    """Build the runtime for ``version`` from its verified files (file name to content)."""
    if version.onnx_verified and ONNX_FILE in files:
        runner: Any = OnnxRunner(files[ONNX_FILE], version.signature)
        return RegistryLoadedModel(version, ONNX_RUNTIME, runner)
    flavor = flavor_by_name(str(manifest["flavor"]))
    native = _NativeRunner(flavor.load(files), version.signature)
    return RegistryLoadedModel(version, NATIVE_RUNTIME, native)


ArtifactFetcher = Callable[[str, str], bytes]
"""Reads a version's artifact given (role, SHA-256 digest); must check the digest."""


def read_version_files(
    version: ModelVersion, fetch: ArtifactFetcher
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Read the manifest and the files the version's runtime needs (file name to content).

    Only the ONNX file is read for a verified ONNX version, and only the
    flavor's files otherwise. Every file's digest in the manifest must
    equal the digest recorded on the version.
    """
    manifest: dict[str, Any] = orjson.loads(fetch("manifest", version.artifacts["manifest"]))
    use_onnx = version.onnx_verified and "onnx" in version.artifacts
    files: dict[str, bytes] = {}
    for role, entry in manifest["files"].items():
        if (role == "onnx") != use_onnx:
            continue
        digest = version.artifacts.get(role)
        if digest is None or digest != entry["digest"]:
            raise IntegrityError(
                f"The manifest of {version.ref} lists {entry['path']} with digest "
                f"{entry['digest']}, but the version records {digest}. It was not loaded.",
                ref=version.ref,
            )
        data = fetch(role, digest)
        reject_pickle(data, entry["path"])
        files[entry["path"]] = data
    return manifest, files


def load_version(version: ModelVersion, fetch: ArtifactFetcher) -> RegistryLoadedModel:
    manifest, files = read_version_files(version, fetch)
    return build_loaded_model(version, manifest, files)
