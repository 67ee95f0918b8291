from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from manara.cli.main import build_app
from manara.errors import UnavailableError
from manara.rest import RestTransport
from manara.security.redaction import mask_url_passwords


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_mask_keeps_user_and_host() -> None:
    masked = mask_url_passwords("at http://bob:s3cret@127.0.0.1:8099/api and s3://k:v@bucket")
    assert "s3cret" not in masked
    assert ":v@" not in masked
    assert "http://bob:***@127.0.0.1:8099/api" in masked
    assert "s3://k:***@bucket" in masked


def test_mask_leaves_plain_urls() -> None:
    text = "http://127.0.0.1:8099/path@v2 and https://host/a"
    assert mask_url_passwords(text) == text


def test_transport_error_masks_password() -> None:
    transport = RestTransport(f"http://bob:s3cret@127.0.0.1:{closed_port()}", token=None)
    with pytest.raises(UnavailableError) as caught:
        transport.request("GET", "/runs")
    transport.close()
    assert "s3cret" not in caught.value.message
    assert "bob:***@127.0.0.1" in caught.value.message
    assert caught.value.__cause__ is None


def test_cli_masks_server_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MANARA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MANARA_SERVER_URL", f"http://bob:s3cret@127.0.0.1:{closed_port()}")
    monkeypatch.setenv("MANARA_API_KEY", "mnr_000000000000_unused")
    result = CliRunner().invoke(build_app(), ["runs", "list"])
    assert result.exit_code != 0, result.output
    assert "s3cret" not in result.output
    assert "bob:***@" in result.output, result.output
