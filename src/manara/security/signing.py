"""Ed25519 signatures over artifact digests and their metadata.

The platform signing key is a PEM (PKCS #8) private key at
``MANARA_HOME/keys/signing.key``, created on first use with mode 0600.
Its public keys, the current one and every earlier one, are kept in
``signing-public.json`` beside it, so signatures made before a rotation
still verify. Each signature names its key by ``key_id``: the first 32
hex digits of the SHA-256 of the raw 32-byte public key.

The signed message is::

    b"manara-artifact-v1\\0" || SHA-256 digest (32 raw bytes)
        || u32 number of metadata entries
        || for each entry, sorted by key: u32 length, key (UTF-8), u32 length, value (UTF-8)

The prefix separates these signatures from any other use of the key, and
the length prefixes make the encoding unambiguous.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from manara.clock import Clock, SystemClock
from manara.errors import IntegrityError, InvalidInputError
from manara.security.keyfiles import atomic_write, exclusive_lock, read_private
from manara.stores.artifacts.store import check_digest

logger = logging.getLogger(__name__)

ALGORITHM = "ed25519"
DOMAIN = b"manara-artifact-v1\0"
PRIVATE_KEY_FILE = "signing.key"
PUBLIC_KEYS_FILE = "signing-public.json"
_U32 = struct.Struct(">I")


@dataclass(frozen=True)
class Signature:
    key_id: str
    value: bytes
    algorithm: str = ALGORITHM

    def to_dict(self) -> dict[str, str]:
        return {
            "algorithm": self.algorithm,
            "key_id": self.key_id,
            "value": base64.b64encode(self.value).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Signature:
        try:
            value = base64.b64decode(str(raw["value"]), validate=True)
            return cls(key_id=str(raw["key_id"]), value=value, algorithm=str(raw["algorithm"]))
        except (KeyError, binascii.Error) as exc:
            raise IntegrityError(
                f"Invalid signature record ({exc}); it cannot be checked."
            ) from exc


def key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def signed_message(digest: str, metadata: Mapping[str, str]) -> bytes:
    """Return the canonical bytes that a signature covers."""
    check_digest(digest)
    parts = [DOMAIN, bytes.fromhex(digest), _U32.pack(len(metadata))]
    for key in sorted(metadata):
        value = metadata[key]
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidInputError(
                f"Signature metadata must map strings to strings; got {key!r}: {value!r}."
            )
        for text in (key, value):
            encoded = text.encode("utf-8")
            parts.append(_U32.pack(len(encoded)) + encoded)
    return b"".join(parts)


def verify(
    digest: str,
    metadata: Mapping[str, str],
    signature: Signature | None,
    public_key: Ed25519PublicKey,
) -> None:
    """Raise ``IntegrityError`` unless ``signature`` by ``public_key`` covers digest and metadata."""
    if signature is None:
        raise IntegrityError(
            f"Artifact {digest} has no signature, so its origin cannot be checked. It was "
            "not loaded; register it again through Manara to sign it.",
            digest=digest,
        )
    if signature.algorithm != ALGORITHM:
        raise IntegrityError(
            f"Signature of artifact {digest} uses algorithm {signature.algorithm!r}; only "
            f"{ALGORITHM!r} is accepted.",
            digest=digest,
        )
    expected_id = key_id_of(public_key)
    if signature.key_id != expected_id:
        raise IntegrityError(
            f"Signature of artifact {digest} names key {signature.key_id}, not the given "
            f"key {expected_id}.",
            digest=digest,
        )
    try:
        public_key.verify(signature.value, signed_message(digest, metadata))
    except InvalidSignature as exc:
        raise IntegrityError(
            f"Signature of artifact {digest} by key {signature.key_id} is invalid: the "
            "digest, its metadata or the signature was changed. It was not loaded.",
            digest=digest,
            key_id=signature.key_id,
        ) from exc


class SigningKeyring:
    """The platform's Ed25519 signing key and the public keys it has had."""

    def __init__(self, folder: Path, clock: Clock | None = None) -> None:
        self.folder = folder
        self._clock = clock or SystemClock()

    @property
    def private_path(self) -> Path:
        return self.folder / PRIVATE_KEY_FILE

    @property
    def public_path(self) -> Path:
        return self.folder / PUBLIC_KEYS_FILE

    def _load_public(self) -> list[dict[str, str]]:
        if not self.public_path.exists():
            return []
        try:
            entries: list[dict[str, str]] = json.loads(read_private(self.public_path))["keys"]
        except (ValueError, KeyError) as exc:
            raise IntegrityError(
                f"Public key file {self.public_path} is invalid ({exc}). Restore it from a backup."
            ) from exc
        return entries

    def _save_public(self, entries: list[dict[str, str]]) -> None:
        document = json.dumps({"format": 1, "keys": entries}, indent=2).encode("utf-8")
        atomic_write(self.public_path, document + b"\n")

    def _trust(self, private_key: Ed25519PrivateKey) -> None:
        """Add the public half of ``private_key`` to the public key file if missing."""
        public = private_key.public_key()
        entries = self._load_public()
        if any(entry["key_id"] == key_id_of(public) for entry in entries):
            return
        pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        entries.append(
            {
                "key_id": key_id_of(public),
                "public_key": pem.decode("ascii"),
                "created_at": self._clock.now().isoformat(),
            }
        )
        self._save_public(entries)

    def _write_new_key(self) -> Ed25519PrivateKey:
        private_key = Ed25519PrivateKey.generate()
        # Trust first: a crash in between leaves an unused public key, never
        # a private key whose signatures nothing can verify.
        self._trust(private_key)
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        atomic_write(self.private_path, pem)
        logger.info("signing key created key_id=%s", key_id_of(private_key.public_key()))
        return private_key

    def _private_key(self) -> Ed25519PrivateKey:
        if not self.private_path.exists():
            with exclusive_lock(self.private_path):
                if not self.private_path.exists():
                    return self._write_new_key()
        loaded = serialization.load_pem_private_key(read_private(self.private_path), None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise IntegrityError(
                f"Signing key file {self.private_path} does not hold an Ed25519 key. Restore "
                "it from a backup."
            )
        if self._find_public(key_id_of(loaded.public_key())) is None:
            with exclusive_lock(self.private_path):
                self._trust(loaded)
        return loaded

    def _find_public(self, key_id: str) -> Ed25519PublicKey | None:
        for entry in self._load_public():
            if entry["key_id"] == key_id:
                key = serialization.load_pem_public_key(entry["public_key"].encode("ascii"))
                if isinstance(key, Ed25519PublicKey) and key_id_of(key) == key_id:
                    return key
                raise IntegrityError(
                    f"Public key {key_id} in {self.public_path} does not match its id. "
                    "Restore the file from a backup."
                )
        return None

    @property
    def key_id(self) -> str:
        return key_id_of(self._private_key().public_key())

    def public_key(self, key_id: str | None = None) -> Ed25519PublicKey:
        """Return the current public key, or the trusted one named ``key_id``."""
        if key_id is None:
            return self._private_key().public_key()
        key = self._find_public(key_id)
        if key is None:
            raise IntegrityError(
                f"Signing key {key_id} is not a trusted Manara signing key; signatures by it "
                "are rejected."
            )
        return key

    def public_key_pem(self, key_id: str | None = None) -> str:
        pem = self.public_key(key_id).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem.decode("ascii")

    def key_ids(self) -> list[str]:
        """Return the ids of every trusted public key, oldest first."""
        self._private_key()
        return [entry["key_id"] for entry in self._load_public()]

    def sign_digest(self, digest: str, metadata: Mapping[str, str]) -> Signature:
        private_key = self._private_key()
        value = private_key.sign(signed_message(digest, metadata))
        return Signature(key_id_of(private_key.public_key()), value)

    def verify(self, digest: str, metadata: Mapping[str, str], signature: Signature | None) -> None:
        """Check ``signature`` against the trusted public key it names."""
        if signature is None:
            verify(digest, metadata, None, self.public_key())
            return
        verify(digest, metadata, signature, self.public_key(signature.key_id))

    def rotate(self) -> str:
        """Replace the private key; earlier public keys stay trusted. Return the new id."""
        with exclusive_lock(self.private_path):
            new_key = self._write_new_key()
        return key_id_of(new_key.public_key())
