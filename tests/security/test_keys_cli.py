import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from manara.cli.main import build_app
from manara.config import Settings
from manara.errors import ConflictError, NotFoundError, PermissionDeniedError
from manara.security.envelope import ArtifactContext
from manara.security.keyops import KeyService
from manara.security.keys import local_keyring
from manara.stores.artifacts import ArtifactStore
from manara.stores.artifacts.encrypted import EncryptedArtifactStore, EncryptedRef
from manara.workspace import Workspace

CONTEXT = ArtifactContext("default", "model-1", "confidential", "aws/me-central-1")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "ws"
    monkeypatch.setenv("MANARA_HOME", str(home))
    for variable in ("MANARA_SERVER_URL", "MANARA_DATABASE_URL", "MANARA_ARTIFACT_ROOT"):
        monkeypatch.delenv(variable, raising=False)
    return home


def _store(home: Path) -> EncryptedArtifactStore:
    settings = Settings(home=home)
    return EncryptedArtifactStore(ArtifactStore(settings.artifact_root), local_keyring(settings))


def _put(home: Path, count: int) -> list[EncryptedRef]:
    store = _store(home)
    return [store.put_bytes(f"object {i}".encode(), CONTEXT) for i in range(count)]


def _invoke(*args: str, columns: int = 80) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), ["keys", *args], env={"COLUMNS": str(columns)})
    return result.exit_code, result.output


def test_list_shows_versions(home: Path) -> None:
    _put(home, 2)
    code, output = _invoke("list")
    assert code == 0, output
    assert "active" in output
    rows = [line for line in output.splitlines() if "active" in line]
    assert rows and rows[0].rstrip(" │").endswith("2"), output


def test_list_times_iso(home: Path) -> None:
    _put(home, 1)
    code, output = _invoke("rotate")
    assert code == 0, output
    assert _invoke("retire", "1")[0] == 0
    code, output = _invoke("list", columns=150)
    assert code == 0, output
    stamps = re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", output)
    assert len(stamps) == 3, output
    assert not re.search(r"\d\d:\d\d:\d\d\.\d", output), "times show microseconds"
    code, narrow = _invoke("list", columns=80)
    assert code == 0, narrow
    assert "…" not in narrow, "a timestamp is cut at 80 columns"


def test_rotate_rewraps_all(home: Path) -> None:
    refs = _put(home, 3)
    code, output = _invoke("rotate")
    assert code == 0, output
    assert "Rotated to key version 2" in output
    assert "Re-wrapped 3 objects" in output
    store = _store(home)
    assert store.count_by_version() == {2: 3}
    code, output = _invoke("retire", "1")
    assert code == 0, output
    assert [store.get_bytes(r, CONTEXT) for r in refs] == [b"object 0", b"object 1", b"object 2"]
    code, output = _invoke("list")
    assert code == 0, output
    assert "retired" in output


def test_retire_refused_while_needed(home: Path) -> None:
    refs = _put(home, 1)
    store = _store(home)
    store.provider.rotate()
    code, output = _invoke("retire", "1")
    assert code == 4, output
    assert "1 encrypted objects still" in output
    assert "Traceback" not in output
    assert store.get_bytes(refs[0], CONTEXT) == b"object 0"
    code, output = _invoke("retire", "1", "--force")
    assert code == 0, output
    with pytest.raises(ConflictError, match="retired"):
        store.get_bytes(refs[0], CONTEXT)
    code, output = _invoke("reinstate", "1")
    assert code == 0, output
    code, output = _invoke("rewrap")
    assert code == 0, output
    assert "Re-wrapped 1 objects" in output
    assert store.get_bytes(refs[0], CONTEXT) == b"object 0"


def test_retire_active_fails(home: Path) -> None:
    _put(home, 1)
    code, output = _invoke("retire", "1", "--force")
    assert code == 4, output
    assert "Rotate first" in output


def test_destroy_needs_yes(home: Path) -> None:
    refs = _put(home, 2)
    _store(home).provider.rotate()
    code, output = _invoke("destroy", "1")
    assert code == 2, output
    assert "--yes" in output
    assert "2 encrypted objects" in output
    assert _store(home).get_bytes(refs[0], CONTEXT) == b"object 0"


def test_destroy_shreds(home: Path) -> None:
    refs = _put(home, 2)
    keyring_path = home / "keys" / "keyring.json"
    old_key = json.loads(keyring_path.read_text())["versions"][0]["material"]
    _store(home).provider.rotate()
    code, output = _invoke("destroy", "1", "--yes")
    assert code == 0, output
    assert "2 objects are now unreadable" in output
    assert old_key not in keyring_path.read_text()
    for ref in refs:
        with pytest.raises(NotFoundError, match="crypto-shredded"):
            _store(home).get_bytes(ref, CONTEXT)


def test_group_readable_keyring_fails(home: Path) -> None:
    _put(home, 1)
    (home / "keys" / "keyring.json").chmod(0o644)
    code, output = _invoke("rotate")
    assert code == 2, output
    assert "chmod 600" in output


def test_public_key_printed(home: Path) -> None:
    code, output = _invoke("public-key")
    assert code == 0, output
    assert output.startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in output


def test_rotate_needs_permission(sqlite_workspace: Workspace) -> None:
    viewer = sqlite_workspace.create_principal("auditor", {"viewer"})
    store = EncryptedArtifactStore(
        sqlite_workspace.artifacts, local_keyring(sqlite_workspace.settings)
    )
    service = KeyService(sqlite_workspace.context(viewer), store)
    assert [usage.version.version for usage in service.list_versions()] == [1]
    with pytest.raises(PermissionDeniedError, match="key.rotate"):
        service.rotate()
    with pytest.raises(PermissionDeniedError, match="key.destroy"):
        service.destroy(1, confirmed=True)
    assert store.provider.active_version() == 1
