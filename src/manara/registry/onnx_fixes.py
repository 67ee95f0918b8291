"""Corrected skl2onnx converters for HistGradientBoosting models, in double precision.

With skl2onnx 1.20.0, scikit-learn 1.9.1, onnx 1.23.2 and protobuf 7.36.2,
converting a ``HistGradientBoostingClassifier`` or ``...Regressor`` fails
with ``TypeError: Field onnx.AttributeProto.ints: Expected an int, got a
boolean``. The converter builds the TreeEnsemble attribute
``nodes_missing_value_tracks_true`` from the predictor's
``missing_go_to_left`` field (``numpy.uint8``) on split nodes but from the
Python literal ``False`` on leaves. ``onnx.helper.make_attribute`` infers an
integer list from that mix, and protobuf rejects the ``bool`` elements.

scikit-learn compares float64 feature values with float64 thresholds. A
float32 graph rounds both, so a value within float32 rounding of a
threshold can take the other branch. On the quickstart's September to
December flights, a temperature of 52.52 °F that lies on a threshold changed
the probabilities of 8 of 109,619 flights, by up to 0.026. The export therefore feeds these models float64 inputs, and the
trees keep float64 thresholds, leaf weights and base values as the
``*_as_tensor`` attributes of the ai.onnx.ml opset 3 TreeEnsemble operators.

The converters here call skl2onnx's own converter with a container that
rewrites those attributes before the node is built, so the rest of the
conversion is skl2onnx's. They are passed per call through
``convert_sklearn(custom_conversion_functions=...)`` and change no global
registry. Once skl2onnx emits plain integers, the cast changes nothing.

Missing values map faithfully: ONNX's ``BRANCH_LEQ`` sends NaN to the true
(left) child exactly when the flag is 1, as scikit-learn does when
``missing_go_to_left`` is set. Native categorical splits (bitsets) have no
equivalent in this converter, so a model with categorical features is
rejected here instead of being exported with wrong splits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

MISSING_TRACKS_TRUE = "nodes_missing_value_tracks_true"
ML_DOMAIN = "ai.onnx.ml"
DOUBLE_TREES_ML_OPSET = 3
"""First ai.onnx.ml opset whose TreeEnsemble operators take float64 ``*_as_tensor`` attributes."""

_TREE_OPERATORS = frozenset({"TreeEnsembleClassifier", "TreeEnsembleRegressor"})

Converter = Callable[..., Any]


class _TreeAttributeContainer:
    """A conversion container that repairs TreeEnsemble attributes before the node is built.

    Every other attribute and method is the wrapped container's.
    """

    def __init__(self, container: Any) -> None:
        self._container = container

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def add_node(self, op_type: str, *args: Any, **attrs: Any) -> Any:
        flags = attrs.get(MISSING_TRACKS_TRUE)
        if flags is not None:
            attrs[MISSING_TRACKS_TRUE] = [int(flag) for flag in flags]
        if op_type in _TREE_OPERATORS:
            attrs = _double_attributes_as_tensors(attrs)
        return self._container.add_node(op_type, *args, **attrs)


def _double_attributes_as_tensors(attrs: dict[str, Any]) -> dict[str, Any]:
    """Move float64 arrays to ``*_as_tensor`` attributes, because list attributes are float32."""
    from onnx import numpy_helper

    converted: dict[str, Any] = {}
    for name, value in attrs.items():
        if isinstance(value, np.ndarray) and value.dtype == np.float64:
            converted[f"{name}_as_tensor"] = numpy_helper.from_array(value.ravel(), name)
        else:
            converted[name] = value
    return converted


def _reject_categorical(model: Any) -> None:
    is_categorical = getattr(model, "is_categorical_", None)
    if is_categorical is not None and bool(is_categorical.any()):
        raise ValueError(
            f"{type(model).__name__} uses native categorical splits "
            "(categorical_features), which skl2onnx converts as numeric thresholds. "
            "Encode the categories (for example with OrdinalEncoder) before the model "
            "to export it to ONNX."
        )


def _wrap(convert: Converter) -> Converter:
    def convert_hist_gradient_boosting(scope: Any, operator: Any, container: Any) -> Any:
        _reject_categorical(operator.raw_operator)
        ml_opset = container.target_opset_any_domain(ML_DOMAIN)
        op_version = DOUBLE_TREES_ML_OPSET if ml_opset >= DOUBLE_TREES_ML_OPSET else 1
        return convert(scope, operator, _TreeAttributeContainer(container), op_version=op_version)

    return convert_hist_gradient_boosting


def custom_converters() -> dict[type, Converter]:
    """Return the corrected converter of each model class, for ``custom_conversion_functions``."""
    from skl2onnx.operator_converters.random_forest import (
        convert_sklearn_random_forest_classifier,
        convert_sklearn_random_forest_regressor_converter,
    )
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    return {
        HistGradientBoostingClassifier: _wrap(convert_sklearn_random_forest_classifier),
        HistGradientBoostingRegressor: _wrap(convert_sklearn_random_forest_regressor_converter),
    }


def needs_double_precision(estimator: Any) -> bool:
    """True when ``estimator`` computes in float64 and must get float64 ONNX inputs."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    return isinstance(estimator, HistGradientBoostingClassifier | HistGradientBoostingRegressor)


def target_opset(double_precision: bool) -> dict[str, int] | None:
    """Return the opsets to convert with; ``None`` keeps skl2onnx's defaults."""
    if not double_precision:
        return None
    from skl2onnx import get_latest_tested_opset_version

    return {"": get_latest_tested_opset_version(), ML_DOMAIN: DOUBLE_TREES_ML_OPSET}
