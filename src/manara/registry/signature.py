"""Model signatures: inferred from a sample frame, enforced on every prediction.

Inputs are one tensor per column of the sample, shaped ``(-1,)``, with the
Open Inference Protocol datatype of the column's dtype:

==========================================  ========
pandas / NumPy dtype                        datatype
==========================================  ========
any integer                                 INT64
float32                                     FP32
other floats                                FP64
bool                                        BOOL
object, string, category                    BYTES
==========================================  ========

Outputs depend on the estimator. A classifier returns ``label`` (``(-1,)``,
the datatype of its class labels) and ``probabilities`` (``(-1, n_classes)``,
FP64, columns in the order of the classes). A regressor returns
``prediction`` (``(-1,)``, FP64).

Validation accepts a 1-D array or an ``(n, 1)`` column for each input.
Floating inputs also accept integer arrays, because JSON clients often send
whole numbers for float features. Every other datatype needs an array of
its own kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from manara.errors import InvalidInputError, SignatureError
from manara.registry.entities import Signature, TensorSpec

LABEL_OUTPUT = "label"
PROBABILITIES_OUTPUT = "probabilities"
PREDICTION_OUTPUT = "prediction"

# NumPy dtype kinds each datatype accepts; "T" is NumPy's variable-width StringDType.
_ACCEPTED_KINDS: dict[str, frozenset[str]] = {
    "INT64": frozenset("iu"),
    "FP64": frozenset("fiu"),
    "FP32": frozenset("fiu"),
    "BOOL": frozenset("b"),
    "BYTES": frozenset("OUST"),
}
_NUMPY_DTYPES: dict[str, np.dtype[Any]] = {
    "INT64": np.dtype(np.int64),
    "FP64": np.dtype(np.float64),
    "FP32": np.dtype(np.float32),
    "BOOL": np.dtype(np.bool_),
    "BYTES": np.dtype(object),
}


def datatype_of(name: str, dtype: Any) -> str:
    """Map a pandas or NumPy dtype to its Open Inference Protocol datatype."""
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
        return "BYTES"
    if pd.api.types.is_bool_dtype(dtype):
        return "BOOL"
    if pd.api.types.is_integer_dtype(dtype):
        return "INT64"
    if pd.api.types.is_float_dtype(dtype):
        return "FP32" if np.dtype(dtype) == np.float32 else "FP64"
    if pd.api.types.is_object_dtype(dtype):
        return "BYTES"
    raise InvalidInputError(
        f"Column {name!r} has dtype {dtype}, which a model input cannot take. "
        "Convert it to a number, a bool or a string (for timestamps, derive numeric "
        "features such as the hour) before fitting.",
        column=name,
    )


def label_datatype(classes: np.ndarray) -> str:
    kind = np.asarray(classes).dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return "INT64"
    if kind == "f":
        return "FP64"
    return "BYTES"


def infer_signature(sample: pd.DataFrame, classes: Sequence[Any] | np.ndarray | None) -> Signature:
    """Build the signature of a model fitted on columns like ``sample``'s.

    ``classes`` are the classifier's class labels, or ``None`` for a regressor.
    """
    if not isinstance(sample, pd.DataFrame) or sample.shape[1] == 0:
        raise InvalidInputError(
            "The sample input must be a pandas DataFrame with at least one column; "
            f"got {type(sample).__name__}."
        )
    inputs = tuple(
        TensorSpec(str(column), datatype_of(str(column), sample[column].dtype), (-1,))
        for column in sample.columns
    )
    if classes is None:
        outputs: tuple[TensorSpec, ...] = (TensorSpec(PREDICTION_OUTPUT, "FP64", (-1,)),)
    else:
        labels = np.asarray(classes)
        outputs = (
            TensorSpec(LABEL_OUTPUT, label_datatype(labels), (-1,)),
            TensorSpec(PROBABILITIES_OUTPUT, "FP64", (-1, len(labels))),
        )
    return Signature(inputs=inputs, outputs=outputs)


@dataclass(frozen=True)
class _InputRule:
    name: str
    datatype: str
    kinds: frozenset[str]


class SignatureValidator:
    """Checks input dicts against one signature; built once per loaded model."""

    def __init__(self, signature: Signature) -> None:
        self.signature = signature
        self._rules = tuple(
            _InputRule(spec.name, spec.datatype, _ACCEPTED_KINDS.get(spec.datatype, frozenset()))
            for spec in signature.inputs
        )
        self._names = frozenset(rule.name for rule in self._rules)

    def validate(self, inputs: Mapping[str, Any]) -> int:
        """Raise ``SignatureError`` unless ``inputs`` match; return the number of rows."""
        if not isinstance(inputs, Mapping):
            raise SignatureError(
                f"Model inputs must be a dict of input name to 1-D array or a pandas "
                f"DataFrame; got {type(inputs).__name__}. The model expects: "
                f"{', '.join(rule.name for rule in self._rules)}.",
                got=type(inputs).__name__,
            )
        if len(inputs) != len(self._rules) or not self._names.issuperset(inputs):
            self._check_names(inputs)
        rows = -1
        for rule in self._rules:
            array = inputs[rule.name]
            if not isinstance(array, np.ndarray):
                raise SignatureError(
                    f"Input {rule.name!r} must be a NumPy array; got {type(array).__name__}.",
                    input=rule.name,
                )
            if array.dtype.kind not in rule.kinds:
                raise SignatureError(
                    f"Input {rule.name!r} has datatype {array.dtype}; expected {rule.datatype}.",
                    input=rule.name,
                    expected=rule.datatype,
                    got=str(array.dtype),
                )
            if array.ndim != 1 and not (array.ndim == 2 and array.shape[1] == 1):
                raise SignatureError(
                    f"Input {rule.name!r} has shape {list(array.shape)}; expected [-1] or [-1, 1] "
                    "(one value per row).",
                    input=rule.name,
                    got=list(array.shape),
                )
            if rows == -1:
                rows = array.shape[0]
            elif array.shape[0] != rows:
                raise SignatureError(
                    f"Input {rule.name!r} has {array.shape[0]} rows; the other inputs have "
                    f"{rows}. Send the same number of values for every input.",
                    input=rule.name,
                )
        if rows == 0:
            raise SignatureError("The inputs have no rows; send at least one row.")
        return rows

    def _check_names(self, inputs: Mapping[str, Any]) -> None:
        expected = [rule.name for rule in self._rules]
        for rule in self._rules:
            if rule.name not in inputs:
                raise SignatureError(
                    f"Missing input {rule.name!r} ({rule.datatype}). The model expects: "
                    f"{', '.join(expected)}.",
                    input=rule.name,
                    expected=rule.datatype,
                )
        unexpected = sorted(set(inputs) - self._names)
        raise SignatureError(
            f"Unexpected input {unexpected[0]!r}. The model expects: {', '.join(expected)}.",
            input=unexpected[0],
        )

    def frame_to_inputs(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Convert a frame's signature columns to arrays of the signature's datatypes."""
        inputs: dict[str, np.ndarray] = {}
        for rule in self._rules:
            if rule.name not in frame.columns:
                raise SignatureError(
                    f"Missing column {rule.name!r} ({rule.datatype}) in the frame. Columns "
                    f"present: {', '.join(map(str, frame.columns))}.",
                    input=rule.name,
                )
            inputs[rule.name] = _column_array(frame[rule.name], rule)
        return inputs


def _column_array(column: pd.Series, rule: _InputRule) -> np.ndarray:
    target = _NUMPY_DTYPES[rule.datatype]
    if rule.datatype == "BYTES":
        if isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype(object)
        return column.to_numpy(dtype=object)
    try:
        return column.to_numpy(dtype=target)
    except (TypeError, ValueError) as exc:
        raise SignatureError(
            f"Column {rule.name!r} has dtype {column.dtype} and cannot be converted to "
            f"{rule.datatype}: {exc}.",
            input=rule.name,
            expected=rule.datatype,
            got=str(column.dtype),
        ) from exc


def inputs_to_frame(signature: Signature, inputs: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Build the frame a native model predicts on, columns in signature order."""
    return pd.DataFrame(
        {spec.name: np.asarray(inputs[spec.name]).reshape(-1) for spec in signature.inputs}
    )
