"""Everything Manara writes under MANARA_HOME is private to its user, whatever the umask."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from manara.config import Settings
from manara.monitoring.report import write_atomic
from manara.serving.prediction_log import write_parquet
from manara.tracking.service import TrackingService
from manara.workspace import Workspace


@pytest.fixture
def loose_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def shared_paths(home: Path) -> list[str]:
    """Return every path under ``home`` (and ``home``) that group or others can access."""
    paths = [home, *home.rglob("*")]
    return [
        f"{path} {stat.S_IMODE(path.stat().st_mode):04o}"
        for path in paths
        if stat.S_IMODE(path.stat().st_mode) & 0o077
    ]


def test_home_private_after_use(tmp_path: Path, loose_umask: None) -> None:
    settings = Settings(home=tmp_path / "home")
    workspace = Workspace.open(settings)
    try:
        workspace.init()
        tracking = TrackingService(workspace.context())
        experiment = tracking.create_experiment("permissions")
        run = tracking.create_run(experiment.id)
        tracking.log_artifact(run.id, "notes/readme.txt", b"personal data")
        part = settings.predictions_dir / "churn" / "v1" / "part-0.parquet"
        write_parquet(pa.table({"amount": [1.0, 2.0]}), part)
        write_atomic(settings.reports_dir / "churn" / "drift.json", b"{}")
    finally:
        workspace.close()

    assert (settings.home / "manara.db").is_file()
    assert part.is_file()
    assert shared_paths(settings.home) == []


def test_loose_home_tightened(
    tmp_path: Path, loose_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    with caplog.at_level(logging.WARNING, logger="manara.workspace"):
        Workspace.open(Settings(home=home)).close()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert "changed it to 0700" in caplog.text


def test_existing_database_tightened(tmp_path: Path, loose_umask: None) -> None:
    home = tmp_path / "home"
    Workspace.open(Settings(home=home)).close()
    database = home / "manara.db"
    os.chmod(database, 0o644)
    Workspace.open(Settings(home=home)).close()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
