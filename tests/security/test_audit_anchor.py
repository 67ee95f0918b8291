"""The published audit public key anchors proofs checked by the standalone verifier."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from manara.cli.main import build_app

VERIFIER = Path(__file__).parents[2] / "tools" / "verify_audit_proof.py"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MANARA_HOME", str(tmp_path / "ws"))
    monkeypatch.delenv("MANARA_SERVER_URL", raising=False)
    monkeypatch.delenv("MANARA_API_KEY", raising=False)
    return tmp_path


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(build_app(), list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _verify(proof: Path, public_key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(VERIFIER), "--public-key", public_key, str(proof)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_public_key_anchors_proof(home: Path) -> None:
    _invoke("init")
    _invoke("audit", "checkpoint")
    export = home / "events.jsonl"
    _invoke("audit", "export", "--output", str(export))
    event_id = json.loads(export.read_text().splitlines()[0])["event"]["event_id"]
    proof = home / "proof.json"
    proof.write_text(_invoke("audit", "prove", event_id))
    public_key = _invoke("audit", "public-key").strip()

    assert len(public_key) == 64
    accepted = _verify(proof, public_key)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    rejected = _verify(proof, "00" * 32)
    assert rejected.returncode != 0
