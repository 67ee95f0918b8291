"""Candidate flight-delay classifiers and their validation metrics.

Both candidates are scikit-learn pipelines that take the columns of
``model_inputs`` and impute missing numbers themselves, so the same frame
feeds training, the registry's signature and the inference requests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from manara.quickstart.data import CATEGORICAL_FEATURES, FEATURE_COLUMNS, NUMERIC_FEATURES, TARGET

MISSING_CATEGORY = "unknown"
"""Value that replaces a missing categorical feature, such as the type of an unlisted plane."""

SEED = 13


def model_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """Select the model's input columns from a features frame.

    Missing categorical values become ``MISSING_CATEGORY`` because the
    Open Inference Protocol has no null for ``BYTES`` tensors. Missing
    numbers stay NaN, and the pipelines impute them.
    """
    inputs = frame.loc[:, list(FEATURE_COLUMNS)].copy()
    for column in CATEGORICAL_FEATURES:
        inputs[column] = inputs[column].fillna(MISSING_CATEGORY).astype("str")
    for column in NUMERIC_FEATURES:
        inputs[column] = inputs[column].astype("float64")
    return inputs.reset_index(drop=True)


def logistic_regression(params: Mapping[str, Any]) -> Pipeline:
    """Build a one-hot encoded, standardised logistic regression."""
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    encode = ColumnTransformer(
        [
            ("numeric", numeric, list(NUMERIC_FEATURES)),
            (
                "categorical",
                OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=50),
                list(CATEGORICAL_FEATURES),
            ),
        ]
    )
    classifier = LogisticRegression(C=float(params.get("C", 1.0)), max_iter=500)
    return Pipeline([("encode", encode), ("classify", classifier)])


def gradient_boosting(params: Mapping[str, Any]) -> Pipeline:
    """Build a histogram gradient-boosted tree classifier on ordinal-encoded categories.

    The codes are split on as numbers. Native categorical splits
    (``categorical_features=``) would store a ``functools.partial`` in the
    fitted model, which the registry rejects as unsafe to load.
    """
    encode = ColumnTransformer(
        [
            (
                "categorical",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan),
                list(CATEGORICAL_FEATURES),
            ),
            ("numeric", "passthrough", list(NUMERIC_FEATURES)),
        ]
    )
    classifier = HistGradientBoostingClassifier(
        learning_rate=float(params.get("learning_rate", 0.1)),
        max_iter=int(params.get("max_iter", 200)),
        max_leaf_nodes=int(params.get("max_leaf_nodes", 63)),
        early_stopping=False,
        random_state=SEED,
    )
    return Pipeline([("encode", encode), ("classify", classifier)])


@dataclass(frozen=True)
class Candidate:
    name: str
    build: Callable[[Mapping[str, Any]], Pipeline]
    params: Mapping[str, Any]


CANDIDATES: tuple[Candidate, ...] = (
    Candidate("logistic-regression", logistic_regression, {"C": 1.0}),
    Candidate(
        "hist-gradient-boosting",
        gradient_boosting,
        {"learning_rate": 0.1, "max_iter": 200, "max_leaf_nodes": 63},
    ),
)


def classification_metrics(outcomes: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Score probabilities of the positive class against 0/1 outcomes.

    ROC AUC is NaN when the outcomes contain only one class, as in a tiny
    sample, because it is undefined there.
    """
    outcomes = np.asarray(outcomes, dtype="int64")
    probabilities = np.clip(np.asarray(probabilities, dtype="float64"), 1e-15, 1 - 1e-15)
    both_classes = len(np.unique(outcomes)) == 2
    return {
        "roc_auc": float(roc_auc_score(outcomes, probabilities)) if both_classes else float("nan"),
        "log_loss": float(log_loss(outcomes, probabilities, labels=[0, 1])),
        "accuracy": float(accuracy_score(outcomes, probabilities >= 0.5)),
        "brier": float(brier_score_loss(outcomes, probabilities)),
        "positive_rate": float(outcomes.mean()),
    }


def positive_probability(model: Pipeline, inputs: pd.DataFrame) -> np.ndarray:
    """Return the model's probability that each flight is late."""
    classes = list(model.classes_)
    column = classes.index(1)
    probabilities: np.ndarray = model.predict_proba(inputs)[:, column]
    return probabilities


def fit_candidate(candidate: Candidate, frame: pd.DataFrame) -> Pipeline:
    """Fit one candidate on a features frame."""
    model = candidate.build(candidate.params)
    model.fit(model_inputs(frame), frame[TARGET].to_numpy(dtype="int64"))
    return model
