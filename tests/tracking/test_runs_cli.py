"""``manara runs`` and ``manara experiments`` on a local workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from manara.cli.main import build_app
from manara.cli.runs import compare_values
from manara.client import Client
from manara.config import Settings


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A workspace with two finished runs in experiment 'churn'."""
    home = tmp_path / "home"
    with Client(settings=Settings(home=home)) as client:
        for name, depth, auc in (("shallow", 3, 0.71), ("deep", 9, 0.88)):
            with client.start_run(experiment="churn", run_name=name) as run:
                run.log_params({"depth": depth, "model": "xgb"})
                run.log_metric("auc", auc)
    return home


def _invoke(home: Path, *args: str, columns: int = 200) -> tuple[int, str]:
    runner = CliRunner()
    env = {"MANARA_HOME": str(home), "COLUMNS": str(columns), "MANARA_SERVER_URL": ""}
    result = runner.invoke(build_app(), list(args), env=env)
    return result.exit_code, result.output


def _run_ids(home: Path) -> dict[str, str]:
    with Client(settings=Settings(home=home)) as client:
        return {run.name: run.id for run in client.tracking.search_runs()}


def test_runs_list(home: Path) -> None:
    code, output = _invoke(home, "runs", "list", "--experiment", "churn")
    assert code == 0, output
    assert "shallow" in output
    assert "deep" in output
    assert "auc=0.88" in output


def test_runs_list_filter_and_order(home: Path) -> None:
    code, output = _invoke(
        home, "runs", "list", "--filter", "metrics.auc > 0.8", "--order-by", "metrics.auc DESC"
    )
    assert code == 0, output
    assert "deep" in output
    assert "shallow" not in output


def test_runs_list_bad_filter(home: Path) -> None:
    code, output = _invoke(home, "runs", "list", "--filter", "metrics.auc >> 1")
    assert code == 2, output
    assert "position 13" in output


def test_runs_show(home: Path) -> None:
    run_id = _run_ids(home)["deep"]
    code, output = _invoke(home, "runs", "show", run_id)
    assert code == 0, output
    assert run_id in output
    assert "FINISHED" in output
    assert "churn" in output
    assert "depth" in output


def test_runs_show_unknown(home: Path) -> None:
    code, output = _invoke(home, "runs", "show", "nope")
    assert code == 3, output
    assert "'nope' not found" in output


def test_runs_show_prefix(home: Path) -> None:
    run_id = _run_ids(home)["deep"]
    code, output = _invoke(home, "runs", "show", run_id[:8].upper())
    assert code == 0, output
    assert run_id in output


def test_runs_show_unknown_prefix(home: Path) -> None:
    ids = _run_ids(home).values()
    prefix = next(p for p in ("00000000", "ffffffff") if not any(i.startswith(p) for i in ids))
    code, output = _invoke(home, "runs", "show", prefix)
    assert code == 3, output
    assert "no run id starts with it" in output


def test_runs_ambiguous_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The ninth character distinguishes the ids.
    ids = iter(f"787d196b{n:x}{'0' * 23}" for n in range(16))
    monkeypatch.setattr("manara.tracking.service.new_id", lambda: next(ids))
    home = tmp_path / "twins"
    with Client(settings=Settings(home=home)) as client:
        experiment = client.tracking.create_experiment("twins")
        created = [client.tracking.create_run(experiment.id).id for _ in range(2)]

    code, output = _invoke(home, "runs", "show", "787d196b")
    assert code == 2, output
    assert "ambiguous" in output
    for run_id in created:
        assert run_id in output, "each candidate run is listed"
    code, output = _invoke(home, "runs", "show", created[1][:9])
    assert code == 0, output
    assert created[1] in output


def test_runs_compare_prefixes(home: Path) -> None:
    ids = _run_ids(home)
    code, output = _invoke(home, "runs", "compare", ids["shallow"][:8], ids["deep"][:10])
    assert code == 0, output
    assert ids["shallow"] in output
    assert ids["deep"] in output
    assert "0.88" in output


def test_runs_compare(home: Path) -> None:
    ids = _run_ids(home)
    code, output = _invoke(home, "runs", "compare", ids["shallow"], ids["deep"])
    assert code == 0, output
    assert ids["shallow"] in output
    assert "0.71" in output
    assert "0.88" in output
    assert "xgb" in output


def test_compare_names_at_80_columns(home: Path) -> None:
    ids = _run_ids(home)
    code, output = _invoke(home, "runs", "compare", ids["shallow"], ids["deep"], columns=80)
    assert code == 0, output
    for name in ("status", "depth", "model", "auc", "param", "metric"):
        assert f"│ {name} " in output, f"{name!r} is cut or missing:\n{output}"


def test_compare_marks_differences() -> None:
    lined_up = compare_values([{"depth": "3", "model": "xgb"}, {"depth": "9", "model": "xgb"}])
    assert lined_up == [("depth", ["3", "9"], True), ("model", ["xgb", "xgb"], False)]


def test_compare_marks_missing() -> None:
    assert compare_values([{"a": "1"}, {}]) == [("a", ["1", "-"], True)]


def test_compare_needs_two(home: Path) -> None:
    code, output = _invoke(home, "runs", "compare", "only-one")
    assert code == 2, output


def test_experiments_list(home: Path) -> None:
    code, output = _invoke(home, "experiments", "list")
    assert code == 0, output
    assert "churn" in output
