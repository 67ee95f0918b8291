"""Univariate data drift between a reference sample and a current sample.

``compute_drift`` tests each feature on its own and then counts the drifted
features. Rules, all set by ``DriftConfig``:

- Feature type: bool, object, string and category columns are categorical.
  Integer columns with at most ``max_integer_categories`` (20) distinct
  reference values are categorical too. Other numeric columns are numeric.
  ``categorical=`` and ``numeric=`` override the choice per feature.
- Numeric features get the two-sample Kolmogorov-Smirnov test, the
  Wasserstein distance (raw and divided by the reference standard deviation)
  and PSI over reference deciles. Categorical features get the chi-square
  test and PSI, on the counts over the union of the categories of both
  samples.
- Decision: when both samples have more than ``large_sample_size`` (1,000)
  values, the normalised Wasserstein distance (> 0.1) or PSI (> 0.2)
  decides; otherwise the KS or chi-square p-value (< 0.05) does.
- Missing values (and infinities in numeric features) are dropped per
  feature, and their share in each sample is reported.
- A feature requested with ``features=`` that the current sample lacks gets
  status ``missing_in_current``. A feature with fewer than
  ``min_sample_size`` values left on either side gets ``insufficient_data``. Neither is tested
  nor counted in the share of drifted features. An empty frame is an error.
- Datetime and timedelta columns are left out of the default feature list
  and rejected when requested: convert them to numbers first.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Hashable, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from manara.errors import InvalidInputError
from manara.monitoring import statistics
from manara.monitoring.results import (
    Distribution,
    DriftConfig,
    DriftReport,
    DriftSummary,
    FeatureDrift,
    FeatureStatus,
    FeatureType,
    SampleSummary,
    TestName,
    p_value_score,
)
from manara.monitoring.statistics import FloatArray

logger = logging.getLogger(__name__)

_OTHER_LABEL = "(other)"


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Sequence[str] | None = None,
    config: DriftConfig | None = None,
    *,
    categorical: Collection[str] = (),
    numeric: Collection[str] = (),
) -> DriftReport:
    """Test every feature for drift from ``reference`` to ``current`` and summarise.

    ``features`` defaults to the columns common to both frames, minus
    datetime and timedelta columns. Leaving out ids and timestamps is the
    caller's job.
    """
    config = config or DriftConfig()
    _check_frames(reference, current)
    names = _select_features(reference, current, features)
    _check_overrides(names, categorical, numeric)

    results = tuple(
        _feature_drift(name, reference, current, config, _forced_type(name, categorical, numeric))
        for name in names
    )
    summary = _summarise(results, reference, current, config)
    logger.info(
        "drift computed features=%d tested=%d drifted=%d dataset_drift=%s",
        summary.n_features,
        summary.n_tested,
        summary.n_drifted,
        summary.dataset_drift,
    )
    return DriftReport(features=results, summary=summary, config=config)


def _check_frames(reference: pd.DataFrame, current: pd.DataFrame) -> None:
    for label, frame in (("reference", reference), ("current", current)):
        if not isinstance(frame, pd.DataFrame):
            raise InvalidInputError(
                f"The {label} sample must be a pandas DataFrame; got {type(frame).__name__}."
            )
        if len(frame) == 0:
            raise InvalidInputError(
                f"The {label} sample has no rows, so drift cannot be measured. "
                "Check the data source or widen the time window."
            )
        labels = [c for c in frame.columns if not isinstance(c, str)]
        if labels:
            raise InvalidInputError(
                f"The {label} sample has column labels that are not strings: "
                f"{', '.join(map(repr, labels[:5]))}. Name the columns, for example with "
                "frame.columns = frame.columns.map(str)."
            )
        if frame.columns.has_duplicates:
            duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
            raise InvalidInputError(
                f"The {label} sample has duplicate column names: {', '.join(duplicated)}. "
                "Rename them so that each feature has one column."
            )


def _is_temporal(series: pd.Series) -> bool:
    dtype = series.dtype
    return bool(
        pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
        or isinstance(dtype, pd.PeriodDtype)
    )


def _select_features(
    reference: pd.DataFrame, current: pd.DataFrame, features: Sequence[str] | None
) -> list[str]:
    if features is None:
        return [
            c for c in reference.columns if c in current.columns and not _is_temporal(reference[c])
        ]
    if isinstance(features, str):
        raise InvalidInputError(
            f"features must be a list of column names, not the string {features!r}."
        )
    names = list(dict.fromkeys(features))
    unknown = [n for n in names if n not in reference.columns]
    if unknown:
        raise InvalidInputError(
            f"Features not found in the reference sample: {', '.join(map(str, unknown))}. "
            f"Its columns are: {', '.join(map(str, reference.columns))}."
        )
    temporal = [n for n in names if _is_temporal(reference[n])]
    if temporal:
        raise InvalidInputError(
            f"Features {', '.join(temporal)} hold dates or durations, which the drift tests do "
            "not compare. Convert them to numbers (such as the hour of day) or leave them out."
        )
    return names


def _check_overrides(
    names: Sequence[str], categorical: Collection[str], numeric: Collection[str]
) -> None:
    for label, chosen in (("categorical", categorical), ("numeric", numeric)):
        unknown = sorted(set(chosen) - set(names))
        if unknown:
            raise InvalidInputError(
                f"{label}= names columns that are not among the features compared: "
                f"{', '.join(unknown)}. Add them to features= or fix the names."
            )
    both = sorted(set(categorical) & set(numeric))
    if both:
        raise InvalidInputError(
            f"Features {', '.join(both)} are listed as both categorical and numeric; "
            "choose one type for each."
        )


def _forced_type(
    name: str, categorical: Collection[str], numeric: Collection[str]
) -> FeatureType | None:
    if name in categorical:
        return "categorical"
    if name in numeric:
        return "numeric"
    return None


def detect_feature_type(series: pd.Series, config: DriftConfig) -> FeatureType:
    """Return the type of a reference column under the rules of the module docstring."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        return "categorical"
    if pd.api.types.is_integer_dtype(dtype):
        distinct = series.nunique(dropna=True)
        return "categorical" if distinct <= config.max_integer_categories else "numeric"
    return "numeric"


def _numeric_values(series: pd.Series, name: str, forced: bool) -> FloatArray:
    """Return the finite values of a column as floats."""
    if forced and not pd.api.types.is_numeric_dtype(series.dtype):
        try:
            series = pd.to_numeric(series, errors="raise")
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"Feature {name!r} was declared numeric but contains values that are not numbers "
                f"({exc}). Remove it from numeric= or clean the column."
            ) from exc
    values = np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    finite: FloatArray = values[np.isfinite(values)]
    return finite


def _category_counts(series: pd.Series) -> pd.Series:
    """Count the non-missing values of a column by label: the value as text.

    Whole floats are written as integers because a missing value turns an
    integer column into floats, and the category 1 of one sample must match
    the 1.0 of the other. Values are counted before they are converted, so
    only the distinct values are turned into text.
    """
    counts = series.value_counts(dropna=True)
    counts = counts[counts > 0]
    values = counts.index
    labels: npt.NDArray[np.str_] | list[str]
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        as_float = values.to_numpy(dtype=np.float64)
        if bool(np.all(np.isfinite(as_float) & (as_float == np.round(as_float)))):
            labels = as_float.astype(np.int64).astype(str)
        else:
            labels = as_float.astype(str)
    else:
        labels = [str(value) for value in values]
    return counts.groupby(np.asarray(labels, dtype=object)).sum().astype(np.int64)


def _sample_summary(rows: int, count: int) -> SampleSummary:
    return SampleSummary(rows=rows, count=count, missing_share=(rows - count) / rows)


def _not_tested(
    name: str,
    feature_type: FeatureType,
    status: FeatureStatus,
    reference: SampleSummary,
    current: SampleSummary,
    message: str,
) -> FeatureDrift:
    return FeatureDrift(
        name=name,
        feature_type=feature_type,
        status=status,
        drift_detected=False,
        test=None,
        threshold=None,
        drift_score=0.0,
        reference=reference,
        current=current,
        message=message,
    )


def _feature_drift(
    name: str,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: DriftConfig,
    forced: FeatureType | None,
) -> FeatureDrift:
    ref_column = reference[name]
    feature_type = forced or detect_feature_type(ref_column, config)
    if name not in current.columns:
        ref_count = int(ref_column.notna().sum())
        return _not_tested(
            name,
            feature_type,
            "missing_in_current",
            _sample_summary(len(reference), ref_count),
            SampleSummary(rows=len(current), count=0, missing_share=1.0),
            f"Column {name!r} is missing from the current sample.",
        )
    cur_column = current[name]
    if feature_type == "numeric":
        return _numeric_feature(name, ref_column, cur_column, config, forced is not None)
    return _categorical_feature(name, ref_column, cur_column, config)


def _too_few(reference: SampleSummary, current: SampleSummary, config: DriftConfig) -> str | None:
    if min(reference.count, current.count) >= config.min_sample_size:
        return None
    return (
        f"Not enough values to test: {reference.count} in the reference and {current.count} "
        f"in the current sample after dropping missing values; at least "
        f"{config.min_sample_size} are needed on each side."
    )


def _numeric_feature(
    name: str,
    ref_column: pd.Series,
    cur_column: pd.Series,
    config: DriftConfig,
    forced: bool,
) -> FeatureDrift:
    if not forced and not pd.api.types.is_numeric_dtype(cur_column.dtype):
        return _not_tested(
            name,
            "numeric",
            "type_mismatch",
            _sample_summary(len(ref_column), int(ref_column.notna().sum())),
            _sample_summary(len(cur_column), int(cur_column.notna().sum())),
            f"Column {name!r} is numeric ({ref_column.dtype}) in the reference but "
            f"{cur_column.dtype} in the current sample. Fix the current data, or pass it in "
            "categorical= or numeric= to compare it as one type.",
        )
    ref_values = _numeric_values(ref_column, name, forced)
    cur_values = _numeric_values(cur_column, name, forced)
    ref_summary = _sample_summary(len(ref_column), ref_values.size)
    cur_summary = _sample_summary(len(cur_column), cur_values.size)
    problem = _too_few(ref_summary, cur_summary, config)
    if problem is not None:
        return _not_tested(name, "numeric", "insufficient_data", ref_summary, cur_summary, problem)

    values = _numeric_statistics(ref_values, cur_values, config)
    distribution = _histogram(ref_values, cur_values, config.histogram_bins)
    return _tested(name, "numeric", ref_summary, cur_summary, values, distribution, config)


def _numeric_statistics(
    reference: FloatArray, current: FloatArray, config: DriftConfig
) -> dict[str, float]:
    ks_statistic, ks_p_value = statistics.ks_test(reference, current)
    distance, normalised = statistics.wasserstein(reference, current)
    return {
        "ks_statistic": ks_statistic,
        "ks_p_value": ks_p_value,
        "wasserstein": distance,
        "wasserstein_normalised": normalised,
        "psi": statistics.numeric_psi(reference, current, config.psi_bins, config.psi_epsilon),
    }


def _histogram(reference: FloatArray, current: FloatArray, bins: int) -> Distribution:
    edges, ref_counts, cur_counts = statistics.histogram(reference, current, bins)
    return Distribution(
        kind="histogram",
        labels=tuple(
            f"{low:.4g} to {high:.4g}" for low, high in zip(edges[:-1], edges[1:], strict=True)
        ),
        edges=tuple(float(e) for e in edges),
        reference_counts=tuple(int(c) for c in ref_counts),
        current_counts=tuple(int(c) for c in cur_counts),
    )


def _decide(
    feature_type: FeatureType, values: dict[str, float], large: bool, config: DriftConfig
) -> tuple[TestName, float, bool, float]:
    """Return the deciding test, its threshold, the drift flag and the drift score."""
    if feature_type == "numeric" and large:
        distance, threshold = values["wasserstein_normalised"], config.wasserstein_threshold
        return "wasserstein", threshold, distance > threshold, distance / threshold
    if feature_type == "numeric":
        p_value, alpha = values["ks_p_value"], config.ks_alpha
        return "ks", alpha, p_value < alpha, p_value_score(p_value, alpha)
    if large:
        distance, threshold = values["psi"], config.psi_threshold
        return "psi", threshold, distance > threshold, distance / threshold
    p_value, alpha = values["chi_square_p_value"], config.chi_square_alpha
    return "chi_square", alpha, p_value < alpha, p_value_score(p_value, alpha)


def _tested(
    name: str,
    feature_type: FeatureType,
    reference: SampleSummary,
    current: SampleSummary,
    values: dict[str, float],
    distribution: Distribution,
    config: DriftConfig,
) -> FeatureDrift:
    large = min(reference.count, current.count) > config.large_sample_size
    test, threshold, drifted, score = _decide(feature_type, values, large, config)
    return FeatureDrift(
        name=name,
        feature_type=feature_type,
        status="ok",
        drift_detected=bool(drifted),
        test=test,
        threshold=threshold,
        drift_score=score,
        reference=reference,
        current=current,
        statistics=values,
        distribution=distribution,
    )


def _categorical_feature(
    name: str, ref_column: pd.Series, cur_column: pd.Series, config: DriftConfig
) -> FeatureDrift:
    ref_categories = _category_counts(ref_column)
    cur_categories = _category_counts(cur_column)
    ref_summary = _sample_summary(len(ref_column), int(ref_categories.sum()))
    cur_summary = _sample_summary(len(cur_column), int(cur_categories.sum()))
    problem = _too_few(ref_summary, cur_summary, config)
    if problem is not None:
        return _not_tested(
            name, "categorical", "insufficient_data", ref_summary, cur_summary, problem
        )

    counts = pd.DataFrame({"reference": ref_categories, "current": cur_categories}).fillna(0)
    ref_counts = counts["reference"].to_numpy(dtype=np.int64)
    cur_counts = counts["current"].to_numpy(dtype=np.int64)
    chi_square, chi_p_value, dof = statistics.chi_square_test(ref_counts, cur_counts)
    values = {
        "chi_square": chi_square,
        "chi_square_p_value": chi_p_value,
        "chi_square_dof": float(dof),
        "psi": statistics.psi(ref_counts, cur_counts, config.psi_epsilon),
    }
    distribution = _category_distribution(counts, config.max_chart_categories)
    return _tested(name, "categorical", ref_summary, cur_summary, values, distribution, config)


def _category_distribution(counts: pd.DataFrame, limit: int) -> Distribution:
    """Keep the categories with the largest pooled share; sum the rest into ``(other)``."""
    shares = counts / counts.sum(axis=0).replace(0, 1)
    order = (shares["reference"] + shares["current"]).sort_values(ascending=False, kind="stable")
    ordered = counts.loc[order.index]
    if len(ordered) > limit:
        top = ordered.iloc[: limit - 1]
        rest = ordered.iloc[limit - 1 :].sum(axis=0)
        label = f"{_OTHER_LABEL} {len(ordered) - len(top)} more"
        ordered = pd.concat([top, pd.DataFrame([rest], index=[label])])
    return Distribution(
        kind="categories",
        labels=tuple(str(label) for label in ordered.index),
        edges=(),
        reference_counts=tuple(int(c) for c in ordered["reference"]),
        current_counts=tuple(int(c) for c in ordered["current"]),
    )


def _summarise(
    results: Sequence[FeatureDrift],
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: DriftConfig,
) -> DriftSummary:
    tested = [r for r in results if r.status == "ok"]
    drifted = [r for r in tested if r.drift_detected]
    share = len(drifted) / len(tested) if tested else 0.0
    return DriftSummary(
        n_features=len(results),
        n_tested=len(tested),
        n_drifted=len(drifted),
        share_drifted=share,
        drift_share=config.drift_share,
        dataset_drift=bool(tested) and share >= config.drift_share,
        reference_rows=len(reference),
        current_rows=len(current),
        not_tested=tuple(r.name for r in results if r.status != "ok"),
        reference_only_columns=_column_difference(reference.columns, current.columns),
        current_only_columns=_column_difference(current.columns, reference.columns),
    )


def _column_difference(left: pd.Index, right: pd.Index) -> tuple[str, ...]:
    present: set[Hashable] = set(right)
    return tuple(str(c) for c in left if c not in present)
