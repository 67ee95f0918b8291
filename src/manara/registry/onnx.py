"""ONNX export of scikit-learn models, verified against the native model.

The exported graph has one input per signature column: text columns
(BYTES) become ``StringTensorType`` inputs and numeric and bool columns
become ``FloatTensorType`` inputs, because the ONNX-ML operators that
scikit-learn pipelines convert to (Imputer, Scaler, TreeEnsemble) compute
in float32. Models that end in a HistGradientBoosting estimator get
``DoubleTensorType`` inputs first, because scikit-learn splits their trees
on float64 values (see ``manara.registry.onnx_fixes``), and float32 inputs
only when the float64 graph fails. ``OnnxRunner`` casts each input to its
graph type, so callers send the signature's datatypes.

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

_GRAPH_DTYPES: dict[str, Any] = {"tensor(string)": object, "tensor(double)": np.float64}
"""NumPy type of each graph input type other than ``tensor(float)``."""


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
            (spec.name, _GRAPH_DTYPES.get(graph_types[spec.name], np.float32))
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


def _initial_types(signature: Signature, double_precision: bool) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    number_type = DoubleTensorType if double_precision else FloatTensorType
    return [
        (
            spec.name,
            StringTensorType([None, 1]) if spec.datatype == "BYTES" else number_type([None, 1]),
        )
        for spec in signature.inputs
    ]


def _with_column_inputs(model: Any, signature: Signature, sample: pd.DataFrame) -> Any:
    """Put a passthrough ColumnTransformer before ``model`` when it cannot take the inputs.

    The graph has one input per column, but skl2onnx converts an estimator,
    or a pipeline that does not start with a ColumnTransformer, from a single
    input. The passthrough concatenates the numeric inputs in signature
    order, which is the order the model was fitted on. Text columns cannot
    be concatenated with numbers, so a model fed text is left as it is.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    steps = getattr(model, "steps", None)
    first = steps[0][1] if isinstance(steps, list) and steps else model
    numeric = all(spec.datatype != "BYTES" for spec in signature.inputs)
    if len(signature.inputs) < 2 or isinstance(first, ColumnTransformer) or not numeric:
        return model
    columns = [spec.name for spec in signature.inputs]
    passthrough = ColumnTransformer([("inputs", "passthrough", columns)])
    passthrough.fit(sample.loc[:, columns])
    return Pipeline([("inputs", passthrough), ("model", model)])


def _convert(
    model: Any, signature: Signature, sample: pd.DataFrame, double_precision: bool
) -> bytes:
    from skl2onnx import convert_sklearn

    from manara.registry.onnx_fixes import custom_converters, target_opset

    options = {id(final_step(model)): {"zipmap": False}} if hasattr(model, "classes_") else None
    with warnings.catch_warnings():
        # skl2onnx warns about opset choices it makes itself; those are not caller errors.
        warnings.simplefilter("ignore")
        onnx_model = convert_sklearn(
            _with_column_inputs(model, signature, sample),
            initial_types=_initial_types(signature, double_precision),
            options=options,
            target_opset=target_opset(double_precision),
            custom_conversion_functions=custom_converters(),
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
    """Export ``model`` to ONNX and keep the export only if it matches ``native`` on ``sample``.

    A model that computes in float64 is exported with float64 inputs first.
    When that graph cannot be built or run (ONNX Runtime has no float64
    Imputer, for one), a float32 graph is tried next.
    """
    from manara.registry.onnx_fixes import needs_double_precision

    precisions = (True, False) if needs_double_precision(final_step(model)) else (False,)
    reasons: list[str] = []
    for double_precision in precisions:
        export = _export(model, native, sample, signature, double_precision)
        if export.verified:
            # NOTE: in a float32 graph of a float64 model, a value within float32 rounding of
            # a split threshold can take the other branch. Only the sample checks for it.
            return export
        label = "float64 inputs" if double_precision else "float32 inputs"
        reasons.append(f"{export.reason} ({label})" if len(precisions) > 1 else export.reason)
    return OnnxExport(None, False, "; ".join(reasons))


def _export(
    model: Any,
    native: NativePredictor,
    sample: pd.DataFrame,
    signature: Signature,
    double_precision: bool,
) -> OnnxExport:
    try:
        data = _convert(model, signature, sample, double_precision)
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
