"""ONNX export of scikit-learn models, verified against the native model.

The exported graph has one input per signature column: text columns
(BYTES) become ``StringTensorType`` inputs and numeric and bool columns
become ``FloatTensorType`` inputs, because the ONNX-ML operators that
scikit-learn pipelines convert to (Imputer, Scaler, TreeEnsemble) compute
in float32. ``OnnxRunner`` casts each input to its graph type, so callers
send the signature's datatypes.

An export is kept only when ONNX Runtime reproduces the native model on the
registration sample: equal labels and probabilities within 1e-5 absolute
for classifiers, predictions within 1e-5 absolute plus 1e-5 relative for
regressors. Any failure is recorded as a reason, never raised, and the
version is then served natively.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from manara.registry.entities import Signature
from manara.registry.flavors.base import NativePredictor, final_step
from manara.registry.signature import (
    LABEL_OUTPUT,
    PREDICTION_OUTPUT,
    PROBABILITIES_OUTPUT,
    SignatureValidator,
)

logger = logging.getLogger(__name__)

PROBABILITY_ATOL = 1e-5
REGRESSION_TOLERANCE = 1e-5
ONNX_FILE = "model.onnx"


@dataclass(frozen=True)
class OnnxExport:
    data: bytes | None
    """Serialised ONNX model, or ``None`` when no verified export exists."""
    verified: bool
    reason: str
    """Reason the export was not kept; empty when ``verified``."""


class OnnxRunner:
    """One ONNX Runtime session with its input casts worked out once."""

    def __init__(self, data: bytes, signature: Signature) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            data, options, providers=["CPUExecutionProvider"]
        )
        graph_types = {node.name: node.type for node in self._session.get_inputs()}
        self._casts: tuple[tuple[str, Any], ...] = tuple(
            (spec.name, object if graph_types[spec.name] == "tensor(string)" else np.float32)
            for spec in signature.inputs
        )
        self._output_names = [node.name for node in self._session.get_outputs()]
        self._classifier = any(spec.name == LABEL_OUTPUT for spec in signature.outputs)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {
            name: np.asarray(inputs[name], dtype=dtype).reshape(-1, 1)
            for name, dtype in self._casts
        }
        results = self._session.run(self._output_names, feeds)
        if self._classifier:
            # ONNX Runtime computes in float32; rows are renormalised in float64 so that
            # they sum to 1 as closely as the native model's do.
            probabilities = results[1].astype(np.float64)
            probabilities /= probabilities.sum(axis=1, keepdims=True)
            return {LABEL_OUTPUT: results[0].reshape(-1), PROBABILITIES_OUTPUT: probabilities}
        return {PREDICTION_OUTPUT: results[0].reshape(-1).astype(np.float64)}


def _initial_types(signature: Signature) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    return [
        (
            spec.name,
            StringTensorType([None, 1]) if spec.datatype == "BYTES" else FloatTensorType([None, 1]),
        )
        for spec in signature.inputs
    ]


def _convert(model: Any, signature: Signature) -> bytes:
    from skl2onnx import convert_sklearn

    options = {id(final_step(model)): {"zipmap": False}} if hasattr(model, "classes_") else None
    with warnings.catch_warnings():
        # skl2onnx warns about opset choices it makes itself; those are not caller errors.
        warnings.simplefilter("ignore")
        onnx_model = convert_sklearn(
            model, initial_types=_initial_types(signature), options=options
        )
    data: bytes = onnx_model.SerializeToString()
    return data


def _mismatch(
    runner: OnnxRunner, native: NativePredictor, sample: pd.DataFrame, signature: Signature
) -> str:
    """Compare ONNX Runtime with the native model on the sample; describe any difference."""
    outputs = runner.run(SignatureValidator(signature).frame_to_inputs(sample))
    if native.classes is None:
        expected = np.asarray(native.predict(sample), dtype=np.float64)
        got = outputs[PREDICTION_OUTPUT]
        if not np.allclose(got, expected, atol=REGRESSION_TOLERANCE, rtol=REGRESSION_TOLERANCE):
            return f"predictions differ by up to {np.max(np.abs(got - expected)):.3g}"
        return ""
    labels = native.predict(sample)
    got_labels = outputs[LABEL_OUTPUT]
    if got_labels.dtype.kind in "OUS" or labels.dtype.kind in "OUS":
        got_labels, labels = got_labels.astype(str), labels.astype(str)
    differing = int(np.sum(got_labels != labels))
    if differing:
        return f"labels differ on {differing} of {len(labels)} sample rows"
    difference = float(np.max(np.abs(outputs[PROBABILITIES_OUTPUT] - native.predict_proba(sample))))
    if difference > PROBABILITY_ATOL:
        return f"probabilities differ by up to {difference:.3g} (tolerance {PROBABILITY_ATOL})"
    return ""


def export_verified(
    model: Any, native: NativePredictor, sample: pd.DataFrame, signature: Signature
) -> OnnxExport:
    """Export ``model`` to ONNX and keep the export only if it matches ``native`` on ``sample``."""
    try:
        data = _convert(model, signature)
    except Exception as exc:  # noqa: BLE001 - converters raise anything; the model still works
        # skl2onnx wraps the underlying error; its cause is the readable part.
        cause = exc.__cause__ or exc
        reason = f"ONNX export failed: {type(cause).__name__}: {str(cause).splitlines()[0][:300]}"
        logger.info("onnx export skipped model=%s reason=%s", type(model).__name__, reason)
        return OnnxExport(None, False, reason)
    try:
        mismatch = _mismatch(OnnxRunner(data, signature), native, sample, signature)
    except Exception as exc:  # noqa: BLE001 - a graph ONNX Runtime rejects is just unverified
        mismatch = f"ONNX Runtime failed on the sample: {type(exc).__name__}: {exc}"[:400]
    if mismatch:
        logger.info("onnx export rejected model=%s reason=%s", type(model).__name__, mismatch)
        return OnnxExport(None, False, f"ONNX output does not match the native model: {mismatch}")
    return OnnxExport(data, True, "")
