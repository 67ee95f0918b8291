"""ONNX export of HistGradientBoosting models and of estimators fed several columns.

Every model is fitted on seeded synthetic data with missing numbers and
text categories, registered from a 50-row sample, and compared with
scikit-learn on held-out rows that the verification never saw.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from manara.quickstart.data import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from manara.quickstart.models import gradient_boosting, model_inputs
from manara.registry.entities import Signature
from manara.registry.flavors.base import EstimatorPredictor
from manara.registry.onnx import ONNX_FILE, OnnxRunner, export_verified
from manara.registry.packaging import ModelPackage, build_package
from manara.registry.service import RegistryService
from manara.registry.signature import SignatureValidator, infer_signature

NUMERIC = ["amount", "visits", "score"]
CATEGORICAL = ["plan", "region"]
MISSING_SHARE = 0.2


def make_rows(rows: int, seed: int, unseen: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows with NaN in every numeric column; ``unseen`` adds a category absent in training."""
    rng = np.random.default_rng(seed)
    plans = ["basic", "plus", "pro", "trial"] if unseen else ["basic", "plus", "pro"]
    frame = pd.DataFrame(
        {
            "amount": rng.normal(50.0, 15.0, rows),
            "visits": rng.integers(0, 20, rows).astype(np.float64),
            "score": rng.uniform(-1.0, 1.0, rows),
            "plan": rng.choice(plans, rows),
            "region": rng.choice(["north", "south", "east", "west"], rows),
        }
    )
    for column in NUMERIC:
        frame.loc[rng.random(rows) < MISSING_SHARE, column] = np.nan
    signal = (
        0.05 * (frame["amount"].fillna(70.0) - 50.0)
        + 0.8 * (frame["plan"] == "pro")
        - 0.1 * frame["visits"].fillna(0.0)
        + frame["score"].isna() * 1.5
    )
    target = (signal + rng.normal(0.0, 0.5, rows) > -0.5).astype(np.int64).to_numpy()
    return frame, target


def ordinal_passthrough() -> ColumnTransformer:
    """Integer codes and raw numbers, so NaN reaches the trees' missing-value branches."""
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan)
    return ColumnTransformer(
        [("categorical", encoder, CATEGORICAL), ("numeric", "passthrough", NUMERIC)]
    )


def one_hot_imputed() -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
            ("numeric", SimpleImputer(strategy="median"), NUMERIC),
        ]
    )


PREPROCESSORS = {"ordinal": ordinal_passthrough, "one-hot": one_hot_imputed}


def onnx_outputs(package: ModelPackage, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    signature = Signature.from_dict(package.manifest["signature"])
    runner = OnnxRunner(package.files[ONNX_FILE], signature)
    return runner.run(SignatureValidator(signature).frame_to_inputs(frame))


def graph_input_types(package: ModelPackage) -> dict[str, int]:
    graph = onnx.load_from_string(package.files[ONNX_FILE]).graph
    return {node.name: node.type.tensor_type.elem_type for node in graph.input}


def assert_classifier_matches(model: Any, package: ModelPackage, held_out: pd.DataFrame) -> None:
    assert package.manifest["onnx"]["verified"] is True, package.manifest["onnx"]
    outputs = onnx_outputs(package, held_out)
    np.testing.assert_array_equal(outputs["label"], model.predict(held_out))
    np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(held_out), atol=1e-5)


@pytest.mark.parametrize("prepare", sorted(PREPROCESSORS))
def test_hgb_classifier_verified(prepare: str) -> None:
    frame, target = make_rows(1500, seed=3)
    classifier = HistGradientBoostingClassifier(max_iter=60, max_leaf_nodes=15, random_state=0)
    model = Pipeline([("prepare", PREPROCESSORS[prepare]()), ("model", classifier)])
    model.fit(frame, target)
    held_out, _ = make_rows(2000, seed=4, unseen=True)
    assert held_out[NUMERIC].isna().any(axis=1).sum() > 500, "held-out rows need NaNs"
    package = build_package(model, frame.head(50))
    assert_classifier_matches(model, package, held_out)


def test_hgb_nan_branches_used() -> None:
    # Rows whose only difference is a NaN must change the score, or the check proves nothing.
    frame, target = make_rows(1500, seed=3)
    model = Pipeline(
        [("prepare", ordinal_passthrough()), ("model", HistGradientBoostingClassifier())]
    )
    model.fit(frame, target)
    held_out, _ = make_rows(300, seed=5)
    complete = held_out.fillna({"score": 0.0})
    missing = complete.assign(score=np.nan)
    package = build_package(model, frame.head(50))
    native_change = model.predict_proba(missing)[:, 1] - model.predict_proba(complete)[:, 1]
    assert np.abs(native_change).max() > 0.1
    assert_classifier_matches(model, package, missing)


def test_hgb_threshold_neighbours() -> None:
    # Values one float64 step above a split threshold round onto it in float32, so only a
    # float64 graph sends them to the same branch as scikit-learn.
    frame, target = make_rows(1500, seed=3)
    model = Pipeline(
        [("prepare", ordinal_passthrough()), ("model", HistGradientBoostingClassifier())]
    )
    model.fit(frame, target)
    amount = NUMERIC.index("amount") + len(CATEGORICAL)
    thresholds = np.unique(
        [
            node["num_threshold"]
            for predictors in model[-1]._predictors
            for node in predictors[0].nodes
            if not node["is_leaf"] and node["feature_idx"] == amount
        ]
    )
    assert len(thresholds) > 10
    held_out, _ = make_rows(len(thresholds), seed=18)
    held_out["amount"] = np.nextafter(thresholds, np.inf)
    package = build_package(model, frame.head(50))
    assert graph_input_types(package)["amount"] == onnx.TensorProto.DOUBLE
    assert_classifier_matches(model, package, held_out)


def test_hgb_multiclass_verified() -> None:
    frame, _ = make_rows(1500, seed=6)
    target = pd.cut(frame["amount"].fillna(50.0), [-np.inf, 40.0, 60.0, np.inf], labels=False)
    labels = np.asarray(["low", "mid", "high"])[target.to_numpy()]
    model = Pipeline(
        [("prepare", ordinal_passthrough()), ("model", HistGradientBoostingClassifier(max_iter=30))]
    )
    model.fit(frame, labels)
    held_out, _ = make_rows(1000, seed=7, unseen=True)
    package = build_package(model, frame.head(50))
    assert_classifier_matches(model, package, held_out)


def test_hgb_regressor_verified() -> None:
    frame, target = make_rows(1500, seed=8)
    values = target * 10.0 + frame["amount"].fillna(0.0).to_numpy()
    model = Pipeline(
        [("prepare", ordinal_passthrough()), ("model", HistGradientBoostingRegressor(max_iter=50))]
    )
    model.fit(frame, values)
    held_out, _ = make_rows(1000, seed=9, unseen=True)
    package = build_package(model, frame.head(50))
    assert package.manifest["onnx"]["verified"] is True, package.manifest["onnx"]
    predictions = onnx_outputs(package, held_out)["prediction"]
    np.testing.assert_allclose(predictions, model.predict(held_out), atol=1e-5, rtol=1e-5)


def flight_rows(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Synthetic rows with the quickstart's feature columns and missing weather."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(10.0, 5.0, rows) for name in NUMERIC_FEATURES})
    for name in CATEGORICAL_FEATURES:
        frame[name] = rng.choice([f"{name}-{code}" for code in range(6)] + [None], rows)
    for name in ("temp", "wind_gust", "visib", "plane_age"):
        frame.loc[rng.random(rows) < 0.3, name] = np.nan
    late = frame["temp"].fillna(25.0) + 3.0 * (frame["carrier"] == "carrier-1") > 12.0
    return model_inputs(frame), late.to_numpy(dtype=np.int64)


def test_quickstart_pipeline_verified() -> None:
    frame, target = flight_rows(2000, seed=11)
    model = gradient_boosting({"max_iter": 40, "max_leaf_nodes": 15})
    model.fit(frame, target)
    held_out, _ = flight_rows(1000, seed=12)
    package = build_package(model, frame.head(50))
    assert graph_input_types(package)["temp"] == onnx.TensorProto.DOUBLE
    assert_classifier_matches(model, package, held_out)


def test_hgb_version_served_on_onnx(registry: RegistryService, register: Any) -> None:
    frame, target = make_rows(800, seed=13)
    model = Pipeline(
        [("prepare", ordinal_passthrough()), ("model", HistGradientBoostingClassifier(max_iter=20))]
    )
    model.fit(frame, target)
    version = register("renewals", model, frame)
    assert version.onnx_verified is True, version.metadata
    loaded = registry.load(version.ref)
    assert loaded.runtime == "onnxruntime"
    held_out, _ = make_rows(500, seed=14, unseen=True)
    outputs = loaded.predict_frame(held_out)
    np.testing.assert_array_equal(outputs["label"], model.predict(held_out))
    np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(held_out), atol=1e-5)


def test_native_categorical_not_exported() -> None:
    # Registering such a model fails earlier (its fitted state contains a functools.partial),
    # so the export is checked on its own.
    frame, target = make_rows(600, seed=15)
    codes = frame.assign(plan=frame["plan"].map({"basic": 0.0, "plus": 1.0, "pro": 2.0}))
    inputs = codes[["plan", *NUMERIC]]
    model = HistGradientBoostingClassifier(categorical_features=[0], max_iter=10).fit(
        inputs, target
    )
    sample = inputs.head(50)
    native = EstimatorPredictor(model, model.classes_)
    export = export_verified(model, native, sample, infer_signature(sample, model.classes_))
    assert export.verified is False
    assert export.data is None
    assert "categorical" in export.reason, export.reason


BARE_ESTIMATORS = {
    "logistic": lambda: LogisticRegression(max_iter=500),
    "boosted": lambda: HistGradientBoostingClassifier(max_iter=20, random_state=0),
    "scaled-pipeline": lambda: Pipeline(
        [("scale", StandardScaler()), ("model", LogisticRegression(max_iter=500))]
    ),
}


@pytest.mark.parametrize("name", sorted(BARE_ESTIMATORS))
def test_bare_estimator_columns(name: str) -> None:
    frame, target = make_rows(800, seed=16)
    numbers = frame[NUMERIC].fillna(0.0)
    model = BARE_ESTIMATORS[name]().fit(numbers, target)
    held_out, _ = make_rows(500, seed=17)
    package = build_package(model, numbers.head(50))
    assert_classifier_matches(model, package, held_out[NUMERIC].fillna(0.0))
