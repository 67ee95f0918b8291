"""The Ed25519 key that signs audit tree heads, and the bytes it signs.

A signed tree head is the message ``TREE_HEAD_PREFIX || tree_size ||
time_us || root_hash``: the size and the time (microseconds since the Unix
epoch, UTC) as unsigned 64-bit big-endian integers, then the 32-byte root.
``tools/verify_audit_proof.py`` rebuilds the same bytes; change both or
neither.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import struct
import uuid
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from manara.errors import InvalidInputError
from manara.files import private_dir

logger = logging.getLogger(__name__)

TREE_HEAD_PREFIX = b"manara.audit.tree-head.v1\x00"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def tree_head_message(tree_size: int, time: datetime, root_hash: bytes) -> bytes:
    """Return the bytes a checkpoint signs."""
    if time.tzinfo is None:
        raise InvalidInputError(f"Tree head time {time.isoformat()} has no time zone.")
    delta = time.astimezone(UTC) - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return TREE_HEAD_PREFIX + struct.pack(">QQ", tree_size, micros) + root_hash


def key_id(public_key: bytes) -> str:
    """Return the hex SHA-256 of a raw 32-byte Ed25519 public key."""
    return hashlib.sha256(public_key).hexdigest()


class AuditSigner:
    """Signs tree heads with an Ed25519 private key kept in one file.

    ``load_or_create`` creates the key on first use with mode 0600 in a 0700
    folder, and rejects an existing file that group or others can access.
    """

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self.public_key = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = key_id(self.public_key)

    @classmethod
    def generate(cls) -> AuditSigner:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: Path) -> AuditSigner:
        if not path.exists():
            _create_key_file(path)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise InvalidInputError(
                f"Audit signing key {path} has mode {mode:04o}, so group or others can access "
                f"it; refusing to use it. Check who may have read it, then run "
                f"`chmod 600 {path}`."
            )
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except ValueError as exc:
            raise InvalidInputError(
                f"Audit signing key {path} is not a PEM private key: {exc}. Restore it from "
                "backup; a new key cannot vouch for old checkpoints."
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise InvalidInputError(f"Audit signing key {path} is not an Ed25519 key.")
        return cls(key)

    def sign(self, message: bytes) -> bytes:
        return self._private_key.sign(message)

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def _create_key_file(path: Path) -> None:
    """Write a new key under a temporary name, then link it into place.

    ``os.link`` fails when ``path`` exists, so two processes that start at
    once keep the first key written and neither reads a half-written file.
    """
    private_dir(path.parent)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return
        logger.info("created audit signing key %s", path)
    finally:
        temporary.unlink(missing_ok=True)
