"""Durations in messages, written as users type them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from manara.cli.main import build_app
from manara.cli.principals import parse_duration
from manara.durations import format_duration


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(hours=48), "48h"),
        (timedelta(hours=24), "24h"),
        (timedelta(minutes=15), "15m"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=3661), "3661s"),
        (timedelta(seconds=0.4), "0s"),
        (timedelta(0), "0s"),
        (timedelta(minutes=-15), "-15m"),
    ],
)
def test_format_duration(duration: timedelta, text: str) -> None:
    assert format_duration(duration) == text


@given(st.integers(1, 10**8))
def test_format_parse_round_trip(seconds: int) -> None:
    duration = timedelta(seconds=seconds)
    assert parse_duration(format_duration(duration)) == duration


def test_token_lifetime_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MANARA_HOME", str(tmp_path / "home"))
    for variable in ("MANARA_SERVER_URL", "MANARA_DATABASE_URL", "MANARA_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    runner = CliRunner()
    created = runner.invoke(build_app(), ["principals", "create", "ci-bot", "--service"])
    assert created.exit_code == 0, created.output

    result = runner.invoke(build_app(), ["token", "ci-bot", "--expires-in", "48h"])
    assert result.exit_code == 2, result.output
    assert "Token lifetime 48h is out of range" in result.output
    assert "at most 24h" in result.output
    assert "day" not in result.output
