"""The flavor contract and the lookup from a model object or a flavor name.

A flavor turns a fitted model into named files in formats that cannot run
code on load, and turns those files back into a ``NativePredictor``. The
flavor modules import their framework lazily, so that a missing optional
package (XGBoost, LightGBM) fails only when that flavor is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import pandas as pd

from manara.errors import InvalidInputError


class NativePredictor(Protocol):
    """A loaded model that predicts on a DataFrame with the signature's columns."""

    classes: np.ndarray | None
    """Class labels in probability-column order; ``None`` for a regressor."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray: ...

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray: ...

    def predict_with_proba(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Return labels and probabilities, transforming the features once."""
        ...


class Flavor(Protocol):
    name: str

    def accepts(self, model: Any) -> bool:
        """True when this flavor can save ``model``."""
        ...

    def save(self, model: Any, sample: pd.DataFrame) -> dict[str, bytes]:
        """Serialise a fitted model; return file name to content."""
        ...

    def load(self, files: Mapping[str, bytes]) -> NativePredictor:
        """Rebuild a predictor from the files ``save`` returned, without running stored code."""
        ...

    def check_files(self, files: Mapping[str, bytes]) -> None:
        """Raise ``UnsafeArtifactError`` if a file could run code on load."""
        ...


def _flavors() -> tuple[Flavor, ...]:
    from manara.registry.flavors.lightgbm import LightGBMFlavor
    from manara.registry.flavors.sklearn import SklearnFlavor
    from manara.registry.flavors.xgboost import XGBoostFlavor

    # Boosting flavors first: they also accept scikit-learn pipelines that end in their model.
    return (XGBoostFlavor(), LightGBMFlavor(), SklearnFlavor())


def flavor_for(model: Any) -> Flavor:
    for flavor in _flavors():
        if flavor.accepts(model):
            return flavor
    raise InvalidInputError(
        f"No model flavor can save a {type(model).__module__}.{type(model).__qualname__}. "
        "Supported: fitted scikit-learn estimators and pipelines, XGBoost and LightGBM "
        "models (alone or as the last step of a scikit-learn pipeline)."
    )


def flavor_by_name(name: str) -> Flavor:
    for flavor in _flavors():
        if flavor.name == name:
            return flavor
    known = ", ".join(flavor.name for flavor in _flavors())
    raise InvalidInputError(f"Unknown model flavor {name!r}. Known flavors: {known}.")


def final_step(model: Any) -> Any:
    """Return the estimator at the end of a scikit-learn pipeline, or the model itself."""
    steps = getattr(model, "steps", None)
    if isinstance(steps, list) and steps:
        return steps[-1][1]
    return model


def split_pipeline(model: Any) -> tuple[Any, Any]:
    """Return (preprocessing pipeline or ``None``, final estimator)."""
    steps = getattr(model, "steps", None)
    if not isinstance(steps, list) or len(steps) < 2:
        return None, final_step(model)
    from sklearn.pipeline import Pipeline

    return Pipeline(steps[:-1]), steps[-1][1]


def is_classifier(model: Any) -> bool:
    return hasattr(final_step(model), "classes_") or hasattr(model, "classes_")


class EstimatorPredictor:
    """Adapts a fitted estimator (and an optional preprocessing pipeline) to ``NativePredictor``.

    With ``decode_labels`` the estimator predicts class indices, as XGBoost
    and LightGBM do, and labels are read from ``classes`` by the index of
    the highest probability.
    """

    def __init__(
        self,
        estimator: Any,
        classes: np.ndarray | None,
        preprocessor: Any = None,
        decode_labels: bool = False,
    ) -> None:
        self.estimator = estimator
        self.classes = classes
        self.preprocessor = preprocessor
        self.decode_labels = decode_labels

    def _features(self, frame: pd.DataFrame) -> Any:
        return frame if self.preprocessor is None else self.preprocessor.transform(frame)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if self.decode_labels and self.classes is not None:
            indices = np.argmax(self.predict_proba(frame), axis=1)
            return np.asarray(np.asarray(self.classes)[indices])
        return np.asarray(self.estimator.predict(self._features(frame)))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self._proba(self._features(frame))

    def _proba(self, features: Any) -> np.ndarray:
        if self.classes is None:
            raise InvalidInputError("This model is a regressor; it has no class probabilities.")
        return np.asarray(self.estimator.predict_proba(features), dtype=np.float64)

    def predict_with_proba(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        features = self._features(frame)
        proba = self._proba(features)
        if self.decode_labels and self.classes is not None:
            return np.asarray(np.asarray(self.classes)[np.argmax(proba, axis=1)]), proba
        return np.asarray(self.estimator.predict(features)), proba
