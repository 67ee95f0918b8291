"""Write a drift report as JSON and as one self-contained HTML page.

The HTML page needs nothing but a browser: the CSS is inline and the charts
are inline SVG drawn here from the binned counts kept in the report, so it
opens offline and loads nothing from the network.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import orjson

from manara import __version__
from manara.files import private_dir, write_private
from manara.monitoring.results import Distribution, DriftReport, FeatureDrift

logger = logging.getLogger(__name__)

_CHART_WIDTH = 420
_HISTOGRAM_HEIGHT = 140
_ROW_HEIGHT = 16
_LABEL_WIDTH = 130
_MARGIN = 4

_STATISTIC_LABELS = {
    "ks_statistic": "KS statistic",
    "ks_p_value": "KS p-value",
    "wasserstein": "Wasserstein distance",
    "wasserstein_normalised": "Wasserstein / reference std",
    "psi": "PSI",
    "chi_square": "Chi-square",
    "chi_square_p_value": "Chi-square p-value",
    "chi_square_dof": "Degrees of freedom",
}
_TEST_LABELS = {
    "ks": "Kolmogorov-Smirnov",
    "wasserstein": "Wasserstein (normalised)",
    "chi_square": "Chi-square",
    "psi": "PSI",
}


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    json: Path


@dataclass(frozen=True)
class ReportContext:
    """Description of the compared samples and the report time, shown in the header and stored in the JSON."""

    generated_at: datetime
    reference: str = "reference"
    current: str = "current"
    title: str = "Data drift report"


def report_json(report: DriftReport, context: ReportContext) -> bytes:
    """Serialise the report to JSON: ``DriftReport.to_dict`` plus where the samples came from."""
    data = report.to_dict()
    data["generated_at"] = context.generated_at.isoformat()
    data["reference_source"] = context.reference
    data["current_source"] = context.current
    return orjson.dumps(data, option=orjson.OPT_INDENT_2)


def render_html(report: DriftReport, context: ReportContext) -> str:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("manara.monitoring", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["number"] = format_number
    environment.filters["percent"] = lambda value: f"{100 * value:.1f}%"
    template = environment.get_template("drift_report.html")
    ranked = report.ranked()
    return template.render(
        report=report,
        context=context,
        version=__version__,
        ranked=ranked,
        views=[_feature_view(index, result) for index, result in enumerate(ranked)],
        test_labels=_TEST_LABELS,
    )


def write_reports(
    report: DriftReport, output_dir: Path, context: ReportContext, stem: str | None = None
) -> ReportFiles:
    """Write ``<stem>.html`` and ``<stem>.json`` into ``output_dir``, each via a rename."""
    stem = stem or f"drift-{context.generated_at.strftime('%Y%m%dT%H%M%SZ')}"
    private_dir(output_dir)
    files = ReportFiles(html=output_dir / f"{stem}.html", json=output_dir / f"{stem}.json")
    write_atomic(files.json, report_json(report, context))
    write_atomic(files.html, render_html(report, context).encode("utf-8"))
    logger.info("drift report written html=%s json=%s", files.html, files.json)
    return files


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` (mode 0600) to a temporary file beside ``path``, then rename it into place."""
    write_private(path, data)


def format_number(value: float | None) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "0"
    return f"{value:.4g}"


def _feature_view(index: int, result: FeatureDrift) -> dict[str, Any]:
    return {
        "anchor": f"feature-{index}",
        "result": result,
        "statistics": [
            (_STATISTIC_LABELS.get(key, key), value) for key, value in result.statistics.items()
        ],
        "chart": _chart(result.distribution) if result.distribution else None,
    }


def _shares(counts: tuple[int, ...]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def _chart(distribution: Distribution) -> dict[str, Any]:
    if distribution.kind == "histogram":
        return _histogram_chart(distribution)
    return _category_chart(distribution)


def _bar_title(label: str, sample: str, share: float, count: int) -> str:
    return f"{label}: {sample} {100 * share:.1f}% ({count})"


def _histogram_chart(distribution: Distribution) -> dict[str, Any]:
    """Lay out side-by-side vertical bars of the share of each sample per bin."""
    reference = _shares(distribution.reference_counts)
    current = _shares(distribution.current_counts)
    top = max(reference + current) or 1.0
    plot_height = _HISTOGRAM_HEIGHT - 18
    slot = (_CHART_WIDTH - 2 * _MARGIN) / len(reference)

    bars = []
    for i, label in enumerate(distribution.labels):
        for offset, sample, shares, counts in (
            (0.1, "reference", reference, distribution.reference_counts),
            (0.5, "current", current, distribution.current_counts),
        ):
            height = plot_height * shares[i] / top
            bars.append(
                {
                    "x": round(_MARGIN + slot * (i + offset), 2),
                    "y": round(plot_height - height, 2),
                    "width": round(slot * 0.4, 2),
                    "height": round(height, 2),
                    "sample": sample,
                    "title": _bar_title(label, sample, shares[i], counts[i]),
                }
            )

    bottom = _HISTOGRAM_HEIGHT - 4
    low, high = format_number(distribution.edges[0]), format_number(distribution.edges[-1])
    texts = [
        {"x": _MARGIN, "y": bottom, "anchor": "start", "text": low},
        {"x": _CHART_WIDTH - _MARGIN, "y": bottom, "anchor": "end", "text": high},
    ]
    return {
        "width": _CHART_WIDTH,
        "height": _HISTOGRAM_HEIGHT,
        "bars": bars,
        "texts": texts,
        "axis_y": plot_height,
    }


def _category_chart(distribution: Distribution) -> dict[str, Any]:
    """Lay out one row per category with a reference bar above a current bar."""
    reference = _shares(distribution.reference_counts)
    current = _shares(distribution.current_counts)
    top = max(reference + current) or 1.0
    plot_width = _CHART_WIDTH - _LABEL_WIDTH - 2 * _MARGIN
    bars, texts = [], []
    for i, label in enumerate(distribution.labels):
        y = _MARGIN + i * _ROW_HEIGHT
        short = label if len(label) <= 20 else label[:19] + "…"
        texts.append({"x": _LABEL_WIDTH - 4, "y": y + 11, "anchor": "end", "text": short})
        for offset, sample, shares, counts in (
            (1, "reference", reference, distribution.reference_counts),
            (8, "current", current, distribution.current_counts),
        ):
            bars.append(
                {
                    "x": _LABEL_WIDTH,
                    "y": y + offset,
                    "width": round(plot_width * shares[i] / top, 2),
                    "height": 6,
                    "sample": sample,
                    "title": _bar_title(label, sample, shares[i], counts[i]),
                }
            )
    height = 2 * _MARGIN + len(distribution.labels) * _ROW_HEIGHT
    return {"width": _CHART_WIDTH, "height": height, "bars": bars, "texts": texts, "axis_y": None}
