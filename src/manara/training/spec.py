"""Training job specifications: the YAML file ``manara train`` reads.

Example::

    name: churn-hgb
    experiment: churn
    data:
      path: customers.parquet          # CSV or Parquet, relative to the spec file
      timestamp_column: signup_time
      assume_timezone: UTC             # only when the column has no zone
    target: churned
    features:
      numeric: [amount, visits]
      categorical: [plan]
    split:
      train_until: 2026-03-01T00:00:00Z
      test_from: 2026-03-01T00:00:00Z  # or: test_fraction: 0.2
    estimator:
      type: hist_gradient_boosting     # a short name or a class path from ESTIMATORS
      params: {max_iter: 200}
    metrics: [roc_auc, accuracy]
    register: {model: churn, alias: champion}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from manara.errors import InvalidInputError

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class EstimatorEntry:
    class_path: str
    task: Task
    extra: str | None = None
    """The ``manara[...]`` extra that installs the estimator's package, if optional."""


_ENTRIES = {
    "logistic_regression": EstimatorEntry(
        "sklearn.linear_model.LogisticRegression", "classification"
    ),
    "hist_gradient_boosting": EstimatorEntry(
        "sklearn.ensemble.HistGradientBoostingClassifier", "classification"
    ),
    "hist_gradient_boosting_regressor": EstimatorEntry(
        "sklearn.ensemble.HistGradientBoostingRegressor", "regression"
    ),
    "random_forest": EstimatorEntry("sklearn.ensemble.RandomForestClassifier", "classification"),
    "random_forest_regressor": EstimatorEntry(
        "sklearn.ensemble.RandomForestRegressor", "regression"
    ),
    "ridge": EstimatorEntry("sklearn.linear_model.Ridge", "regression"),
    "xgboost": EstimatorEntry("xgboost.XGBClassifier", "classification", "boosting"),
    "xgboost_regressor": EstimatorEntry("xgboost.XGBRegressor", "regression", "boosting"),
    "lightgbm": EstimatorEntry("lightgbm.LGBMClassifier", "classification", "boosting"),
    "lightgbm_regressor": EstimatorEntry("lightgbm.LGBMRegressor", "regression", "boosting"),
}
ESTIMATORS: dict[str, EstimatorEntry] = {
    **_ENTRIES,
    **{entry.class_path: entry for entry in _ENTRIES.values()},
}
"""The estimators a spec may name, by short name or class path; nothing else is imported."""

CLASSIFICATION_METRICS = ("roc_auc", "accuracy", "f1", "log_loss", "precision", "recall")
REGRESSION_METRICS = ("rmse", "mae", "r2")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DataSpec(_Strict):
    path: Path = Field(description="CSV or Parquet file; relative paths are from the spec file.")
    timestamp_column: str | None = None
    assume_timezone: str | None = Field(
        default=None,
        description="IANA zone (such as UTC) given to timestamps that carry no zone.",
    )

    @model_validator(mode="after")
    def _check_zone(self) -> DataSpec:
        if self.assume_timezone is not None:
            try:
                ZoneInfo(self.assume_timezone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(
                    f"unknown time zone {self.assume_timezone!r}; use an IANA name such as UTC"
                ) from exc
        return self


class FeaturesSpec(_Strict):
    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_features(self) -> FeaturesSpec:
        if not self.numeric and not self.categorical:
            raise ValueError("list at least one numeric or categorical feature")
        overlap = set(self.numeric) & set(self.categorical)
        if overlap:
            raise ValueError(f"columns listed as both numeric and categorical: {sorted(overlap)}")
        return self

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]


class SplitSpec(_Strict):
    train_until: AwareDatetime | None = Field(
        default=None, description="Rows with a timestamp before this are training rows."
    )
    test_from: AwareDatetime | None = Field(
        default=None, description="Rows with a timestamp at or after this are test rows."
    )
    test_fraction: float | None = Field(default=None, gt=0.0, lt=1.0)
    seed: int = 0

    @model_validator(mode="after")
    def _check_split(self) -> SplitSpec:
        by_time = self.train_until is not None or self.test_from is not None
        if by_time and self.test_fraction is not None:
            raise ValueError("give either train_until/test_from or test_fraction, not both")
        if by_time and (self.train_until is None or self.test_from is None):
            raise ValueError("a time-based split needs both train_until and test_from")
        if self.train_until and self.test_from and self.test_from < self.train_until:
            raise ValueError("test_from must not be before train_until")
        return self

    @property
    def by_time(self) -> bool:
        return self.train_until is not None


class EstimatorSpec(_Strict):
    type: str = Field(description=f"One of: {', '.join(sorted(_ENTRIES))} (or a class path).")
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_type(self) -> EstimatorSpec:
        if self.type not in ESTIMATORS:
            raise ValueError(
                f"unknown estimator {self.type!r}; use one of {', '.join(sorted(_ENTRIES))}"
            )
        return self

    @property
    def entry(self) -> EstimatorEntry:
        return ESTIMATORS[self.type]


class RegisterSpec(_Strict):
    model: str
    alias: str | None = None


class TrainingSpec(_Strict):
    name: str = Field(description="Run name.")
    experiment: str
    data: DataSpec
    target: str
    features: FeaturesSpec
    split: SplitSpec = Field(default_factory=lambda: SplitSpec(test_fraction=0.2))
    estimator: EstimatorSpec
    metrics: list[str] = Field(default_factory=list)
    # "register" is the YAML key; the attribute name differs because pydantic models
    # inherit ABCMeta.register.
    registration: RegisterSpec | None = Field(default=None, alias="register")

    @model_validator(mode="after")
    def _check(self) -> TrainingSpec:
        if self.target in self.features.columns:
            raise ValueError(f"the target {self.target!r} is also listed as a feature")
        if self.split.by_time and self.data.timestamp_column is None:
            raise ValueError("a time-based split needs data.timestamp_column")
        allowed = CLASSIFICATION_METRICS if self.task == "classification" else REGRESSION_METRICS
        unknown = [metric for metric in self.metrics if metric not in allowed]
        if unknown:
            raise ValueError(
                f"metrics {unknown} do not apply to {self.task}; use {', '.join(allowed)}"
            )
        return self

    @property
    def task(self) -> Task:
        return self.estimator.entry.task

    @property
    def metric_names(self) -> list[str]:
        if self.metrics:
            return list(self.metrics)
        if self.task == "classification":
            return ["roc_auc", "accuracy", "f1", "log_loss"]
        return list(REGRESSION_METRICS)


def parse_spec(data: Any, base_dir: Path | None = None, source: str = "the spec") -> TrainingSpec:
    """Validate a spec mapping; relative data paths resolve against ``base_dir``."""
    try:
        spec = TrainingSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'spec'}: {error['msg']}"
            for error in exc.errors()
        )
        raise InvalidInputError(f"Invalid training spec in {source}: {problems}.") from exc
    if base_dir is not None and not spec.data.path.is_absolute():
        data_spec = spec.data.model_copy(update={"path": base_dir / spec.data.path})
        spec = spec.model_copy(update={"data": data_spec})
    return spec


def load_spec(path: str | Path) -> TrainingSpec:
    """Read and validate a YAML spec file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"Cannot read the training spec {path}: {exc.strerror}.") from exc
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"Invalid YAML in the training spec {path}: {exc}") from exc
    return parse_spec(data, base_dir=path.parent, source=str(path))
