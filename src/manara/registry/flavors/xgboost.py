"""XGBoost models in XGBoost's native JSON format.

``model.json`` is the booster as ``Booster.save_raw("json")`` writes it. It
contains trees and parameters only, so loading runs no stored code. The
scikit-learn wrapper class (classifier or regressor) is recorded in
``meta.json`` and rebuilt on load.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
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

MODEL_FILE = "model.json"


def _xgboost() -> Any:
    try:
        import xgboost
    except ImportError as exc:
        raise missing_package("xgboost") from exc
    return xgboost


class XGBoostFlavor:
    name = "xgboost"

    def accepts(self, model: Any) -> bool:
        return module_is(model, "xgboost")

    def save(self, model: Any, sample: pd.DataFrame) -> dict[str, bytes]:
        del sample
        xgboost = _xgboost()
        preprocessor, estimator = split_pipeline(model)
        if isinstance(estimator, xgboost.XGBClassifier):
            model_type, classes = "classifier", estimator.classes_
        elif isinstance(estimator, xgboost.XGBRegressor):
            model_type, classes = "regressor", None
        else:
            raise InvalidInputError(
                f"The xgboost flavor saves XGBClassifier and XGBRegressor models; got "
                f"{type(estimator).__name__}. Wrap a raw Booster in one of them."
            )
        files = {
            MODEL_FILE: bytes(estimator.get_booster().save_raw(raw_format="json")),
            META_FILE: meta_file(model_type, classes),
        }
        save_preprocessor(preprocessor, files)
        return files

    def load(self, files: Mapping[str, bytes]) -> NativePredictor:
        xgboost = _xgboost()
        model_type, classes = read_meta(files)
        estimator = (
            xgboost.XGBClassifier() if model_type == "classifier" else xgboost.XGBRegressor()
        )
        estimator.load_model(bytearray(files[MODEL_FILE]))
        return EstimatorPredictor(
            estimator, classes, load_preprocessor(files), decode_labels=classes is not None
        )

    def check_files(self, files: Mapping[str, bytes]) -> None:
        check_boosting_files(files, MODEL_FILE, self.name)

    def files_from_native(self, data: bytes, name: str) -> dict[str, bytes]:
        """Package a model file written by ``Booster.save_model("....json")``."""
        try:
            learner = orjson.loads(data)["learner"]
            objective = str(learner["objective"]["name"])
            num_class = int(learner["learner_model_param"]["num_class"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"{name} is not an XGBoost JSON model ({type(exc).__name__}: {exc})."
            ) from exc
        if objective in ("binary:logistic", "multi:softprob"):
            model_type, classes = "classifier", list(range(max(num_class, 2)))
        elif objective.startswith("reg:"):
            model_type, classes = "regressor", None
        else:
            raise InvalidInputError(
                f"{name} has the XGBoost objective {objective!r}; register_file takes "
                "binary:logistic, multi:softprob and reg:* models."
            )
        return {MODEL_FILE: data, META_FILE: meta_file(model_type, classes)}
