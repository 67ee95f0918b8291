"""compute_drift: feature types, test choice, decisions, missing data and the summary."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from manara.errors import InvalidInputError
from manara.monitoring import DriftConfig, compute_drift, detect_feature_type


def numeric_frame(seed: int, rows: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(10.0 + shift, 2.0, rows)})


def category_frame(seed: int, rows: int, weights: list[float]) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"c": rng.choice(["a", "b", "c"], rows, p=weights)})


def test_numeric_values_match_scipy() -> None:
    reference = numeric_frame(0, 400)
    current = numeric_frame(1, 300, shift=0.3)
    ref_x = reference["x"].to_numpy()
    cur_x = current["x"].to_numpy()

    result = compute_drift(reference, current).feature("x")
    ks = stats.ks_2samp(ref_x, cur_x)
    distance = stats.wasserstein_distance(ref_x, cur_x)

    assert result.feature_type == "numeric"
    assert result.statistics["ks_statistic"] == pytest.approx(ks.statistic, rel=1e-12)
    assert result.statistics["ks_p_value"] == pytest.approx(ks.pvalue, rel=1e-12)
    assert result.statistics["wasserstein"] == pytest.approx(distance, rel=1e-12)
    assert result.statistics["wasserstein_normalised"] == pytest.approx(
        distance / np.std(ref_x), rel=1e-12
    )
    assert math.isfinite(result.statistics["psi"])


def test_categorical_values_match_scipy() -> None:
    reference = category_frame(0, 500, [0.5, 0.3, 0.2])
    current = category_frame(1, 400, [0.4, 0.3, 0.3])
    ref_counts = reference["c"].value_counts().reindex(["a", "b", "c"]).to_numpy()
    cur_counts = current["c"].value_counts().reindex(["a", "b", "c"]).to_numpy()

    result = compute_drift(reference, current).feature("c")
    expected = stats.chi2_contingency(np.vstack([ref_counts, cur_counts]), correction=False)

    assert result.feature_type == "categorical"
    assert result.statistics["chi_square"] == pytest.approx(expected.statistic, rel=1e-12)
    assert result.statistics["chi_square_p_value"] == pytest.approx(expected.pvalue, rel=1e-12)
    assert result.statistics["chi_square_dof"] == 2


@pytest.mark.parametrize("rows", [300, 3000])
def test_shift_detected(rows: int) -> None:
    report = compute_drift(numeric_frame(0, rows), numeric_frame(1, rows, shift=1.0))

    assert report.feature("x").drift_detected, report.feature("x")
    assert report.summary.dataset_drift


@pytest.mark.parametrize("rows", [300, 3000])
def test_same_distribution_not_detected(rows: int) -> None:
    report = compute_drift(numeric_frame(0, rows), numeric_frame(1, rows))

    assert not report.feature("x").drift_detected, report.feature("x")
    assert not report.summary.dataset_drift


@pytest.mark.parametrize("rows", [300, 3000])
def test_categorical_shift_detected(rows: int) -> None:
    report = compute_drift(
        category_frame(0, rows, [0.6, 0.3, 0.1]), category_frame(1, rows, [0.2, 0.3, 0.5])
    )

    assert report.feature("c").drift_detected, report.feature("c")


@pytest.mark.parametrize("rows", [300, 3000])
def test_categorical_same_not_detected(rows: int) -> None:
    weights = [0.5, 0.3, 0.2]
    report = compute_drift(category_frame(0, rows, weights), category_frame(1, rows, weights))

    assert not report.feature("c").drift_detected, report.feature("c")


def test_sample_size_rule_switches_test() -> None:
    config = DriftConfig(large_sample_size=1000)
    small = compute_drift(numeric_frame(0, 1000), numeric_frame(1, 1000), config=config)
    large = compute_drift(numeric_frame(0, 1001), numeric_frame(1, 1001), config=config)
    one_small = compute_drift(numeric_frame(0, 5000), numeric_frame(1, 900), config=config)

    assert small.feature("x").test == "ks"
    assert small.feature("x").threshold == config.ks_alpha
    assert large.feature("x").test == "wasserstein"
    assert large.feature("x").threshold == config.wasserstein_threshold
    assert one_small.feature("x").test == "ks"


def test_sample_size_rule_categorical() -> None:
    weights = [0.5, 0.3, 0.2]
    small = compute_drift(category_frame(0, 500, weights), category_frame(1, 500, weights))
    large = compute_drift(category_frame(0, 2000, weights), category_frame(1, 2000, weights))

    assert small.feature("c").test == "chi_square"
    assert large.feature("c").test == "psi"


def test_large_samples_ignore_trivial_shift() -> None:
    # A shift of 0.05 standard deviations over 200,000 rows: KS calls it
    # significant, the effect-size rule does not.
    rng = np.random.default_rng(11)
    reference = pd.DataFrame({"x": rng.normal(0.0, 1.0, 200_000)})
    current = pd.DataFrame({"x": rng.normal(0.05, 1.0, 200_000)})

    result = compute_drift(reference, current).feature("x")

    assert result.statistics["ks_p_value"] < 0.05
    assert result.test == "wasserstein"
    assert not result.drift_detected


def test_drift_score_threshold_is_one() -> None:
    drifted = compute_drift(numeric_frame(0, 300), numeric_frame(1, 300, shift=1.0)).feature("x")
    stable = compute_drift(numeric_frame(0, 300), numeric_frame(1, 300)).feature("x")
    p_value = drifted.statistics["ks_p_value"]

    assert drifted.drift_score > 1.0
    assert drifted.drift_score == pytest.approx(math.log(max(p_value, 1e-300)) / math.log(0.05))
    assert stable.drift_score < 1.0


def test_unseen_categories_in_current() -> None:
    reference = pd.DataFrame({"c": ["a"] * 60 + ["b"] * 40})
    current = pd.DataFrame({"c": ["a"] * 30 + ["b"] * 20 + ["new"] * 50})
    table = np.array([[60, 40, 0], [30, 20, 50]])
    expected = stats.chi2_contingency(table, correction=False)

    result = compute_drift(reference, current).feature("c")

    assert result.status == "ok"
    assert result.drift_detected
    assert result.statistics["chi_square"] == pytest.approx(expected.statistic)
    assert math.isfinite(result.statistics["psi"])
    assert result.distribution is not None
    assert "new" in result.distribution.labels


def test_category_only_in_reference() -> None:
    reference = pd.DataFrame({"c": ["a"] * 50 + ["gone"] * 50})
    current = pd.DataFrame({"c": ["a"] * 100})

    result = compute_drift(reference, current).feature("c")

    assert result.drift_detected
    assert math.isfinite(result.statistics["psi"])


def test_feature_type_detection() -> None:
    config = DriftConfig()
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "flag": rng.random(100) > 0.5,
            "city": rng.choice(["x", "y"], 100),
            "month": rng.integers(1, 13, 100),
            "minutes": rng.integers(0, 1000, 100),
            "price": rng.random(100),
            "kind": pd.Categorical(rng.choice(["p", "q"], 100)),
            "nullable": pd.array(rng.integers(0, 3, 100), dtype="Int64"),
        }
    )

    types = {name: detect_feature_type(frame[name], config) for name in frame.columns}

    assert types == {
        "flag": "categorical",
        "city": "categorical",
        "month": "categorical",
        "minutes": "numeric",
        "price": "numeric",
        "kind": "categorical",
        "nullable": "categorical",
    }


def test_integer_category_limit() -> None:
    frame = pd.DataFrame({"n": np.arange(100) % 21})

    assert detect_feature_type(frame["n"], DriftConfig()) == "numeric"
    assert detect_feature_type(frame["n"], DriftConfig(max_integer_categories=21)) == "categorical"


def test_type_overrides() -> None:
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"month": rng.integers(1, 13, 200), "code": rng.random(200)})
    current = pd.DataFrame({"month": rng.integers(1, 13, 200), "code": rng.random(200)})

    report = compute_drift(reference, current, numeric=["month"], categorical=["code"])

    assert report.feature("month").feature_type == "numeric"
    assert report.feature("code").feature_type == "categorical"


def test_override_errors() -> None:
    frame = numeric_frame(0, 50)

    with pytest.raises(InvalidInputError, match="both categorical and numeric"):
        compute_drift(frame, frame, categorical=["x"], numeric=["x"])
    with pytest.raises(InvalidInputError, match="not among the features"):
        compute_drift(frame, frame, categorical=["y"])


def test_numeric_override_rejects_text() -> None:
    frame = pd.DataFrame({"s": ["a", "b", "c"]})

    with pytest.raises(InvalidInputError, match="declared numeric"):
        compute_drift(frame, frame, numeric=["s"])


def test_integer_categories_match_with_missing_values() -> None:
    # A missing value makes the current column float64: 1.0 must still match 1.
    reference = pd.DataFrame({"k": [1, 2, 3] * 40})
    current = pd.DataFrame({"k": [1.0, 2.0, 3.0, np.nan] * 30})

    result = compute_drift(reference, current).feature("k")

    assert result.feature_type == "categorical"
    assert result.distribution is not None
    assert sorted(result.distribution.labels) == ["1", "2", "3"]
    assert not result.drift_detected


def test_missing_values_dropped_and_reported() -> None:
    rng = np.random.default_rng(2)
    values = rng.normal(0.0, 1.0, 200)
    reference = pd.DataFrame({"x": values})
    with_gaps = values.copy()
    with_gaps[:50] = np.nan
    with_gaps[50:60] = np.inf
    current = pd.DataFrame({"x": with_gaps})
    expected = stats.ks_2samp(values, with_gaps[60:])

    result = compute_drift(reference, current).feature("x")

    assert result.reference.missing_share == 0.0
    assert result.current.missing_share == pytest.approx(60 / 200)
    assert result.current.count == 140
    assert result.current.rows == 200
    assert result.statistics["ks_p_value"] == pytest.approx(expected.pvalue)


def test_feature_missing_in_current() -> None:
    reference = pd.DataFrame({"x": np.arange(50.0), "gone": np.arange(50.0)})
    current = pd.DataFrame({"x": np.arange(50.0)})

    report = compute_drift(reference, current, features=["x", "gone"])
    gone = report.feature("gone")

    assert gone.status == "missing_in_current"
    assert not gone.drift_detected
    assert gone.current.missing_share == 1.0
    assert "missing from the current sample" in gone.message
    assert report.summary.n_tested == 1
    assert report.summary.not_tested == ("gone",)
    assert report.summary.reference_only_columns == ("gone",)


def test_default_features_are_common_columns() -> None:
    reference = pd.DataFrame({"x": [1.0, 2.0], "target": [0, 1]})
    current = pd.DataFrame({"x": [1.0, 2.5], "extra": ["a", "b"]})

    report = compute_drift(reference, current)

    assert [f.name for f in report.features] == ["x"]
    assert report.summary.current_only_columns == ("extra",)


def test_all_missing_feature_insufficient() -> None:
    reference = pd.DataFrame({"x": np.arange(50.0), "c": ["a", "b"] * 25})
    current = pd.DataFrame({"x": [np.nan] * 10, "c": [None] * 10})

    report = compute_drift(reference, current)

    assert report.feature("x").status == "insufficient_data"
    assert report.feature("c").status == "insufficient_data"
    assert "Not enough values" in report.feature("x").message
    assert report.summary.n_tested == 0
    assert not report.summary.dataset_drift


def test_empty_frame_rejected() -> None:
    frame = numeric_frame(0, 10)

    with pytest.raises(InvalidInputError, match="current sample has no rows"):
        compute_drift(frame, frame.iloc[:0])
    with pytest.raises(InvalidInputError, match="reference sample has no rows"):
        compute_drift(frame.iloc[:0], frame)


def test_unknown_feature_rejected() -> None:
    frame = numeric_frame(0, 10)

    with pytest.raises(InvalidInputError, match="not found in the reference"):
        compute_drift(frame, frame, features=["nope"])


def test_datetime_columns() -> None:
    times = pd.date_range("2024-01-01", periods=20, freq="h", tz="UTC")
    frame = pd.DataFrame({"time": times, "x": np.arange(20.0)})

    report = compute_drift(frame, frame)

    assert [f.name for f in report.features] == ["x"]
    with pytest.raises(InvalidInputError, match="dates or durations"):
        compute_drift(frame, frame, features=["time"])


def test_type_mismatch_reported() -> None:
    reference = pd.DataFrame({"x": np.arange(30.0)})
    current = pd.DataFrame({"x": ["1", "2", "three"] * 10})

    result = compute_drift(reference, current).feature("x")

    assert result.status == "type_mismatch"
    assert "numeric" in result.message


def test_dataset_share_threshold() -> None:
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({name: rng.normal(0, 1, 300) for name in "abcd"})
    current = pd.DataFrame({name: rng.normal(0, 1, 300) for name in "abcd"})
    current["a"] += 2.0
    current["b"] += 2.0

    half = compute_drift(reference, current)
    strict = compute_drift(reference, current, config=DriftConfig(drift_share=0.75))

    assert half.summary.n_drifted == 2
    assert half.summary.share_drifted == pytest.approx(0.5)
    assert half.summary.dataset_drift
    assert not strict.summary.dataset_drift
    assert half.drifted_features == ["a", "b"]
    assert [f.name for f in half.ranked()][:2] in (["a", "b"], ["b", "a"])


def test_config_validation() -> None:
    with pytest.raises(InvalidInputError, match="ks_alpha"):
        DriftConfig(ks_alpha=1.5)
    with pytest.raises(InvalidInputError, match="drift_share"):
        DriftConfig(drift_share=0.0)
    with pytest.raises(InvalidInputError, match="psi_bins"):
        DriftConfig(psi_bins=0)


def test_non_string_columns_rejected() -> None:
    frame = pd.DataFrame(np.zeros((3, 2)))

    with pytest.raises(InvalidInputError, match="not strings"):
        compute_drift(frame, frame)


def test_constant_reference_detects_change() -> None:
    reference = pd.DataFrame({"x": np.zeros(2000)})
    current = pd.DataFrame({"x": np.ones(2000)})

    result = compute_drift(reference, current, numeric=["x"]).feature("x")

    assert result.test == "wasserstein"
    assert result.drift_detected
    assert math.isfinite(result.drift_score)


def test_unused_categories_ignored() -> None:
    categories = ["a", "b", "unused"]
    reference = pd.DataFrame({"c": pd.Categorical(["a", "b"] * 50, categories=categories)})
    current = pd.DataFrame({"c": pd.Categorical(["a", "b", "b"] * 30, categories=categories)})
    expected = stats.chi2_contingency(np.array([[50, 50], [30, 60]]), correction=False)

    result = compute_drift(reference, current).feature("c")

    assert result.distribution is not None
    assert sorted(result.distribution.labels) == ["a", "b"]
    assert result.statistics["chi_square"] == pytest.approx(expected.statistic)
    assert result.statistics["chi_square_dof"] == 1
