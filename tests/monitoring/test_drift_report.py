"""JSON and HTML drift reports."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from manara.errors import InvalidInputError
from manara.monitoring import DriftReport, compute_drift
from manara.monitoring.report import ReportContext, render_html, report_json, write_reports

CONTEXT = ReportContext(
    generated_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    reference="train.parquet",
    current="predictions:delay:1",
)


def sample_report() -> DriftReport:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {
            "distance": rng.gamma(2.0, 300.0, 1500),
            "carrier": rng.choice(["AA", "UA", "DL"], 1500),
            "month": rng.integers(1, 13, 1500),
            "<script>alert(1)</script>": rng.normal(0, 1, 1500),
            "gone": rng.normal(0, 1, 1500),
        }
    )
    current = pd.DataFrame(
        {
            "distance": rng.gamma(2.0, 360.0, 1200),
            "carrier": rng.choice(["AA", "UA", "B6"], 1200),
            "month": rng.integers(1, 13, 1200),
            "<script>alert(1)</script>": rng.normal(0, 1, 1200),
        }
    )
    return compute_drift(reference, current, features=list(reference.columns))


def test_json_round_trip() -> None:
    report = sample_report()

    data = json.loads(report_json(report, CONTEXT))
    restored = DriftReport.from_dict(data)

    assert restored == report
    assert data["schema_version"] == 1
    assert data["current_source"] == "predictions:delay:1"
    assert data["generated_at"] == "2024-05-01T12:00:00+00:00"


def test_json_schema_fields() -> None:
    data = json.loads(report_json(sample_report(), CONTEXT))
    distance = next(f for f in data["features"] if f["name"] == "distance")

    assert set(data["summary"]) >= {"n_features", "n_tested", "n_drifted", "dataset_drift"}
    assert distance["feature_type"] == "numeric"
    assert distance["test"] == "wasserstein"
    assert distance["statistic"] == distance["statistics"]["wasserstein_normalised"]
    assert distance["p_value"] == distance["statistics"]["ks_p_value"]
    assert set(distance["reference"]) == {"rows", "count", "missing_share"}
    assert isinstance(distance["drift_detected"], bool)


def test_from_dict_rejects_other_version() -> None:
    data = sample_report().to_dict()
    data["schema_version"] = 99

    with pytest.raises(InvalidInputError, match="schema_version"):
        DriftReport.from_dict(data)


def test_html_self_contained() -> None:
    html = render_html(sample_report(), CONTEXT)

    assert not re.search(r"https?://", html), re.search(r".{40}https?://.{40}", html)
    assert "<link" not in html
    assert "<script" not in html
    assert "@import" not in html
    assert "url(" not in html


def test_html_names_every_feature() -> None:
    report = sample_report()
    html = render_html(report, CONTEXT)

    for name in ("distance", "carrier", "month", "gone"):
        assert f">{name}<" in html, name
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<svg") == report.summary.n_tested
    assert "missing in current" in html


def test_html_summary_sorted_by_score() -> None:
    report = sample_report()
    html = render_html(report, CONTEXT)
    table = html[html.index("Features by drift score") : html.index('<p class="rules">')]
    expected = [f.name for f in report.ranked()]
    positions = [
        table.index(f">{name.replace('<', '&lt;').replace('>', '&gt;')}<") for name in expected
    ]

    assert positions == sorted(positions)
    assert report.ranked()[0].drift_score >= report.ranked()[1].drift_score


def test_write_reports(tmp_path: Path) -> None:
    report = sample_report()

    files = write_reports(report, tmp_path / "reports", CONTEXT)

    assert files.html.name == "drift-20240501T120000Z.html"
    assert DriftReport.from_dict(json.loads(files.json.read_text())) == report
    assert files.html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in files.html.parent.iterdir()) == [
        files.html.name,
        files.json.name,
    ]
