"""Drift settings and results: plain dataclasses with a stable dictionary form.

``DriftReport.to_dict`` defines the JSON schema of the drift report, version
``SCHEMA_VERSION``. ``DriftReport.from_dict`` reads it back, so a report
written to JSON and read again compares equal to the original.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from manara.errors import InvalidInputError

SCHEMA_VERSION = 1

FeatureType = Literal["numeric", "categorical"]
FeatureStatus = Literal["ok", "missing_in_current", "insufficient_data", "type_mismatch"]
TestName = Literal["ks", "wasserstein", "chi_square", "psi"]

# A p-value of exactly 0 (SciPy underflow) is scored as this value so that
# drift scores stay finite and JSON-safe.
_MIN_P_VALUE = 1e-300


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds and rules of the drift tests.

    A feature is tested with the distance rule (normalised Wasserstein for
    numeric features, PSI for categorical ones) when both samples have more
    than ``large_sample_size`` non-missing values, and with the hypothesis
    test (KS, chi-square) otherwise. With thousands of rows the p-values of
    KS and chi-square become tiny for differences too small to matter, so
    large samples are judged by effect size instead. Evidently applies a
    similar 1,000-row rule to the reference sample alone; Manara requires
    both samples to be large because the power of a two-sample test is
    bounded by the smaller sample.
    """

    large_sample_size: int = 1000
    """Both samples above this many values: the distance rule decides."""
    ks_alpha: float = 0.05
    """Numeric, small samples: drift when the KS p-value is below this."""
    wasserstein_threshold: float = 0.1
    """Numeric, large samples: drift when the normalised Wasserstein distance exceeds this."""
    chi_square_alpha: float = 0.05
    """Categorical, small samples: drift when the chi-square p-value is below this."""
    psi_threshold: float = 0.2
    """Categorical, large samples: drift when PSI exceeds this.

    A common rule of thumb reads PSI from 0.1 to 0.2 as a moderate shift and
    above 0.2 as a large one.
    """
    psi_epsilon: float = 1e-4
    """Floor for empty-bin proportions in PSI, so that PSI stays finite."""
    psi_bins: int = 10
    """Quantile bins of the reference for the PSI of numeric features (10 = deciles)."""
    max_integer_categories: int = 20
    """Integer features with at most this many distinct reference values are categorical."""
    min_sample_size: int = 1
    """Fewer non-missing values than this on either side: status ``insufficient_data``."""
    drift_share: float = 0.5
    """Dataset drift when at least this share of the tested features drifted."""
    histogram_bins: int = 20
    """Bins of the numeric histograms kept for charts."""
    max_chart_categories: int = 20
    """Categories kept for charts; the rest are summed into one ``(other)`` bar."""

    def __post_init__(self) -> None:
        for name in ("ks_alpha", "chi_square_alpha", "psi_epsilon"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise InvalidInputError(
                    f"Invalid drift setting {name}={value!r}: it must be between 0 and 1."
                )
        if not 0.0 < self.drift_share <= 1.0:
            raise InvalidInputError(
                f"Invalid drift setting drift_share={self.drift_share!r}: "
                "it must be above 0 and at most 1."
            )
        for name in ("wasserstein_threshold", "psi_threshold"):
            value = getattr(self, name)
            if not (value > 0.0 and math.isfinite(value)):
                raise InvalidInputError(
                    f"Invalid drift setting {name}={value!r}: it must be a positive number."
                )
        for name in ("psi_bins", "histogram_bins", "max_chart_categories", "min_sample_size"):
            if getattr(self, name) < 1:
                raise InvalidInputError(
                    f"Invalid drift setting {name}={getattr(self, name)!r}: it must be at least 1."
                )
        for name in ("large_sample_size", "max_integer_categories"):
            if getattr(self, name) < 0:
                raise InvalidInputError(
                    f"Invalid drift setting {name}={getattr(self, name)!r}: it must be at least 0."
                )


@dataclass(frozen=True)
class SampleSummary:
    """Row counts of one feature in one sample."""

    rows: int
    """Rows of the sample."""
    count: int
    """Values left after dropping missing (and, for numeric features, infinite) values."""
    missing_share: float
    """Share of the rows that were dropped; 1.0 when the column is absent."""


@dataclass(frozen=True)
class Distribution:
    """Binned counts of one feature in both samples, kept for charts.

    A histogram has ``edges`` (one more than the counts) and labels built
    from them; a category chart has labels and no edges.
    """

    kind: Literal["histogram", "categories"]
    labels: tuple[str, ...]
    edges: tuple[float, ...]
    reference_counts: tuple[int, ...]
    current_counts: tuple[int, ...]


@dataclass(frozen=True)
class FeatureDrift:
    """The drift result of one feature.

    ``statistics`` contains every statistic of the feature's type, not
    only the one that decided: ``ks_statistic``, ``ks_p_value``,
    ``wasserstein``, ``wasserstein_normalised`` and ``psi`` for numeric
    features, and ``chi_square``, ``chi_square_p_value``, ``chi_square_dof``
    and ``psi`` for categorical ones. It is empty when the feature was not
    tested (``status`` other than ``ok``).
    """

    name: str
    feature_type: FeatureType
    status: FeatureStatus
    drift_detected: bool
    test: TestName | None
    """The test that decided ``drift_detected``."""
    threshold: float | None
    """Threshold of the deciding test: a p-value level or a distance."""
    drift_score: float
    """Deciding value relative to its threshold: above 1 means drift, 0 when not tested."""
    reference: SampleSummary
    current: SampleSummary
    statistics: Mapping[str, float] = field(default_factory=dict)
    distribution: Distribution | None = None
    message: str = ""
    """Reason the feature was not tested; empty for a tested feature."""

    @property
    def statistic(self) -> float | None:
        """Value of the deciding statistic (a test statistic or a distance)."""
        key = {"ks": "ks_statistic", "wasserstein": "wasserstein_normalised"}.get(
            self.test or "", self.test or ""
        )
        return self.statistics.get(key)

    @property
    def p_value(self) -> float | None:
        """P-value of the feature's hypothesis test, reported even when a distance decided."""
        key = "ks_p_value" if self.feature_type == "numeric" else "chi_square_p_value"
        return self.statistics.get(key)


@dataclass(frozen=True)
class DriftSummary:
    n_features: int
    n_tested: int
    """Features with status ``ok``; the share of drifted features is taken over these."""
    n_drifted: int
    share_drifted: float
    drift_share: float
    """Threshold on ``share_drifted`` for dataset drift."""
    dataset_drift: bool
    reference_rows: int
    current_rows: int
    not_tested: tuple[str, ...] = ()
    reference_only_columns: tuple[str, ...] = ()
    current_only_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class DriftReport:
    features: tuple[FeatureDrift, ...]
    summary: DriftSummary
    config: DriftConfig

    def feature(self, name: str) -> FeatureDrift:
        for result in self.features:
            if result.name == name:
                return result
        raise InvalidInputError(
            f"Feature {name!r} is not in this drift report. "
            f"Features: {', '.join(f.name for f in self.features)}."
        )

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drift_detected]

    def ranked(self) -> list[FeatureDrift]:
        """Features by decreasing drift score; untested features last."""
        return sorted(self.features, key=lambda f: (f.status != "ok", -f.drift_score, f.name))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "summary": _plain(asdict(self.summary)),
            "config": asdict(self.config),
            "features": [_feature_to_dict(f) for f in self.features],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReport:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise InvalidInputError(
                f"Unsupported drift report schema_version {version!r}; this Manara reads "
                f"version {SCHEMA_VERSION}. Compute the report again with this version."
            )
        summary_fields = dict(data["summary"])
        for name in ("not_tested", "reference_only_columns", "current_only_columns"):
            summary_fields[name] = tuple(summary_fields.get(name, ()))
        return cls(
            features=tuple(_feature_from_dict(f) for f in data["features"]),
            summary=DriftSummary(**summary_fields),
            config=DriftConfig(**_known_fields(DriftConfig, data["config"])),
        )


def p_value_score(p_value: float, alpha: float) -> float:
    """Score a p-value so that 1 is the threshold: log(p) / log(alpha)."""
    return math.log(max(p_value, _MIN_P_VALUE)) / math.log(alpha) if p_value < 1 else 0.0


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _feature_to_dict(result: FeatureDrift) -> dict[str, Any]:
    data: dict[str, Any] = _plain(asdict(result))
    data["statistics"] = dict(result.statistics)
    data["statistic"] = result.statistic
    data["p_value"] = result.p_value
    return data


def _known_fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def _feature_from_dict(data: Mapping[str, Any]) -> FeatureDrift:
    values = _known_fields(FeatureDrift, data)
    values["reference"] = SampleSummary(**data["reference"])
    values["current"] = SampleSummary(**data["current"])
    values["statistics"] = {k: float(v) for k, v in data["statistics"].items()}
    distribution = data.get("distribution")
    if distribution is not None:
        values["distribution"] = Distribution(
            kind=distribution["kind"],
            labels=tuple(distribution["labels"]),
            edges=tuple(float(e) for e in distribution["edges"]),
            reference_counts=tuple(distribution["reference_counts"]),
            current_counts=tuple(distribution["current_counts"]),
        )
    return FeatureDrift(**values)
