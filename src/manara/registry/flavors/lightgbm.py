"""LightGBM models in LightGBM's native text format.

``model.txt`` is ``Booster.model_to_string()``: trees and parameters as
text, which loading parses without running stored code. The scikit-learn
wrapper's model type and classes are kept in ``meta.json``; on load the
plain ``Booster`` predicts and this module maps its output to labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from manara.errors import InvalidInputError
from manara.registry.flavors.base import EstimatorPredictor, NativePredictor, split_pipeline
from manara.registry.flavors.boosting import (
    META_FILE,
    check_boosting_files,
    load_preprocessor,
    meta_file,
    missing_package,
    module_is,
    read_meta,
    save_preprocessor,
)

MODEL_FILE = "model.txt"
_REGRESSION_OBJECTIVES = frozenset(
    {
        "regression",
        "regression_l1",
        "huber",
        "fair",
        "poisson",
        "quantile",
        "mape",
        "gamma",
        "tweedie",
    }
)


def _lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError as exc:
        raise missing_package("lightgbm") from exc
    return lightgbm


class _BoosterClassifier:
    """``predict_proba`` over a LightGBM Booster, whose binary output is P(class 1) only."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def predict_proba(self, features: Any) -> np.ndarray:
        raw = np.asarray(self.booster.predict(features), dtype=np.float64)
        if raw.ndim == 1:
            return np.column_stack([1.0 - raw, raw])
        return raw

    def predict(self, features: Any) -> np.ndarray:
        return np.asarray(np.argmax(self.predict_proba(features), axis=1))


class LightGBMFlavor:
    name = "lightgbm"

    def accepts(self, model: Any) -> bool:
        return module_is(model, "lightgbm")

    def save(self, model: Any, sample: pd.DataFrame) -> dict[str, bytes]:
        del sample
        lightgbm = _lightgbm()
        preprocessor, estimator = split_pipeline(model)
        if isinstance(estimator, lightgbm.LGBMClassifier):
            model_type, classes = "classifier", estimator.classes_
        elif isinstance(estimator, lightgbm.LGBMRegressor):
            model_type, classes = "regressor", None
        else:
            raise InvalidInputError(
                f"The lightgbm flavor saves LGBMClassifier and LGBMRegressor models; got "
                f"{type(estimator).__name__}. Wrap a raw Booster in one of them."
            )
        files = {
            MODEL_FILE: estimator.booster_.model_to_string().encode("utf-8"),
            META_FILE: meta_file(model_type, classes),
        }
        save_preprocessor(preprocessor, files)
        return files

    def load(self, files: Mapping[str, bytes]) -> NativePredictor:
        lightgbm = _lightgbm()
        model_type, classes = read_meta(files)
        booster = lightgbm.Booster(model_str=files[MODEL_FILE].decode("utf-8"))
        estimator = _BoosterClassifier(booster) if model_type == "classifier" else booster
        return EstimatorPredictor(
            estimator, classes, load_preprocessor(files), decode_labels=classes is not None
        )

    def check_files(self, files: Mapping[str, bytes]) -> None:
        check_boosting_files(files, MODEL_FILE, self.name)

    def files_from_native(self, data: bytes, name: str) -> dict[str, bytes]:
        """Package a model file written by ``Booster.save_model`` (LightGBM text format)."""
        header: dict[str, str] = {}
        for line in data[:65536].decode("utf-8", errors="replace").splitlines():
            key, _, value = line.partition("=")
            header.setdefault(key.strip(), value.strip())
        objective = header.get("objective", "").split(" ")[0]
        if not data.startswith(b"tree") or not objective:
            raise InvalidInputError(f"{name} is not a LightGBM text model.")
        if objective == "binary":
            model_type, classes = "classifier", [0, 1]
        elif objective in ("multiclass", "multiclassova"):
            model_type, classes = "classifier", list(range(int(header.get("num_class", "0"))))
        elif objective in _REGRESSION_OBJECTIVES:
            model_type, classes = "regressor", None
        else:
            raise InvalidInputError(
                f"{name} has the LightGBM objective {objective!r}; register_file takes "
                "binary, multiclass and regression models."
            )
        return {MODEL_FILE: data, META_FILE: meta_file(model_type, classes)}
