"""The ``manara drift`` command on files and prediction logs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from manara.cli.main import build_app
from tests.monitoring.helpers import write_prediction_log


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "ws"
    monkeypatch.setenv("MANARA_HOME", str(home))
    monkeypatch.delenv("MANARA_SERVER_URL", raising=False)
    return home


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A reference, a shifted current and an unshifted current sample."""
    rng = np.random.default_rng(0)

    def frame(rows: int, shift: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "dist": rng.normal(500.0 + shift * 100, 100.0, rows),
                "hour": rng.normal(12.0 + shift, 3.0, rows),
                "carrier": rng.choice(["AA", "UA"], rows, p=[0.5 - 0.3 * shift, 0.5 + 0.3 * shift]),
                "id": np.arange(rows),
            }
        )

    reference = tmp_path / "reference.parquet"
    shifted = tmp_path / "shifted.csv"
    same = tmp_path / "same.csv"
    frame(400, 0.0).to_parquet(reference)
    frame(300, 1.0).to_csv(shifted, index=False)
    frame(300, 0.0).to_csv(same, index=False)
    return reference, shifted, same


def test_prints_table_and_writes_reports(home: Path, files: tuple[Path, Path, Path]) -> None:
    reference, shifted, _ = files

    result = CliRunner().invoke(
        build_app(),
        [
            "drift",
            "--reference",
            str(reference),
            "--current",
            str(shifted),
            "--features",
            "dist,hour,carrier",
        ],
    )

    assert result.exit_code == 0, result.output
    for name in ("dist", "hour", "carrier"):
        assert name in result.output
    assert "Dataset drift detected: 3 of 3" in result.output
    html = sorted((home / "reports").glob("drift-*.html"))
    reports = sorted((home / "reports").glob("drift-*.json"))
    assert len(html) == 1
    assert len(reports) == 1
    assert f"HTML report: {html[0]}" in result.output
    assert json.loads(reports[0].read_text())["summary"]["n_drifted"] == 3


def test_fail_on_drift(home: Path, files: tuple[Path, Path, Path], tmp_path: Path) -> None:
    reference, shifted, same = files
    common = [
        "--reference",
        str(reference),
        "--features",
        "dist,hour,carrier",
        "--output-dir",
        str(tmp_path / "out"),
    ]
    runner = CliRunner()

    drifted = runner.invoke(
        build_app(), ["drift", *common, "--current", str(shifted), "--fail-on-drift"]
    )
    stable = runner.invoke(
        build_app(), ["drift", *common, "--current", str(same), "--fail-on-drift"]
    )
    without_flag = runner.invoke(build_app(), ["drift", *common, "--current", str(shifted)])

    assert drifted.exit_code == 1, drifted.output
    assert stable.exit_code == 0, stable.output
    assert "No dataset drift" in stable.output
    assert without_flag.exit_code == 0, without_flag.output


def test_json_output(home: Path, files: tuple[Path, Path, Path], tmp_path: Path) -> None:
    reference, shifted, _ = files

    result = CliRunner().invoke(
        build_app(),
        [
            "drift",
            "--reference",
            str(reference),
            "--current",
            str(shifted),
            "--json",
            "--features",
            "dist,carrier",
            "--categorical",
            "carrier",
            "--output-dir",
            str(tmp_path / "out"),
        ],
    )

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [f["name"] for f in data["features"]] == ["dist", "carrier"]
    assert data["features"][1]["feature_type"] == "categorical"
    assert len(list((tmp_path / "out").glob("*.json"))) == 1


def test_numeric_override_option(home: Path, files: tuple[Path, Path, Path]) -> None:
    reference, _, same = files

    result = CliRunner().invoke(
        build_app(),
        [
            "drift",
            "--reference",
            str(reference),
            "--current",
            str(same),
            "--json",
            "--features",
            "id",
            "--numeric",
            "id",
        ],
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["features"][0]["feature_type"] == "numeric"


def test_prediction_log_window(home: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    start = datetime(2024, 3, 1, tzinfo=UTC)
    times = [start + timedelta(minutes=10 * i) for i in range(600)]
    # The first half matches the reference, the second half is shifted.
    values = np.concatenate([rng.normal(0.0, 1.0, 300), rng.normal(3.0, 1.0, 300)])
    write_prediction_log(home / "predictions", "delay", 1, times, {"x": values})
    reference = tmp_path / "reference.csv"
    pd.DataFrame({"x": rng.normal(0.0, 1.0, 500), "target": 1}).to_csv(reference, index=False)
    common = ["--reference", str(reference), "--current", "predictions:delay:1"]

    early = CliRunner().invoke(
        build_app(), ["drift", *common, "--json", "--until", "2024-03-03T02:00:00Z"]
    )
    late = CliRunner().invoke(
        build_app(), ["drift", *common, "--json", "--since", "2024-03-03T02:00:00+00:00"]
    )

    assert early.exit_code == 0, early.output
    assert late.exit_code == 0, late.output
    early_data = json.loads(early.stdout)
    late_data = json.loads(late.stdout)
    assert early_data["summary"]["current_rows"] == 300
    assert late_data["summary"]["current_rows"] == 300
    assert not early_data["summary"]["dataset_drift"]
    assert late_data["summary"]["dataset_drift"]


def test_naive_since_rejected(home: Path, files: tuple[Path, Path, Path]) -> None:
    reference, shifted, _ = files

    result = CliRunner().invoke(
        build_app(),
        [
            "drift",
            "--reference",
            str(reference),
            "--current",
            "predictions:delay",
            "--since",
            "2024-03-01T00:00:00",
        ],
    )

    assert result.exit_code == 2, result.output
    assert "has no timezone" in result.output
    assert "Traceback" not in result.output


def test_missing_file_error(home: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        build_app(),
        ["drift", "--reference", str(tmp_path / "a.csv"), "--current", str(tmp_path / "b.csv")],
    )

    assert result.exit_code == 3, result.output
    assert "not found" in result.output
    assert "Traceback" not in result.output


def test_unknown_feature_error(home: Path, files: tuple[Path, Path, Path]) -> None:
    reference, shifted, _ = files

    result = CliRunner().invoke(
        build_app(),
        ["drift", "--reference", str(reference), "--current", str(shifted), "--features", "nope"],
    )

    assert result.exit_code == 2, result.output
    assert "nope" in result.output
