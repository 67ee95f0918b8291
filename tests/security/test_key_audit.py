"""Key rotation, retirement and destruction are recorded in the audit log."""

from manara.security.keyops import KeyService
from manara.workspace import Workspace


def test_key_changes_audited(sqlite_workspace: Workspace) -> None:
    ctx = sqlite_workspace.context()
    ctx.artifacts.put_bytes(b"weights")
    keys = KeyService(ctx, sqlite_workspace.artifacts.encrypted)

    rotation = keys.rotate()
    keys.retire(rotation.version - 1)
    keys.destroy(rotation.version - 1, confirmed=True)

    assert ctx.audit is not None
    events = [e for e in ctx.audit.events() if e.action.startswith("key.")]
    assert [e.action for e in events] == ["key.rotate", "key.retire", "key.destroy"]
    assert events[0].details["version"] == rotation.version
    assert events[0].details["rewrapped"] == 1
    assert events[2].details["version"] == rotation.version - 1
