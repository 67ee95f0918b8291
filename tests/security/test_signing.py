import hashlib
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from manara.errors import IntegrityError, InvalidInputError
from manara.security.signing import (
    Signature,
    SigningKeyring,
    key_id_of,
    signed_message,
    verify,
)

DIGEST = hashlib.sha256(b"model bytes").hexdigest()
METADATA = {"model": "churn", "version": "3", "flavor": "skops"}


@pytest.fixture
def keyring(tmp_path: Path) -> SigningKeyring:
    return SigningKeyring(tmp_path / "keys")


def test_valid_signature_verifies(keyring: SigningKeyring) -> None:
    signature = keyring.sign_digest(DIGEST, METADATA)
    assert len(signature.value) == 64
    assert signature.key_id == keyring.key_id
    keyring.verify(DIGEST, METADATA, signature)
    verify(DIGEST, METADATA, signature, keyring.public_key())


def test_key_file_created_private(keyring: SigningKeyring) -> None:
    assert keyring.key_id
    text = keyring.private_path.read_text()
    assert text.startswith("-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(keyring.private_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keyring.public_path.stat().st_mode) == 0o600


def test_exposed_key_file_rejected(keyring: SigningKeyring) -> None:
    assert keyring.key_id
    os.chmod(keyring.private_path, 0o644)
    with pytest.raises(InvalidInputError, match="chmod 600"):
        keyring.sign_digest(DIGEST, METADATA)


def test_tampered_digest_rejected(keyring: SigningKeyring) -> None:
    signature = keyring.sign_digest(DIGEST, METADATA)
    other = hashlib.sha256(b"other bytes").hexdigest()
    with pytest.raises(IntegrityError, match="invalid"):
        keyring.verify(other, METADATA, signature)


@pytest.mark.parametrize(
    "metadata",
    [
        {**METADATA, "version": "4"},
        {k: v for k, v in METADATA.items() if k != "flavor"},
        {**METADATA, "extra": ""},
        {"model": "churnversion", "version": "", "flavor": "skops"},
    ],
)
def test_tampered_metadata_rejected(keyring: SigningKeyring, metadata: dict[str, str]) -> None:
    signature = keyring.sign_digest(DIGEST, METADATA)
    with pytest.raises(IntegrityError, match="invalid"):
        keyring.verify(DIGEST, metadata, signature)


def test_tampered_signature_rejected(keyring: SigningKeyring) -> None:
    signature = keyring.sign_digest(DIGEST, METADATA)
    for index in (0, 31, 63):
        value = bytearray(signature.value)
        value[index] ^= 0x01
        with pytest.raises(IntegrityError, match="invalid"):
            keyring.verify(DIGEST, METADATA, replace(signature, value=bytes(value)))


def test_missing_signature_rejected(keyring: SigningKeyring) -> None:
    with pytest.raises(IntegrityError, match="no signature"):
        keyring.verify(DIGEST, METADATA, None)


def test_unknown_key_id_rejected(keyring: SigningKeyring) -> None:
    signature = keyring.sign_digest(DIGEST, METADATA)
    with pytest.raises(IntegrityError, match="not a trusted"):
        keyring.verify(DIGEST, METADATA, replace(signature, key_id="0" * 32))


def test_foreign_key_signature_rejected(keyring: SigningKeyring) -> None:
    assert keyring.key_id
    foreign = Ed25519PrivateKey.generate()
    value = foreign.sign(signed_message(DIGEST, METADATA))
    # Claiming the trusted key id does not help a foreign key.
    forged = Signature(key_id=keyring.key_id, value=value)
    with pytest.raises(IntegrityError, match="invalid"):
        keyring.verify(DIGEST, METADATA, forged)
    own_id = Signature(key_id=key_id_of(foreign.public_key()), value=value)
    with pytest.raises(IntegrityError, match="not a trusted"):
        keyring.verify(DIGEST, METADATA, own_id)
    with pytest.raises(IntegrityError, match="not the given key"):
        verify(DIGEST, METADATA, own_id, keyring.public_key())


def test_other_algorithm_rejected(keyring: SigningKeyring) -> None:
    signature = keyring.sign_digest(DIGEST, METADATA)
    with pytest.raises(IntegrityError, match="algorithm"):
        keyring.verify(DIGEST, METADATA, replace(signature, algorithm="rsa"))


def test_rotation_keeps_old_public_keys(keyring: SigningKeyring) -> None:
    old_signature = keyring.sign_digest(DIGEST, METADATA)
    old_id = keyring.key_id
    new_id = keyring.rotate()
    assert new_id != old_id
    assert keyring.key_id == new_id
    assert keyring.key_ids() == [old_id, new_id]
    keyring.verify(DIGEST, METADATA, old_signature)
    new_signature = keyring.sign_digest(DIGEST, METADATA)
    assert new_signature.key_id == new_id
    keyring.verify(DIGEST, METADATA, new_signature)
    on_disk = load_pem_private_key(keyring.private_path.read_bytes(), None)
    assert isinstance(on_disk, Ed25519PrivateKey)
    assert key_id_of(on_disk.public_key()) == new_id


def test_public_key_export_verifies(keyring: SigningKeyring) -> None:
    signature = keyring.sign_digest(DIGEST, METADATA)
    exported = load_pem_public_key(keyring.public_key_pem().encode())
    assert isinstance(exported, Ed25519PublicKey)
    assert key_id_of(exported) == signature.key_id
    verify(DIGEST, METADATA, signature, exported)
    assert "PRIVATE" not in keyring.public_key_pem()


def test_signature_dict_round_trip(keyring: SigningKeyring) -> None:
    signature = keyring.sign_digest(DIGEST, METADATA)
    assert Signature.from_dict(signature.to_dict()) == signature
    with pytest.raises(IntegrityError):
        Signature.from_dict({"key_id": "x", "algorithm": "ed25519", "value": "not base64!"})


def test_message_is_domain_separated() -> None:
    message = signed_message(DIGEST, {})
    assert message.startswith(b"manara-artifact-v1\0")
    assert bytes.fromhex(DIGEST) in message
    with pytest.raises(InvalidInputError):
        signed_message("not-a-digest", {})
