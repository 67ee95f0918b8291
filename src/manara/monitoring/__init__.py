"""Monitoring: data drift between a reference sample and current data, and its reports."""

from manara.monitoring.drift import compute_drift, detect_feature_type
from manara.monitoring.periods import PeriodDrift, drift_by_period
from manara.monitoring.results import (
    Distribution,
    DriftConfig,
    DriftReport,
    DriftSummary,
    FeatureDrift,
    SampleSummary,
)

__all__ = [
    "Distribution",
    "DriftConfig",
    "DriftReport",
    "DriftSummary",
    "FeatureDrift",
    "PeriodDrift",
    "SampleSummary",
    "compute_drift",
    "detect_feature_type",
    "drift_by_period",
]
