"""scikit-learn models saved with skops, loaded only when every type is allow-listed.

``skops.io.get_untrusted_types`` lists the types a file would build that
skops does not trust by default. The registry trusts those types only when
they come from scikit-learn, NumPy or SciPy. Any other type (a custom
function, a class from user code, a builtin such as ``eval``) is rejected
with ``UnsafeArtifactError`` before the file is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from manara.errors import InvalidInputError, UnsafeArtifactError
from manara.registry.flavors.base import (
    EstimatorPredictor,
    NativePredictor,
    is_classifier,
    split_pipeline,
)

MODEL_FILE = "model.skops"
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.")


def trusted_types(data: bytes, name: str) -> list[str]:
    """Return the types to trust when loading ``data``; reject any outside the allow-list."""
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(data=data)
    except Exception as exc:  # noqa: BLE001 - skops raises many types on a corrupt file
        raise InvalidInputError(f"{name} is not a readable skops file: {exc}.") from exc
    rejected = sorted(t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES))
    if rejected:
        raise UnsafeArtifactError(
            f"Rejected {name}: it contains types outside scikit-learn, NumPy and SciPy, which "
            f"could run code on load: {', '.join(rejected)}. Replace custom functions and "
            "classes with scikit-learn components before saving.",
            artifact=name,
            untrusted_types=rejected,
        )
    return list(untrusted)


def dump_checked(model: Any, name: str) -> bytes:
    import skops.io

    data: bytes = skops.io.dumps(model)
    trusted_types(data, name)
    return data


def load_checked(data: bytes, name: str) -> Any:
    import skops.io

    return skops.io.loads(data, trusted=trusted_types(data, name))


class SklearnFlavor:
    name = "sklearn"

    def accepts(self, model: Any) -> bool:
        return type(model).__module__.startswith("sklearn.") and hasattr(model, "predict")

    def save(self, model: Any, sample: pd.DataFrame) -> dict[str, bytes]:
        del sample
        return {MODEL_FILE: dump_checked(model, f"the {type(model).__name__} model")}

    def load(self, files: Mapping[str, bytes]) -> NativePredictor:
        model = load_checked(files[MODEL_FILE], MODEL_FILE)
        classes = np.asarray(model.classes_) if is_classifier(model) else None
        preprocessor, estimator = split_pipeline(model)
        # Predicting through the split pipeline lets labels and probabilities share
        # one pass of the preprocessing steps; the results equal the pipeline's own.
        return EstimatorPredictor(estimator, classes, preprocessor)

    def check_files(self, files: Mapping[str, bytes]) -> None:
        if MODEL_FILE not in files:
            raise InvalidInputError(f"The sklearn model package has no {MODEL_FILE}.")
        trusted_types(files[MODEL_FILE], MODEL_FILE)
