"""The audit log against real attacks, on SQLite and PostgreSQL.

Each attack test plays someone with direct database access. The triggers
stop a plain UPDATE or DELETE, so the attacker drops them first and then
edits, deletes, inserts or reorders rows. ``verify`` must name the change.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Connection, delete, text, update
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from manara.cli.main import build_app
from manara.clock import FixedClock
from manara.config import Settings
from manara.errors import IntegrityError, InvalidInputError
from manara.security.audit import SIGNING_KEY_PATH, AuditLog, open_audit_log
from manara.security.audit_events import AuditEvent, RecordedEvent, VerificationResult
from manara.security.audit_merkle import consistency_proof, root_hash, verify_consistency
from manara.security.audit_signer import AuditSigner, tree_head_message
from manara.stores.metadata import MetadataStore, tables
from manara.stores.metadata.audit import AuditRepository
from manara.workspace import Workspace

TOOL = Path(__file__).resolve().parents[2] / "tools" / "verify_audit_proof.py"


@pytest.fixture
def audit_clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC))


@pytest.fixture
def signer(tmp_path: Path) -> AuditSigner:
    return AuditSigner.load_or_create(tmp_path / "keys" / "audit-signing.key")


@pytest.fixture
def log(workspace: Workspace, signer: AuditSigner, audit_clock: FixedClock) -> AuditLog:
    return AuditLog(workspace.metadata, signer, audit_clock, checkpoint_every=None)


def _event(index: int, decision: str = "allow") -> AuditEvent:
    return AuditEvent(
        principal_id=f"user-{index % 3}",
        action="model.read" if index % 2 else "run.create",
        resource_type="model" if index % 2 else "run",
        resource_id=f"res-{index}",
        decision=decision,  # type: ignore[arg-type]
        reason="role_grant" if decision == "allow" else "no_matching_grant",
        request_id=f"req-{index}",
        details={"index": index, "note": "مرحبا", "ratio": index / 7, "tags": ["a", None]},
    )


def _record(log: AuditLog, clock: FixedClock, count: int) -> list[RecordedEvent]:
    recorded = []
    for index in range(count):
        decision = "deny" if index == 2 else "allow"
        recorded.append(log.record(_event(index, decision)))
        clock.advance(timedelta(seconds=1, microseconds=7))
    return recorded


def _drop_triggers(store: MetadataStore) -> None:
    with store.transaction() as connection:
        if store.dialect == "postgresql":
            rows = connection.execute(
                text(
                    "SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c "
                    "ON c.oid = t.tgrelid WHERE NOT t.tgisinternal AND c.relname LIKE 'audit_%'"
                )
            ).all()
            for name, table in rows:
                connection.execute(text(f'DROP TRIGGER "{name}" ON "{table}"'))
        else:
            rows = connection.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name LIKE 'audit_%'"
                )
            ).all()
            for (name,) in rows:
                connection.execute(text(f'DROP TRIGGER "{name}"'))
    assert rows, "the migration installed no audit triggers"


def _rows(store: MetadataStore) -> list[RecordedEvent]:
    return list(AuditRepository(store).iter_events())


def _insert(connection: Connection, event: RecordedEvent) -> None:
    connection.execute(tables.audit_events.insert().values(**dataclasses.asdict(event)))


def _kinds(result: VerificationResult) -> set[str]:
    return {problem.kind for problem in result.problems}


def _seqs(result: VerificationResult, kind: str) -> set[int | None]:
    return {problem.seq for problem in result.problems if problem.kind == kind}


def test_clean_log_verifies(log: AuditLog, audit_clock: FixedClock) -> None:
    recorded = _record(log, audit_clock, 7)
    log.checkpoint()
    _record(log, audit_clock, 3)
    log.checkpoint()
    result = log.verify()
    assert result.ok, result.problems
    assert result.events_checked == 10
    assert result.checkpoints_checked == 2
    assert [event.seq for event in recorded] == list(range(7))
    leaves = [bytes.fromhex(event.leaf_hash) for event in _rows_of(log)]
    assert result.root_hash == root_hash(leaves).hex()


def _rows_of(log: AuditLog) -> list[RecordedEvent]:
    return log.events(limit=100_000)


def test_event_fields_stored(log: AuditLog, audit_clock: FixedClock) -> None:
    recorded = log.record(_event(1))
    stored = log.events()[0]
    assert stored == recorded
    assert stored.time == audit_clock.now()
    assert stored.details == {"index": 1, "note": "مرحبا", "ratio": 1 / 7, "tags": ["a", None]}
    canonical = stored.canonical_bytes().decode("utf-8")
    assert canonical.startswith('{"action":"model.read","decision":"allow"')
    assert '"time":"2026-03-01T08:00:00.123456Z"' in canonical
    assert "مرحبا" in canonical


def test_update_rejected_by_trigger(workspace: Workspace, log: AuditLog) -> None:
    log.record(_event(0))
    log.checkpoint()
    store = workspace.metadata
    events, checkpoints = tables.audit_events, tables.audit_checkpoints
    attempts = {
        "update event": update(events).values(decision="deny"),
        "delete event": delete(events),
        "update checkpoint": update(checkpoints).values(root_hash="0" * 64),
        "delete checkpoint": delete(checkpoints),
        "shrink head": update(tables.audit_head).values(size=0),
        "delete head": delete(tables.audit_head),
    }
    if store.dialect == "postgresql":
        attempts["truncate events"] = text("TRUNCATE audit_events")
    for name, statement in attempts.items():
        with pytest.raises(DBAPIError) as caught, store.transaction() as connection:
            connection.execute(statement)
        message = str(caught.value)
        assert "append-only" in message or "only grow" in message, f"{name}: {message}"
    assert log.verify().ok


def test_edited_event_detected(
    workspace: Workspace, log: AuditLog, audit_clock: FixedClock
) -> None:
    _record(log, audit_clock, 5)
    log.checkpoint()
    _drop_triggers(workspace.metadata)
    with workspace.metadata.transaction() as connection:
        connection.execute(
            update(tables.audit_events)
            .where(tables.audit_events.c.seq == 2)
            .values(decision="allow")
        )
    result = log.verify()
    assert not result.ok
    assert _kinds(result) == {"modified"}, result.problems
    assert _seqs(result, "modified") == {2}
    assert "seq 2" in result.problems[0].message


def test_rehashed_edit_detected_by_root(
    workspace: Workspace, log: AuditLog, audit_clock: FixedClock
) -> None:
    _record(log, audit_clock, 5)
    log.checkpoint()
    _drop_triggers(workspace.metadata)
    forged = dataclasses.replace(_rows(workspace.metadata)[2], decision="allow")
    forged = dataclasses.replace(forged, leaf_hash=forged.computed_leaf_hash())
    with workspace.metadata.transaction() as connection:
        connection.execute(delete(tables.audit_events).where(tables.audit_events.c.seq == 2))
        _insert(connection, forged)
    result = log.verify()
    assert _kinds(result) == {"root_mismatch"}, result.problems
    assert result.problems[0].checkpoint_size == 5
    with pytest.raises(IntegrityError):
        log.prove(forged.event_id)


def test_deleted_event_detected(
    workspace: Workspace, log: AuditLog, audit_clock: FixedClock
) -> None:
    _record(log, audit_clock, 5)
    log.checkpoint()
    _drop_triggers(workspace.metadata)
    with workspace.metadata.transaction() as connection:
        connection.execute(delete(tables.audit_events).where(tables.audit_events.c.seq == 2))
    result = log.verify()
    assert _seqs(result, "deleted") == {2}, result.problems
    assert "root_mismatch" in _kinds(result)
    assert "modified" not in _kinds(result)


def test_deleted_tail_detected(
    workspace: Workspace, log: AuditLog, audit_clock: FixedClock
) -> None:
    _record(log, audit_clock, 5)
    log.checkpoint()
    _drop_triggers(workspace.metadata)
    with workspace.metadata.transaction() as connection:
        connection.execute(delete(tables.audit_events).where(tables.audit_events.c.seq >= 3))
        connection.execute(update(tables.audit_head).values(size=3))
    result = log.verify()
    assert _kinds(result) == {"truncated"}, result.problems
    assert result.problems[0].checkpoint_size == 5
    with pytest.raises(IntegrityError):
        log.checkpoint()


def test_deleted_tail_detected_by_head(
    workspace: Workspace, log: AuditLog, audit_clock: FixedClock
) -> None:
    _record(log, audit_clock, 5)
    _drop_triggers(workspace.metadata)
    with workspace.metadata.transaction() as connection:
        connection.execute(delete(tables.audit_events).where(tables.audit_events.c.seq == 4))
    result = log.verify()
    assert _kinds(result) == {"deleted"}, result.problems
    assert _seqs(result, "deleted") == {4}


def test_inserted_event_detected(
    workspace: Workspace, log: AuditLog, audit_clock: FixedClock
) -> None:
    _record(log, audit_clock, 5)
    log.checkpoint()
    _drop_triggers(workspace.metadata)
    rows = _rows(workspace.metadata)
    forged = dataclasses.replace(rows[1], seq=2, event_id="f" * 32, resource_id="forged")
    shifted = [dataclasses.replace(row, seq=row.seq + 1) for row in rows[2:]]
    with workspace.metadata.transaction() as connection:
        connection.execute(delete(tables.audit_events).where(tables.audit_events.c.seq >= 2))
        for row in [forged, *shifted]:
            _insert(connection, dataclasses.replace(row, leaf_hash=row.computed_leaf_hash()))
        connection.execute(update(tables.audit_head).values(size=6))
    result = log.verify()
    assert _kinds(result) == {"root_mismatch"}, result.problems
    assert result.problems[0].checkpoint_size == 5
    assert "seq 0..4" in result.problems[0].message


def test_swapped_events_detected(
    workspace: Workspace, log: AuditLog, audit_clock: FixedClock
) -> None:
    _record(log, audit_clock, 5)
    log.checkpoint()
    _drop_triggers(workspace.metadata)
    rows = _rows(workspace.metadata)
    with workspace.metadata.transaction() as connection:
        connection.execute(delete(tables.audit_events).where(tables.audit_events.c.seq.in_([1, 3])))
        _insert(connection, dataclasses.replace(rows[3], seq=1))
        _insert(connection, dataclasses.replace(rows[1], seq=3))
    result = log.verify()
    assert _seqs(result, "reordered") == {1, 3}, result.problems
    assert "modified" not in _kinds(result)
    assert "root_mismatch" in _kinds(result)


def test_rehashed_swap_detected_by_root(
    workspace: Workspace, log: AuditLog, audit_clock: FixedClock
) -> None:
    _record(log, audit_clock, 5)
    log.checkpoint()
    _record(log, audit_clock, 3)
    log.checkpoint()
    _drop_triggers(workspace.metadata)
    rows = _rows(workspace.metadata)
    swapped = [dataclasses.replace(rows[6], seq=5), dataclasses.replace(rows[5], seq=6)]
    with workspace.metadata.transaction() as connection:
        connection.execute(delete(tables.audit_events).where(tables.audit_events.c.seq.in_([5, 6])))
        for row in swapped:
            _insert(connection, dataclasses.replace(row, leaf_hash=row.computed_leaf_hash()))
    result = log.verify()
    assert _kinds(result) == {"root_mismatch"}, result.problems
    assert result.problems[0].checkpoint_size == 8
    assert "seq 5..7" in result.problems[0].message


def test_forged_checkpoint_signature_detected(
    workspace: Workspace, log: AuditLog, audit_clock: FixedClock
) -> None:
    _record(log, audit_clock, 4)
    log.checkpoint()
    _drop_triggers(workspace.metadata)
    with workspace.metadata.transaction() as connection:
        connection.execute(update(tables.audit_checkpoints).values(signature="ab" * 64))
    result = log.verify()
    assert _kinds(result) == {"bad_signature"}, result.problems
    assert result.problems[0].checkpoint_size == 4
    log.record(_event(9))
    with pytest.raises(IntegrityError, match="signature"):
        log.checkpoint()


def test_resigned_checkpoint_detected(
    workspace: Workspace, log: AuditLog, audit_clock: FixedClock
) -> None:
    _record(log, audit_clock, 4)
    log.checkpoint()
    _drop_triggers(workspace.metadata)
    rows = _rows(workspace.metadata)
    forged = dataclasses.replace(rows[0], decision="deny")
    forged = dataclasses.replace(forged, leaf_hash=forged.computed_leaf_hash())
    leaves = [bytes.fromhex(row.leaf_hash) for row in [forged, *rows[1:]]]
    attacker = AuditSigner.generate()
    checkpoint_time = audit_clock.now()
    root = root_hash(leaves)
    signature = attacker.sign(tree_head_message(4, checkpoint_time, root))
    with workspace.metadata.transaction() as connection:
        connection.execute(delete(tables.audit_events).where(tables.audit_events.c.seq == 0))
        _insert(connection, forged)
        connection.execute(
            update(tables.audit_checkpoints).values(
                root_hash=root.hex(), signature=signature.hex(), key_id=attacker.key_id
            )
        )
    result = log.verify()
    assert "bad_signature" in _kinds(result), result.problems
    assert "modified" not in _kinds(result)


def test_altered_frontier_detected(
    workspace: Workspace, log: AuditLog, audit_clock: FixedClock
) -> None:
    _record(log, audit_clock, 3)
    log.checkpoint()
    _drop_triggers(workspace.metadata)
    with workspace.metadata.transaction() as connection:
        connection.execute(update(tables.audit_checkpoints).values(frontier=["00" * 32] * 2))
    result = log.verify()
    assert _kinds(result) == {"bad_frontier"}, result.problems
    log.record(_event(5))
    with pytest.raises(IntegrityError, match="frontier"):
        log.checkpoint()


def _run_tool(proof_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), str(proof_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_proof_verifies_with_tool(
    tmp_path: Path, log: AuditLog, signer: AuditSigner, audit_clock: FixedClock
) -> None:
    recorded = _record(log, audit_clock, 6)
    proof = log.prove(recorded[2].event_id).to_dict()
    assert proof["tree_size"] == 6
    assert proof["leaf_index"] == 2
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof), encoding="utf-8")
    public_key = signer.public_key.hex()

    by_key = _run_tool(path, "--public-key", public_key)
    assert by_key.returncode == 0, by_key.stderr
    assert "valid" in by_key.stdout
    by_root = _run_tool(path, "--root", proof["root_hash"])
    assert by_root.returncode == 0, by_root.stderr

    changed = json.loads(json.dumps(proof))
    changed["event"]["decision"] = "allow"
    path.write_text(json.dumps(changed), encoding="utf-8")
    tampered = _run_tool(path, "--public-key", public_key)
    assert tampered.returncode == 1
    assert "root other than" in tampered.stderr


def test_proof_rejects_wrong_anchor(tmp_path: Path, log: AuditLog, audit_clock: FixedClock) -> None:
    recorded = _record(log, audit_clock, 3)
    proof = log.prove(recorded[0].event_id).to_dict()
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof), encoding="utf-8")
    other_key = AuditSigner.generate().public_key.hex()
    assert _run_tool(path, "--public-key", other_key).returncode == 1
    assert _run_tool(path, "--root", "00" * 32).returncode == 1
    no_anchor = _run_tool(path)
    assert no_anchor.returncode == 2, "a proof must not vouch for its own root"

    forged_root = dict(proof, checkpoint_time="2030-01-01T00:00:00.000000Z")
    path.write_text(json.dumps(forged_root), encoding="utf-8")
    assert _run_tool(path, "--public-key", proof["public_key"]).returncode == 1


def test_prove_refuses_changed_event(
    workspace: Workspace, log: AuditLog, audit_clock: FixedClock
) -> None:
    recorded = _record(log, audit_clock, 3)
    log.checkpoint()
    _drop_triggers(workspace.metadata)
    with workspace.metadata.transaction() as connection:
        connection.execute(
            update(tables.audit_events).where(tables.audit_events.c.seq == 1).values(action="x")
        )
    with pytest.raises(IntegrityError, match="seq 1"):
        log.prove(recorded[1].event_id)


def test_concurrent_appends_gapless(
    workspace: Workspace, signer: AuditSigner, audit_clock: FixedClock
) -> None:
    # Checkpoints every 7 events also race with the appends and with each other.
    log = AuditLog(workspace.metadata, signer, audit_clock, checkpoint_every=7)
    threads, per_thread = 6, 12
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def append(worker: int) -> None:
        try:
            barrier.wait()
            for index in range(per_thread):
                log.record(_event(worker * 100 + index))
        except BaseException as error:  # noqa: BLE001 - reported by the assert below
            errors.append(error)

    workers = [threading.Thread(target=append, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not errors, errors
    events = _rows_of(log)
    assert [event.seq for event in events] == list(range(threads * per_thread))
    assert len({event.event_id for event in events}) == threads * per_thread
    log.checkpoint()
    result = log.verify()
    assert result.ok, result.problems
    assert result.checkpoints_checked == threads * per_thread // 7 + 1


def test_checkpoints_are_consistent(log: AuditLog, audit_clock: FixedClock) -> None:
    _record(log, audit_clock, 5)
    first = log.checkpoint()
    assert log.checkpoint() == first, "no new events, so the same checkpoint"
    _record(log, audit_clock, 6)
    second = log.checkpoint()
    leaves = [bytes.fromhex(event.leaf_hash) for event in _rows_of(log)]
    proof = consistency_proof(first.tree_size, leaves)
    assert verify_consistency(
        first.tree_size,
        second.tree_size,
        bytes.fromhex(first.root_hash),
        bytes.fromhex(second.root_hash),
        proof,
    )
    assert second.root_hash == root_hash(leaves).hex()


def test_checkpoint_every_signs(workspace: Workspace, signer: AuditSigner) -> None:
    clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    log = AuditLog(workspace.metadata, signer, clock, checkpoint_every=4)
    for index in range(9):
        log.record(_event(index))
    sizes = [
        checkpoint.tree_size for checkpoint in AuditRepository(workspace.metadata).checkpoints()
    ]
    assert sizes == [4, 8]


def test_events_query_filters(log: AuditLog, audit_clock: FixedClock) -> None:
    start = audit_clock.now()
    recorded = _record(log, audit_clock, 9)
    by_principal = log.events(principal_id="user-1")
    assert [event.seq for event in by_principal] == [1, 4, 7]
    by_action = log.events(action="model.read", limit=2)
    assert [event.seq for event in by_action] == [1, 3]
    next_page = log.events(action="model.read", after_seq=3)
    assert [event.seq for event in next_page] == [5, 7]
    window = log.events(start=recorded[2].time, end=start + timedelta(seconds=4))
    assert [event.seq for event in window] == [2, 3]
    with pytest.raises(InvalidInputError):
        log.events(start=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "details",
    [
        {"password": "hunter2"},
        {"request": {"Authorization": "Bearer x"}},
        {"db-api-key": "x"},
        {"key": "mnr_0123456789ab_abcdefghijklmnopqrstuvwxyz012345"},
        {"score": float("nan")},
        {1: "not a string key"},
    ],
)
def test_invalid_details_rejected(log: AuditLog, details: dict[Any, Any]) -> None:
    event = dataclasses.replace(_event(0), details=details)
    with pytest.raises(InvalidInputError):
        log.record(event)
    assert log.events() == [], "a rejected event must write nothing"


_JSON_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))
_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _JSON_TEXT,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text("abcxyz_", min_size=1, max_size=6), children, max_size=3)
    ),
    max_leaves=10,
)


@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(details=st.dictionaries(st.text("abcxyz_", min_size=1, max_size=6), _JSON_VALUES))
def test_details_round_trip(log: AuditLog, details: dict[str, Any]) -> None:
    recorded = log.record(dataclasses.replace(_event(0), details=details, resource_id="Ω"))
    stored = log.events(after_seq=recorded.seq - 1, limit=1)[0]
    assert stored.canonical_bytes() == recorded.canonical_bytes()
    assert stored.computed_leaf_hash() == stored.leaf_hash


def test_harmless_detail_names_allowed(log: AuditLog) -> None:
    event = dataclasses.replace(_event(0), details={"max_tokens": 5, "token_count": 2})
    assert log.record(event).details == {"max_tokens": 5, "token_count": 2}


def test_invalid_fields_rejected(log: AuditLog) -> None:
    for change in (
        {"decision": "maybe"},
        {"action": ""},
        {"resource_id": "x" * 257},
        {"reason": "a\x00b"},
    ):
        with pytest.raises(InvalidInputError):
            log.record(dataclasses.replace(_event(0), **change))
    assert log.events() == []


def test_signing_key_file_private(tmp_path: Path) -> None:
    path = tmp_path / "home" / "keys" / "audit-signing.key"
    first = AuditSigner.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert AuditSigner.load_or_create(path).key_id == first.key_id
    os.chmod(path, 0o644)
    with pytest.raises(InvalidInputError, match="chmod 600"):
        AuditSigner.load_or_create(path)


def test_export_atomic_jsonl(tmp_path: Path, log: AuditLog, audit_clock: FixedClock) -> None:
    recorded = _record(log, audit_clock, 4)
    target = tmp_path / "out" / "audit.jsonl"
    target.parent.mkdir()
    assert log.export(target) == 4
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4
    first = json.loads(lines[0])
    assert first["event"]["event_id"] == recorded[0].event_id
    assert first["leaf_hash"] == recorded[0].leaf_hash
    assert sorted(path.name for path in target.parent.iterdir()) == ["audit.jsonl"]


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    monkeypatch.setenv("MANARA_HOME", str(settings.home))
    monkeypatch.setenv("MANARA_DATABASE_URL", settings.database_url)
    monkeypatch.delenv("MANARA_SERVER_URL", raising=False)
    workspace = Workspace.open(settings)
    try:
        yield workspace
    finally:
        workspace.close()


def test_cli_verify_export_prove(cli_env: Workspace, settings: Settings, tmp_path: Path) -> None:
    log = open_audit_log(cli_env.context())
    recorded = [log.record(_event(index)) for index in range(5)]
    assert (settings.home / SIGNING_KEY_PATH).exists()
    runner, app = CliRunner(), build_app()

    verified = runner.invoke(app, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output
    assert "5 events" in verified.output

    output = tmp_path / "audit.jsonl"
    exported = runner.invoke(app, ["audit", "export", "--output", str(output)])
    assert exported.exit_code == 0, exported.output
    assert len(output.read_text(encoding="utf-8").splitlines()) == 5

    proved = runner.invoke(app, ["audit", "prove", recorded[3].event_id])
    assert proved.exit_code == 0, proved.output
    proof = json.loads(proved.stdout)
    assert proof["event"]["event_id"] == recorded[3].event_id
    proof_path = tmp_path / "proof.json"
    proof_path.write_text(proved.stdout, encoding="utf-8")
    checked = _run_tool(proof_path, "--public-key", log.signer.public_key.hex())
    assert checked.returncode == 0, checked.stderr


def test_cli_verify_reports_tampering(cli_env: Workspace) -> None:
    log = open_audit_log(cli_env.context())
    for index in range(3):
        log.record(_event(index))
    _drop_triggers(cli_env.metadata)
    with cli_env.metadata.transaction() as connection:
        connection.execute(
            update(tables.audit_events).where(tables.audit_events.c.seq == 1).values(action="x")
        )
    result = CliRunner().invoke(build_app(), ["audit", "verify"])
    assert result.exit_code == 6, result.output
    assert "modified" in result.output
    assert "Traceback" not in result.output


def test_cli_prove_unknown_event(cli_env: Workspace) -> None:
    result = CliRunner().invoke(build_app(), ["audit", "prove", "nope"])
    assert result.exit_code == 3, result.output
    assert "not found" in result.output
