"""Two-sample statistics of the drift tests, on plain NumPy arrays.

The hypothesis tests and the Wasserstein distance are SciPy's; this module
adds the normalisation, the population stability index (PSI) and the
binning around them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats

from manara.errors import InvalidInputError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def ks_test(reference: FloatArray, current: FloatArray) -> tuple[float, float]:
    """Return the two-sample Kolmogorov-Smirnov statistic and p-value (two-sided)."""
    result = stats.ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def wasserstein(reference: FloatArray, current: FloatArray) -> tuple[float, float]:
    """Return the Wasserstein-1 distance, raw and divided by the reference's standard deviation.

    Dividing by the (population) standard deviation makes one threshold
    usable across features of any scale. When the reference is constant its
    standard deviation is 0, so the pooled sample's is used instead. That is
    0 only when every value of both samples is the same, and then the
    distance and the normalised value are 0 too.
    """
    distance = float(stats.wasserstein_distance(reference, current))
    scale = float(np.std(reference))
    if scale == 0.0:
        scale = float(np.std(np.concatenate([reference, current])))
    normalised = distance / scale if scale > 0.0 else 0.0
    return distance, normalised


def proportions(counts: npt.ArrayLike, epsilon: float) -> FloatArray:
    """Turn counts into proportions, raising each below ``epsilon`` to ``epsilon``.

    The floored proportions are not renormalised, so the total moves by at
    most ``epsilon`` per floored bin (1e-4 with the default settings).
    """
    values = np.asarray(counts, dtype=np.float64)
    total = float(values.sum())
    if values.ndim != 1 or total <= 0.0 or bool(np.any(values < 0)):
        raise InvalidInputError(
            f"PSI needs a one-dimensional vector of non-negative counts with a positive total; "
            f"got {values.tolist()!r}."
        )
    return np.maximum(values / total, epsilon)


def psi(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike, epsilon: float) -> float:
    """Return the population stability index of two count vectors over the same bins.

    PSI = sum over bins of (q - p) * ln(q / p), with p the reference and q
    the current proportions. Every term is non-negative, and flooring empty
    bins at ``epsilon`` keeps it finite.
    """
    p = proportions(reference_counts, epsilon)
    q = proportions(current_counts, epsilon)
    if p.shape != q.shape:
        raise InvalidInputError(
            f"PSI needs count vectors over the same bins; got {p.size} reference bins "
            f"and {q.size} current bins."
        )
    return float(np.sum((q - p) * np.log(q / p)))


def quantile_edges(reference: FloatArray, bins: int) -> FloatArray:
    """Return the inner edges of ``bins`` quantile bins of the reference, without duplicates.

    The outer bins are open, so current values beyond the reference's range
    fall in the first or last bin. Ties in the reference merge bins.
    """
    inner = np.quantile(reference, np.linspace(0.0, 1.0, bins + 1))[1:-1]
    return np.unique(inner)


def bin_counts(values: FloatArray, inner_edges: FloatArray) -> IntArray:
    """Count values per bin; a value equal to an edge belongs to the bin above it."""
    positions = np.searchsorted(inner_edges, values, side="right")
    return np.bincount(positions, minlength=inner_edges.size + 1).astype(np.int64)


def numeric_psi(reference: FloatArray, current: FloatArray, bins: int, epsilon: float) -> float:
    """Return the PSI of two numeric samples over quantile bins of the reference."""
    edges = quantile_edges(reference, bins)
    return psi(bin_counts(reference, edges), bin_counts(current, edges), epsilon)


def chi_square_test(
    reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike
) -> tuple[float, float, int]:
    """Return the chi-square statistic, p-value and degrees of freedom of a homogeneity test.

    The table has one row per sample and one column per category. Yates'
    continuity correction is not applied: SciPy would apply it to 2x2 tables
    only, and without it a binary feature is judged like any other.
    Categories with no count in either sample are dropped.
    """
    table = np.vstack([np.asarray(reference_counts), np.asarray(current_counts)]).astype(np.int64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] == 0 or bool(np.any(table.sum(axis=1) == 0)):
        raise InvalidInputError(
            "The chi-square test needs at least one count in each sample; "
            f"got reference {table[0].tolist()!r} and current {table[1].tolist()!r}."
        )
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue), int(result.dof)


def histogram(
    reference: FloatArray, current: FloatArray, bins: int
) -> tuple[FloatArray, IntArray, IntArray]:
    """Return common equal-width bin edges and the counts of both samples, for charts.

    The range runs from the lower of the two 1st percentiles to the higher of
    the two 99th percentiles, and values outside it are counted in the end
    bins, so that a few outliers do not squash the chart.
    """
    low = min(float(np.quantile(reference, 0.01)), float(np.quantile(current, 0.01)))
    high = max(float(np.quantile(reference, 0.99)), float(np.quantile(current, 0.99)))
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    reference_counts, _ = np.histogram(np.clip(reference, low, high), edges)
    current_counts, _ = np.histogram(np.clip(current, low, high), edges)
    return edges, reference_counts.astype(np.int64), current_counts.astype(np.int64)
