"""Test-set metrics, computed with scikit-learn's reference implementations.

For more than two classes, ``f1``, ``precision`` and ``recall`` are macro
averages and ``roc_auc`` is one-vs-rest. For two classes the positive
class is the second of the model's sorted classes. A metric that is not
defined on the test set (``roc_auc`` with one class present) is left out
and its reason returned, as is any
metric scikit-learn finds undefined on the test labels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

_ClassifierMetric = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], float]


def _average(classes: np.ndarray) -> dict[str, Any]:
    if len(classes) == 2:
        return {"average": "binary", "pos_label": classes[1]}
    return {"average": "macro"}


def _roc_auc(y: np.ndarray, labels: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    if len(classes) == 2:
        return float(skm.roc_auc_score(y == classes[1], proba[:, 1]))
    return float(skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes))


_CLASSIFIER_METRICS: dict[str, _ClassifierMetric] = {
    "roc_auc": _roc_auc,
    "accuracy": lambda y, labels, proba, classes: float(skm.accuracy_score(y, labels)),
    "f1": lambda y, labels, proba, classes: float(
        skm.f1_score(y, labels, zero_division=0, **_average(classes))
    ),
    "precision": lambda y, labels, proba, classes: float(
        skm.precision_score(y, labels, zero_division=0, **_average(classes))
    ),
    "recall": lambda y, labels, proba, classes: float(
        skm.recall_score(y, labels, zero_division=0, **_average(classes))
    ),
    "log_loss": lambda y, labels, proba, classes: float(skm.log_loss(y, proba, labels=classes)),
}

_REGRESSION_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "rmse": lambda y, p: float(np.sqrt(skm.mean_squared_error(y, p))),
    "mae": lambda y, p: float(skm.mean_absolute_error(y, p)),
    "r2": lambda y, p: float(skm.r2_score(y, p)),
}


def evaluate(
    model: Any, features: Any, target: np.ndarray, names: Sequence[str], task: str
) -> tuple[dict[str, float], dict[str, str]]:
    """Return (metric name to value, skipped metric name to reason)."""
    values: dict[str, float] = {}
    skipped: dict[str, str] = {}
    if task == "regression":
        predictions = np.asarray(model.predict(features), dtype=np.float64)
        for name in names:
            values[name] = _REGRESSION_METRICS[name](target, predictions)
        return values, skipped
    classes = np.asarray(model.classes_)
    labels = np.asarray(model.predict(features))
    proba = np.asarray(model.predict_proba(features))
    present = np.unique(target)
    for name in names:
        if name == "roc_auc" and len(present) < 2:
            skipped[name] = "the test split has a single class"
            continue
        try:
            values[name] = _CLASSIFIER_METRICS[name](target, labels, proba, classes)
        except ValueError as exc:
            # scikit-learn raises when a metric is undefined on these labels.
            skipped[name] = str(exc)
    return values, skipped
