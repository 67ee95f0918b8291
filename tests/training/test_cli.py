"""``manara train`` and ``manara models`` on a local workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from manara.cli.main import build_app
from tests.training.conftest import make_spec


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "ws"
    monkeypatch.setenv("MANARA_HOME", str(home))
    monkeypatch.delenv("MANARA_SERVER_URL", raising=False)
    monkeypatch.delenv("MANARA_CONFIG", raising=False)
    return home


def write_spec(tmp_path: Path, csv_path: Path, **overrides: object) -> Path:
    spec = make_spec(Path(csv_path.name), **overrides)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def test_train_then_models(env: Path, tmp_path: Path, csv_path: Path) -> None:
    runner = CliRunner()
    trained = runner.invoke(build_app(), ["train", str(write_spec(tmp_path, csv_path))])
    assert trained.exit_code == 0, trained.output
    assert "roc_auc" in trained.output
    assert "churn:1" in trained.output

    listed = runner.invoke(build_app(), ["models", "list"])
    assert listed.exit_code == 0, listed.output
    assert "champion->1" in listed.output

    moved = runner.invoke(build_app(), ["models", "alias", "set", "churn", "staging", "1"])
    assert moved.exit_code == 0, moved.output
    shown = runner.invoke(build_app(), ["models", "show", "churn"])
    assert shown.exit_code == 0, shown.output
    assert "staging" in shown.output

    deleted = runner.invoke(build_app(), ["models", "alias", "delete", "churn", "staging"])
    assert deleted.exit_code == 0, deleted.output
    after = runner.invoke(build_app(), ["models", "show", "churn"])
    assert "champion -> 1" in after.output
    assert "staging" not in after.output
    versions = runner.invoke(build_app(), ["models", "versions", "churn"])
    assert versions.exit_code == 0, versions.output


def test_models_register_from_run(env: Path, tmp_path: Path, csv_path: Path) -> None:
    runner = CliRunner()
    spec = write_spec(tmp_path, csv_path, register=None)
    trained = runner.invoke(build_app(), ["train", str(spec)])
    assert trained.exit_code == 0, trained.output
    run_id = trained.output.split("Run ", 1)[1].split(" ", 1)[0]
    registered = runner.invoke(build_app(), ["models", "register", "fraud", "--run", run_id])
    assert registered.exit_code == 0, registered.output
    assert "fraud:1" in registered.output


def test_errors_exit_cleanly(env: Path, tmp_path: Path, csv_path: Path) -> None:
    runner = CliRunner()
    spec = write_spec(tmp_path, csv_path, target="cancelled")
    failed = runner.invoke(build_app(), ["train", str(spec)])
    assert failed.exit_code == 2, failed.output
    assert "'cancelled'" in failed.output
    assert "Traceback" not in failed.output

    missing = runner.invoke(build_app(), ["models", "show", "nothing"])
    assert missing.exit_code == 3, missing.output
    assert "not found" in missing.output
