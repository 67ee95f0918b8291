from pathlib import Path

import pytest
from typer.testing import CliRunner

from manara.cli.main import build_app


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "ws"
    monkeypatch.setenv("MANARA_HOME", str(home))
    monkeypatch.delenv("MANARA_SERVER_URL", raising=False)
    return home


def test_init_prints_key_once(env: Path) -> None:
    result = CliRunner().invoke(build_app(), ["init"])
    assert result.exit_code == 0, result.output
    keys = [line for line in result.output.splitlines() if line.startswith("mnr_")]
    assert len(keys) == 1
    assert (env / "manara.db").exists()


def test_init_twice_fails_cleanly(env: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(build_app(), ["init"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(build_app(), ["init"])
    assert second.exit_code == 4
    assert "already initialised" in second.output
    assert "Traceback" not in second.output
    assert not any(line.startswith("mnr_") for line in second.output.splitlines())
