"""Client construction in remote mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from manara.cli.main import build_app
from manara.client import Client
from manara.config import Settings
from manara.errors import InvalidInputError

SERVER = "http://127.0.0.1:9"


def test_missing_key_names_both_ways(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, server_url=SERVER)
    with pytest.raises(InvalidInputError) as caught:
        Client(settings=settings)
    assert "MANARA_API_KEY (CLI)" in str(caught.value)
    assert "token=... to manara.Client (SDK)" in str(caught.value)


def test_cli_missing_key_message(tmp_path: Path) -> None:
    env = {"MANARA_HOME": str(tmp_path), "MANARA_SERVER_URL": SERVER, "MANARA_API_KEY": ""}
    result = CliRunner().invoke(build_app(), ["runs", "list"], env=env)
    assert result.exit_code != 0, result.output
    assert "Set MANARA_API_KEY" in result.output


def test_missing_key_masks_url_password(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as caught:
        Client(url="http://bob:hunter2@127.0.0.1:1", settings=Settings(home=tmp_path))
    assert "hunter2" not in caught.value.message
    assert "bob:***@" in caught.value.message
