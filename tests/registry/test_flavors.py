"""Round trips through each flavor and the ONNX export, without a workspace."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from manara.errors import UnsafeArtifactError
from manara.registry.entities import Signature
from manara.registry.flavors import flavor_by_name
from manara.registry.onnx import ONNX_FILE, OnnxRunner
from manara.registry.packaging import build_package
from manara.registry.signature import SignatureValidator
from tests.registry.conftest import fit_pipeline, make_frame, preprocessor


def reload(model: Any, frame: pd.DataFrame) -> Any:
    package = build_package(model, frame.head(50))
    return package, flavor_by_name(package.manifest["flavor"]).load(package.files)


@pytest.mark.parametrize("fixture", ["logistic", "boosted"])
def test_sklearn_round_trip(fixture: str, request: pytest.FixtureRequest) -> None:
    model, frame = request.getfixturevalue(fixture)
    package, native = reload(model, frame)
    assert package.manifest["flavor"] == "sklearn"
    assert "model.skops" in package.files
    np.testing.assert_array_equal(native.predict(frame), model.predict(frame))
    np.testing.assert_array_equal(native.predict_proba(frame), model.predict_proba(frame))
    np.testing.assert_array_equal(native.classes, model.classes_)


def test_onnx_matches_native(logistic: Any) -> None:
    model, frame = logistic
    package, _native = reload(model, frame)
    assert package.manifest["onnx"]["verified"] is True, package.manifest["onnx"]
    assert ONNX_FILE in package.files
    signature = Signature.from_dict(package.manifest["signature"])
    runner = OnnxRunner(package.files[ONNX_FILE], signature)
    outputs = runner.run(SignatureValidator(signature).frame_to_inputs(frame))
    np.testing.assert_array_equal(outputs["label"], model.predict(frame))
    np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(frame), atol=1e-5)


def test_onnx_unverified_reason(unexported: Any) -> None:
    model, frame = unexported
    package, native = reload(model, frame)
    onnx = package.manifest["onnx"]
    assert onnx["verified"] is False
    assert ONNX_FILE not in package.files
    assert "FunctionTransformer" in onnx["reason"], onnx["reason"]
    np.testing.assert_array_equal(native.predict(frame), model.predict(frame))


def test_xgboost_round_trip() -> None:
    xgboost = pytest.importorskip("xgboost")
    model, frame = fit_pipeline(xgboost.XGBClassifier(n_estimators=15, max_depth=3))
    package, native = reload(model, frame)
    assert package.manifest["flavor"] == "xgboost"
    assert set(package.files) >= {"model.json", "meta.json", "preprocessor.skops"}
    np.testing.assert_array_equal(native.predict(frame), model.predict(frame))
    np.testing.assert_allclose(native.predict_proba(frame), model.predict_proba(frame), rtol=1e-6)


def test_xgboost_regressor_round_trip() -> None:
    xgboost = pytest.importorskip("xgboost")
    frame, target = make_frame()
    model = Pipeline(
        [("prepare", preprocessor()), ("model", xgboost.XGBRegressor(n_estimators=10))]
    )
    model.fit(frame, target.astype(float) * 3.0)
    package, native = reload(model, frame)
    assert native.classes is None
    np.testing.assert_allclose(native.predict(frame), model.predict(frame), rtol=1e-6)


def test_lightgbm_round_trip() -> None:
    lightgbm = pytest.importorskip("lightgbm")
    estimator = lightgbm.LGBMClassifier(n_estimators=15, num_leaves=8, verbose=-1)
    model, frame = fit_pipeline(estimator)
    package, native = reload(model, frame)
    assert package.manifest["flavor"] == "lightgbm"
    assert "model.txt" in package.files
    np.testing.assert_array_equal(native.predict(frame), model.predict(frame))
    np.testing.assert_allclose(native.predict_proba(frame), model.predict_proba(frame), rtol=1e-9)


def double(values: Any) -> Any:
    return values * 2


def test_skops_untrusted_type_rejected() -> None:
    frame, target = make_frame()
    steps = [
        ("prepare", preprocessor()),
        ("custom", FunctionTransformer(double)),
        ("model", LogisticRegression(max_iter=500)),
    ]
    model = Pipeline(steps).fit(frame, target)
    with pytest.raises(UnsafeArtifactError) as caught:
        build_package(model, frame.head(10))
    assert "double" in caught.value.message
