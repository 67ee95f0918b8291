"""Served-model performance per month, once the real outcomes are known, and latency percentiles."""

from __future__ import annotations

import numpy as np
import pandas as pd

from manara.errors import InvalidInputError
from manara.quickstart.models import classification_metrics


def monthly_performance(
    months: np.ndarray, outcomes: np.ndarray, probabilities: np.ndarray
) -> pd.DataFrame:
    """Score predictions against outcomes for each month, one row per month in order.

    Columns: ``month``, ``rows``, ``roc_auc``, ``accuracy``, ``log_loss``,
    ``brier``, ``positive_rate`` (the observed share of late flights) and
    ``mean_probability`` (the predicted share).
    """
    lengths = {len(months), len(outcomes), len(probabilities)}
    if len(lengths) != 1:
        raise InvalidInputError(
            f"months, outcomes and probabilities must have the same length; got {sorted(lengths)}."
        )
    months = np.asarray(months)
    outcomes = np.asarray(outcomes)
    probabilities = np.asarray(probabilities, dtype="float64")
    rows: list[dict[str, float | int]] = []
    for month in np.unique(months):
        selected = months == month
        metrics = classification_metrics(outcomes[selected], probabilities[selected])
        rows.append(
            {
                "month": int(month),
                "rows": int(selected.sum()),
                **metrics,
                "mean_probability": float(probabilities[selected].mean()),
            }
        )
    return pd.DataFrame(rows)


def latency_percentiles(latencies: np.ndarray) -> dict[str, float]:
    """Return the p50, p90 and p99 of request latencies, in milliseconds."""
    if len(latencies) == 0:
        return {"p50_ms": float("nan"), "p90_ms": float("nan"), "p99_ms": float("nan")}
    values = np.percentile(np.asarray(latencies, dtype="float64") * 1000.0, [50, 90, 99])
    return {"p50_ms": float(values[0]), "p90_ms": float(values[1]), "p99_ms": float(values[2])}
