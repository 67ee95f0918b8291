"""Fixtures of the training tests: a seeded synthetic customer table and a spec factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.sdk_modes import client  # noqa: F401


def customers(rows: int = 600, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    signup = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(
        np.sort(rng.integers(0, 90 * 24, rows)), unit="h"
    )
    amount = rng.normal(50.0, 15.0, rows)
    visits = rng.integers(0, 20, rows)
    plan = rng.choice(["basic", "plus", "pro"], rows)
    score = 0.06 * (amount - 50) + 0.8 * (plan == "pro") - 0.1 * visits + rng.normal(0, 0.6, rows)
    return pd.DataFrame(
        {
            "signup_time": signup,
            "amount": amount,
            "visits": visits,
            "plan": plan,
            "churned": (score > -0.8).astype(np.int64),
        }
    )


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    path = tmp_path / "customers.csv"
    frame = customers()
    frame["signup_time"] = frame["signup_time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def parquet_path(tmp_path: Path) -> Path:
    path = tmp_path / "customers.parquet"
    customers().to_parquet(path, index=False)
    return path


def make_spec(path: Path, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "churn-test",
        "experiment": "churn",
        "data": {"path": str(path), "timestamp_column": "signup_time"},
        "target": "churned",
        "features": {"numeric": ["amount", "visits"], "categorical": ["plan"]},
        "split": {"train_until": "2026-03-01T00:00:00Z", "test_from": "2026-03-01T00:00:00Z"},
        "estimator": {"type": "logistic_regression", "params": {"max_iter": 300}},
        "metrics": ["roc_auc", "accuracy", "f1", "log_loss"],
        "register": {"model": "churn", "alias": "champion"},
    }
    spec.update(overrides)
    return spec
