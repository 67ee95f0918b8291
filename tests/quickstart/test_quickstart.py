"""``manara quickstart`` end to end on a small sample, run twice on one workspace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from manara.cli.main import build_app
from manara.config import Settings
from manara.monitoring.sources import read_prediction_log
from manara.quickstart.data import TRAINING_END, build_flight_features, split_by_time
from manara.registry.service import RegistryService
from manara.tracking.service import TrackingService
from manara.workspace import Workspace

SAMPLE = 0.05
SEED = 13


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "ws"
    monkeypatch.setenv("MANARA_HOME", str(home))
    for name in ("MANARA_SERVER_URL", "MANARA_DATABASE_URL", "MANARA_ARTIFACT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def finished(home: Path) -> Iterator[Workspace]:
    runner = CliRunner()
    # The OpenMP threads of the tree models spin-wait for each other, which
    # costs minutes on a machine whose cores are busy with other tests.
    with threadpool_limits(1):
        results = [
            runner.invoke(build_app(), ["quickstart", "--sample", str(SAMPLE)]) for _ in range(2)
        ]
    for result in results:
        assert result.exit_code == 0, result.output
        assert "mnr_" not in result.output, "an API key was printed"
        assert "manara drift --reference run:" in result.output
        assert "Audit log verified:" in result.output
    ws = Workspace.open(Settings(home=home))
    try:
        yield ws
    finally:
        ws.close()


def _serving_rows(home: Path) -> int:
    features = build_flight_features(home / "data")
    sampled = features.sample(frac=SAMPLE, random_state=SEED)
    return len(split_by_time(sampled, TRAINING_END)[1])


@pytest.mark.slow
def test_quickstart_twice(finished: Workspace, home: Path) -> None:
    workspace = finished
    context = workspace.context()
    tracking = TrackingService(context)
    registry = RegistryService(context)

    experiment = tracking.get_experiment_by_name("flight-delay")
    runs = tracking.search_runs([experiment.id])
    assert len(runs) == 4
    assert {run.status for run in runs} == {"FINISHED"}
    assert all("roc_auc" in run.metrics for run in runs)
    assert all(any(d.artifact_digest for d in run.inputs) for run in runs)

    model = registry.get_model("flight-delay")
    assert model.latest_version == 2
    assert model.aliases == {"champion": 2}
    champion = registry.resolve("flight-delay@champion")
    assert champion.run_id in {run.id for run in runs}

    log = read_prediction_log(workspace.settings.predictions_dir, "flight-delay", 2)
    assert len(log) == _serving_rows(home)
    assert set(log["input.month"]) == {9, 10, 11, 12}

    reports = workspace.settings.reports_dir
    for version in (1, 2):
        assert (reports / f"quickstart-v{version}-drift.html").is_file()
        assert (reports / f"quickstart-v{version}-drift-2013-12.json").is_file()
