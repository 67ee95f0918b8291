"""Shared parts of the XGBoost and LightGBM flavors.

A boosting model is saved as its native model file plus ``meta.json``
(model type and class labels). When the model is the last step of a
scikit-learn pipeline, the steps before it are saved with skops as
``preprocessor.skops`` and checked like any scikit-learn model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from manara.errors import InvalidInputError
from manara.registry.flavors.base import final_step
from manara.registry.flavors.sklearn import dump_checked, load_checked, trusted_types

META_FILE = "meta.json"
PREPROCESSOR_FILE = "preprocessor.skops"


def module_is(model: Any, package: str) -> bool:
    return type(final_step(model)).__module__.split(".")[0] == package


def meta_file(model_type: str, classes: Any) -> bytes:
    labels = None if classes is None else np.asarray(classes).tolist()
    return orjson.dumps({"model_type": model_type, "classes": labels})


def read_meta(files: Mapping[str, bytes]) -> tuple[str, np.ndarray | None]:
    meta = orjson.loads(files[META_FILE])
    classes = meta.get("classes")
    return str(meta["model_type"]), None if classes is None else np.asarray(classes)


def save_preprocessor(preprocessor: Any, files: dict[str, bytes]) -> None:
    if preprocessor is not None:
        files[PREPROCESSOR_FILE] = dump_checked(preprocessor, "the preprocessing pipeline")


def load_preprocessor(files: Mapping[str, bytes]) -> Any:
    data = files.get(PREPROCESSOR_FILE)
    return None if data is None else load_checked(data, PREPROCESSOR_FILE)


def check_boosting_files(files: Mapping[str, bytes], model_file: str, flavor: str) -> None:
    for required in (model_file, META_FILE):
        if required not in files:
            raise InvalidInputError(f"The {flavor} model package has no {required}.")
    if PREPROCESSOR_FILE in files:
        trusted_types(files[PREPROCESSOR_FILE], PREPROCESSOR_FILE)


def missing_package(package: str) -> InvalidInputError:
    return InvalidInputError(
        f"The {package} package is not installed, so this model cannot be saved or loaded. "
        "Install it with: pip install 'manara[boosting]'."
    )
