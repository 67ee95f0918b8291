"""The drift statistics against SciPy and against PSI written out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from manara.errors import InvalidInputError
from manara.monitoring import statistics

EPSILON = 1e-4


def reference_psi(expected: np.ndarray, actual: np.ndarray, epsilon: float) -> float:
    """PSI straight from its definition, independent of the code under test."""
    p = expected / expected.sum()
    q = actual / actual.sum()
    p = np.where(p < epsilon, epsilon, p)
    q = np.where(q < epsilon, epsilon, q)
    total = 0.0
    for p_i, q_i in zip(p, q, strict=True):
        total += (q_i - p_i) * math.log(q_i / p_i)
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.normal(0.0, 1.0, 300)
    current = rng.normal(0.2, 1.3, 250)
    expected = stats.ks_2samp(reference, current)

    statistic, p_value = statistics.ks_test(reference, current)

    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wasserstein_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.lognormal(3.0, 0.5, 500)
    current = rng.lognormal(3.1, 0.6, 400)
    expected = stats.wasserstein_distance(reference, current)

    distance, normalised = statistics.wasserstein(reference, current)

    assert distance == pytest.approx(expected, rel=1e-12)
    assert normalised == pytest.approx(expected / np.std(reference), rel=1e-12)


def test_wasserstein_normalised_is_scale_free() -> None:
    rng = np.random.default_rng(3)
    reference = rng.normal(0.0, 1.0, 400)
    current = rng.normal(0.5, 1.0, 400)

    _, small = statistics.wasserstein(reference, current)
    _, large = statistics.wasserstein(reference * 1000.0, current * 1000.0)

    assert large == pytest.approx(small, rel=1e-9)


def test_wasserstein_constant_reference() -> None:
    reference = np.zeros(50)
    current = np.ones(50)

    distance, normalised = statistics.wasserstein(reference, current)
    pooled_std = np.std(np.concatenate([reference, current]))

    assert distance == pytest.approx(1.0)
    assert normalised == pytest.approx(1.0 / pooled_std)
    assert statistics.wasserstein(reference, reference.copy()) == (0.0, 0.0)


@pytest.mark.parametrize("categories", [2, 3, 7])
def test_chi_square_matches_scipy(categories: int) -> None:
    rng = np.random.default_rng(categories)
    reference = rng.integers(5, 200, categories)
    current = rng.integers(5, 200, categories)
    expected = stats.chi2_contingency(np.vstack([reference, current]), correction=False)

    statistic, p_value, dof = statistics.chi_square_test(reference, current)

    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-12)
    assert dof == expected.dof


def test_chi_square_category_only_in_current() -> None:
    reference = np.array([50, 30, 0])
    current = np.array([40, 30, 10])
    expected = stats.chi2_contingency(np.vstack([reference, current]), correction=False)

    statistic, p_value, dof = statistics.chi_square_test(reference, current)

    assert statistic == pytest.approx(expected.statistic)
    assert p_value == pytest.approx(expected.pvalue)
    assert dof == 2


def test_chi_square_rejects_empty_sample() -> None:
    with pytest.raises(InvalidInputError, match="at least one count"):
        statistics.chi_square_test(np.array([1, 2]), np.array([0, 0]))


def test_psi_hand_checked() -> None:
    # Reference 50/50, current 25/75:
    # PSI = (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5)
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)

    assert statistics.psi([50, 50], [25, 75], EPSILON) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.27465, abs=1e-5)


def test_psi_hand_checked_three_bins() -> None:
    # Proportions 0.2/0.3/0.5 against 0.1/0.3/0.6; the middle bin adds nothing.
    expected = (0.1 - 0.2) * math.log(0.1 / 0.2) + (0.6 - 0.5) * math.log(0.6 / 0.5)

    assert statistics.psi([20, 30, 50], [10, 30, 60], EPSILON) == pytest.approx(expected)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_psi_matches_formula(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.integers(0, 500, 12).astype(float)
    current = rng.integers(0, 500, 12).astype(float)

    value = statistics.psi(reference, current, EPSILON)

    assert value == pytest.approx(reference_psi(reference, current, EPSILON), rel=1e-12)


@pytest.mark.parametrize(
    ("reference", "current"),
    [([100, 0, 50], [60, 40, 50]), ([60, 40, 50], [100, 0, 50]), ([10, 0], [0, 10])],
)
def test_psi_finite_with_empty_bin(reference: list[int], current: list[int]) -> None:
    value = statistics.psi(reference, current, EPSILON)
    expected = reference_psi(np.array(reference, float), np.array(current, float), EPSILON)

    assert math.isfinite(value)
    assert value == pytest.approx(expected, rel=1e-12)


def test_psi_zero_for_same_proportions() -> None:
    assert statistics.psi([10, 20, 30], [20, 40, 60], EPSILON) == pytest.approx(0.0, abs=1e-15)


def test_psi_rejects_bad_counts() -> None:
    with pytest.raises(InvalidInputError, match="positive total"):
        statistics.psi([0, 0], [1, 1], EPSILON)
    with pytest.raises(InvalidInputError, match="non-negative"):
        statistics.psi([-1, 3], [1, 1], EPSILON)
    with pytest.raises(InvalidInputError, match="same bins"):
        statistics.psi([1, 2, 3], [1, 1], EPSILON)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=30)
    .flatmap(
        lambda size: st.tuples(
            st.lists(st.integers(0, 10**6), min_size=size, max_size=size),
            st.lists(st.integers(0, 10**6), min_size=size, max_size=size),
        )
    )
    .filter(lambda pair: sum(pair[0]) > 0 and sum(pair[1]) > 0)
)
def test_psi_non_negative_finite(pair: tuple[list[int], list[int]]) -> None:
    reference, current = pair
    value = statistics.psi(reference, current, EPSILON)

    assert math.isfinite(value)
    assert value >= 0.0


def test_numeric_psi_uses_reference_deciles() -> None:
    rng = np.random.default_rng(5)
    reference = rng.normal(0.0, 1.0, 2000)
    current = rng.normal(0.4, 1.0, 1500)
    edges = np.quantile(reference, np.linspace(0, 1, 11))[1:-1]
    # Independent binning: digitize puts a value equal to an edge in the bin above it.
    reference_counts = np.bincount(np.digitize(reference, edges), minlength=10)
    current_counts = np.bincount(np.digitize(current, edges), minlength=10)

    value = statistics.numeric_psi(reference, current, 10, EPSILON)

    assert reference_counts.tolist() == [200] * 10
    assert value == pytest.approx(
        reference_psi(reference_counts.astype(float), current_counts.astype(float), EPSILON)
    )


def test_numeric_psi_values_beyond_reference_range() -> None:
    reference = np.arange(100.0)
    current = np.concatenate([np.full(50, -1000.0), np.full(50, 1000.0)])

    value = statistics.numeric_psi(reference, current, 10, EPSILON)
    expected = reference_psi(np.full(10, 10.0), np.array([50.0] + [0.0] * 8 + [50.0]), EPSILON)

    assert value == pytest.approx(expected)


def test_histogram_counts_every_value() -> None:
    rng = np.random.default_rng(6)
    reference = rng.exponential(1.0, 1000)
    current = rng.exponential(2.0, 800)

    edges, reference_counts, current_counts = statistics.histogram(reference, current, 20)

    assert len(edges) == 21
    assert int(reference_counts.sum()) == 1000
    assert int(current_counts.sum()) == 800
