import base64
import hashlib
import json
import os
import stat
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manara.clock import FixedClock
from manara.errors import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    ManaraError,
    NotFoundError,
)
from manara.security import envelope, keyfiles
from manara.security.envelope import ArtifactContext, EnvelopeHeader
from manara.security.keys import KeyState, LocalKeyring
from manara.stores.artifacts import ArtifactStore
from manara.stores.artifacts.encrypted import EncryptedArtifactStore

CONTEXT = ArtifactContext("alpha", "model-1", "confidential", "aws/me-central-1")


@pytest.fixture
def keyring(tmp_path: Path) -> LocalKeyring:
    return LocalKeyring(
        tmp_path / "keys" / "keyring.json", FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    )


@pytest.fixture
def store(tmp_path: Path, keyring: LocalKeyring) -> EncryptedArtifactStore:
    return EncryptedArtifactStore(ArtifactStore(str(tmp_path / "artifacts")), keyring)


def test_round_trip(keyring: LocalKeyring) -> None:
    blob = envelope.encrypt(b"model weights", CONTEXT, keyring)
    assert b"model weights" not in blob
    assert envelope.decrypt(blob, CONTEXT, keyring) == b"model weights"


def test_fresh_key_and_nonce_per_object(keyring: LocalKeyring) -> None:
    first, _ = EnvelopeHeader.decode(envelope.encrypt(b"same", CONTEXT, keyring))
    second, _ = EnvelopeHeader.decode(envelope.encrypt(b"same", CONTEXT, keyring))
    assert first.nonce != second.nonce
    assert first.wrapped.ciphertext != second.wrapped.ciphertext


def _flipped(blob: bytes, index: int) -> bytes:
    return blob[:index] + bytes([blob[index] ^ 0x01]) + blob[index + 1 :]


def test_every_flipped_byte_rejected(keyring: LocalKeyring) -> None:
    blob = envelope.encrypt(b"payload", CONTEXT, keyring)
    for index in range(len(blob)):
        with pytest.raises(ManaraError):
            envelope.decrypt(_flipped(blob, index), CONTEXT, keyring)


def test_flipped_crypto_fields_raise_integrity_error(keyring: LocalKeyring) -> None:
    blob = envelope.encrypt(b"payload", CONTEXT, keyring)
    header, offset = EnvelopeHeader.decode(blob)
    wrapped_at = blob.index(header.wrapped.ciphertext)
    nonce_at = blob.index(header.nonce)
    regions = {
        "wrapped key": range(wrapped_at, wrapped_at + len(header.wrapped.ciphertext)),
        "nonce": range(nonce_at, nonce_at + len(header.nonce)),
        "ciphertext": range(offset, len(blob) - 16),
        "tag": range(len(blob) - 16, len(blob)),
    }
    for name, positions in regions.items():
        assert len(positions) > 0, name
        for index in positions:
            with pytest.raises(IntegrityError):
                envelope.decrypt(_flipped(blob, index), CONTEXT, keyring)


@pytest.mark.parametrize("field", ["project", "artifact_id", "classification", "region"])
def test_moved_context_rejected(keyring: LocalKeyring, field: str) -> None:
    blob = envelope.encrypt(b"payload", CONTEXT, keyring)
    moved = replace(CONTEXT, **{field: "other"})
    with pytest.raises(IntegrityError, match=field):
        envelope.decrypt(blob, moved, keyring)


@pytest.mark.parametrize("field", ["project", "artifact_id", "classification", "region"])
def test_forged_header_context_rejected(keyring: LocalKeyring, field: str) -> None:
    # The attacker also rewrites the context copy in the header, so only the
    # associated data bound into the ciphertext and wrapped key can catch it.
    blob = envelope.encrypt(b"payload", CONTEXT, keyring)
    header, offset = EnvelopeHeader.decode(blob)
    moved = replace(CONTEXT, **{field: "other"})
    forged = replace(header, context=moved).encode() + blob[offset:]
    with pytest.raises(IntegrityError):
        envelope.decrypt(forged, moved, keyring)


def test_body_bound_to_context_even_with_key(keyring: LocalKeyring) -> None:
    blob = envelope.encrypt(b"payload", CONTEXT, keyring)
    header, offset = EnvelopeHeader.decode(blob)
    moved = replace(CONTEXT, project="beta")
    # Re-wrap the genuine data key for the new context: the body's own
    # associated data must still reject it.
    data_key = keyring.unwrap(header.wrapped, envelope.data_key_aad(CONTEXT))
    rewrapped = keyring.wrap(data_key, envelope.data_key_aad(moved))
    forged = EnvelopeHeader(rewrapped, header.nonce, moved).encode() + blob[offset:]
    with pytest.raises(IntegrityError, match="failed authentication"):
        envelope.decrypt(forged, moved, keyring)


def test_not_an_envelope_rejected(keyring: LocalKeyring) -> None:
    with pytest.raises(IntegrityError, match="magic"):
        envelope.decrypt(b"PK\x03\x04 a zip file, not an envelope", CONTEXT, keyring)


def test_old_version_decrypts_after_rotation(keyring: LocalKeyring) -> None:
    blob = envelope.encrypt(b"v1 data", CONTEXT, keyring)
    assert keyring.rotate() == 2
    assert keyring.active_version() == 2
    assert envelope.decrypt(blob, CONTEXT, keyring) == b"v1 data"
    new_header, _ = EnvelopeHeader.decode(envelope.encrypt(b"v2 data", CONTEXT, keyring))
    assert new_header.wrapped.version == 2


def test_rewrap_changes_only_header(keyring: LocalKeyring) -> None:
    blob = envelope.encrypt(b"payload" * 100, CONTEXT, keyring)
    keyring.rotate()
    rewrapped = envelope.rewrap(blob, keyring)
    old_header, old_body = envelope.split(blob)
    new_header, new_body = envelope.split(rewrapped)
    assert new_body == old_body
    assert new_header != old_header
    assert EnvelopeHeader.decode(old_header)[0].wrapped.version == 1
    assert EnvelopeHeader.decode(new_header)[0].wrapped.version == 2
    assert EnvelopeHeader.decode(new_header)[0].nonce == EnvelopeHeader.decode(old_header)[0].nonce
    keyring.retire(1)
    assert envelope.decrypt(rewrapped, CONTEXT, keyring) == b"payload" * 100


def test_rewrap_moves_to_other_provider(tmp_path: Path, keyring: LocalKeyring) -> None:
    other = LocalKeyring(tmp_path / "other" / "keyring.json")
    blob = envelope.encrypt(b"payload", CONTEXT, keyring)
    moved = envelope.rewrap(blob, keyring, target=other)
    assert envelope.decrypt(moved, CONTEXT, other) == b"payload"
    with pytest.raises(NotFoundError, match="configured key provider"):
        envelope.decrypt(moved, CONTEXT, keyring)


def test_retire_stops_unwrapping(store: EncryptedArtifactStore, keyring: LocalKeyring) -> None:
    moved_ref = store.put_bytes(b"rewrapped object", CONTEXT)
    left_ref = store.put_bytes(b"forgotten object", replace(CONTEXT, artifact_id="model-2"))
    keyring.rotate()
    assert store.rewrap(moved_ref) is True
    keyring.retire(1)
    assert store.get_bytes(moved_ref, CONTEXT) == b"rewrapped object"
    with pytest.raises(ConflictError, match="retired") as caught:
        store.get_bytes(left_ref, replace(CONTEXT, artifact_id="model-2"))
    assert "manara keys reinstate 1" in caught.value.message
    keyring.reinstate(1)
    assert store.get_bytes(left_ref, replace(CONTEXT, artifact_id="model-2")) == b"forgotten object"


def test_destroy_shreds_objects(store: EncryptedArtifactStore, keyring: LocalKeyring) -> None:
    ref = store.put_bytes(b"subject data", CONTEXT)
    old_material = json.loads(keyring.path.read_text())["versions"][0]["material"]
    assert base64.b64decode(old_material)
    keyring.rotate()
    keyring.destroy(1)
    with pytest.raises(NotFoundError, match="crypto-shredded"):
        store.get_bytes(ref, CONTEXT)
    assert old_material not in keyring.path.read_text()
    states = {v.version: v.state for v in keyring.versions()}
    assert states == {1: KeyState.DESTROYED, 2: KeyState.ACTIVE}
    with pytest.raises(ConflictError, match="destroyed"):
        keyring.reinstate(1)


def test_active_version_cannot_be_retired(keyring: LocalKeyring) -> None:
    with pytest.raises(ConflictError, match="Rotate first"):
        keyring.retire(1)
    with pytest.raises(ConflictError, match="Rotate first"):
        keyring.destroy(1)
    with pytest.raises(NotFoundError):
        keyring.retire(7)


def test_keyring_created_private(keyring: LocalKeyring) -> None:
    keyring.active_version()
    mode = stat.S_IMODE(keyring.path.stat().st_mode)
    assert mode == 0o600, oct(mode)
    assert stat.S_IMODE(keyring.path.parent.stat().st_mode) == 0o700
    leftovers = [p.name for p in keyring.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_exposed_keyring_rejected(keyring: LocalKeyring, mode: int) -> None:
    blob = envelope.encrypt(b"payload", CONTEXT, keyring)
    os.chmod(keyring.path, mode)
    with pytest.raises(InvalidInputError, match="chmod 600"):
        envelope.decrypt(blob, CONTEXT, keyring)
    with pytest.raises(InvalidInputError, match="chmod 600"):
        keyring.rotate()


def test_keyring_shared_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "keyring.json"
    writer, reader = LocalKeyring(path), LocalKeyring(path)
    blob = envelope.encrypt(b"payload", CONTEXT, writer)
    writer.rotate()
    assert reader.active_version() == 2
    assert envelope.decrypt(blob, CONTEXT, reader) == b"payload"


def test_store_round_trip(store: EncryptedArtifactStore) -> None:
    ref = store.put_bytes(b"weights", CONTEXT)
    assert ref.plaintext_digest == hashlib.sha256(b"weights").hexdigest()
    assert ref.size == 7
    body = store.artifacts.get_bytes(ref.blob_digest)
    assert b"weights" not in body
    assert store.get_bytes(ref, CONTEXT) == b"weights"


def test_store_rewrap_all_keeps_refs(store: EncryptedArtifactStore, keyring: LocalKeyring) -> None:
    refs = [store.put_bytes(f"object {i}".encode(), CONTEXT) for i in range(3)]
    bodies = [store.artifacts.get_bytes(r.blob_digest) for r in refs]
    keyring.rotate()
    report = store.rewrap_all()
    assert sorted(report.rewrapped) == sorted(r.blob_digest for r in refs)
    assert report.failed == {}
    assert [store.artifacts.get_bytes(r.blob_digest) for r in refs] == bodies
    assert store.count_by_version() == {2: 3}
    again = store.rewrap_all(refs)
    assert again.rewrapped == []
    assert len(again.already_current) == 3
    keyring.retire(1)
    assert [store.get_bytes(r, CONTEXT) for r in refs] == [b"object 0", b"object 1", b"object 2"]


def test_store_checks_plaintext_digest(store: EncryptedArtifactStore) -> None:
    ref = store.put_bytes(b"weights", CONTEXT)
    wrong = replace(ref, plaintext_digest=hashlib.sha256(b"other").hexdigest())
    with pytest.raises(IntegrityError, match="reference expects"):
        store.get_bytes(wrong, CONTEXT)


def test_store_missing_header(store: EncryptedArtifactStore) -> None:
    ref = store.put_bytes(b"weights", CONTEXT)
    digest = ref.blob_digest
    header_path = Path(store.headers.url) / digest[:2] / f"{digest}.hdr"
    header_path.unlink()
    with pytest.raises(NotFoundError, match="header"):
        store.get_bytes(ref, CONTEXT)


@pytest.fixture(scope="module")
def shared_keyring(tmp_path_factory: pytest.TempPathFactory) -> LocalKeyring:
    return LocalKeyring(tmp_path_factory.mktemp("keyring") / "keyring.json")


_FIELD = st.text(min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(
    payload=st.binary(max_size=4096),
    context=st.builds(ArtifactContext, _FIELD, _FIELD, _FIELD, _FIELD),
)
def test_round_trip_property(
    shared_keyring: LocalKeyring, payload: bytes, context: ArtifactContext
) -> None:
    blob = envelope.encrypt(payload, context, shared_keyring)
    assert envelope.decrypt(blob, context, shared_keyring) == payload
    assert envelope.split(blob)[1] == envelope.split(envelope.rewrap(blob, shared_keyring))[1]


def test_failed_write_keeps_keyring(keyring: LocalKeyring, monkeypatch: pytest.MonkeyPatch) -> None:
    keyring.active_version()
    before = keyring.path.read_bytes()

    def crash(source: object, target: object) -> None:
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(keyfiles.os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        keyring.rotate()
    monkeypatch.undo()
    assert keyring.path.read_bytes() == before
    assert keyring.active_version() == 1
    leftovers = [p.name for p in keyring.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
