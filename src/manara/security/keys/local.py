"""LocalKeyring: 256-bit KEKs in a JSON file under ``MANARA_HOME/keys/keyring.json``.

Data keys are wrapped with AES-256-GCM under the active version, with a
fresh 96-bit nonce and associated data that binds the keyring id, the
version and the caller's context. A wrapped key is ``nonce || ciphertext
|| tag`` (12 + 32 + 16 bytes).

The file is created on first use with mode 0600, and a file that group or
others can access is rejected. It is re-read on every operation, so a
rotation or retirement by another process takes effect at once.

NOTE: ``destroy`` removes the key from the file's current content, but the
old file's blocks may survive on disk (journaling file systems, SSDs,
backups). Where erasure must be provable, keep KEKs in an HSM or KMS.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from manara.clock import Clock, SystemClock
from manara.errors import ConflictError, IntegrityError, NotFoundError
from manara.ids import new_id
from manara.security.keys.base import (
    KeyState,
    KeyVersion,
    WrappedKey,
    check_data_key,
    check_same_key,
    version_aad,
)
from manara.security.keys.table import KeyTable, KeyTableFile, VersionRecord

logger = logging.getLogger(__name__)

PROVIDER = "local"
KEK_BYTES = 32
NONCE_BYTES = 12


def default_keyring_path(home: Path) -> Path:
    return home / "keys" / "keyring.json"


class LocalKeyring:
    """A file-backed ``KeyProvider`` for one machine or a shared private volume."""

    def __init__(self, path: Path, clock: Clock | None = None) -> None:
        self._file = KeyTableFile(path, clock or SystemClock())

    @property
    def path(self) -> Path:
        return self._file.path

    @property
    def provider(self) -> str:
        return PROVIDER

    @property
    def key_id(self) -> str:
        return self._table().key_id

    def _new_table(self) -> KeyTable:
        table = KeyTable(provider=PROVIDER, key_id=f"kr_{new_id()[:16]}")
        table.add_active(_encode_key(AESGCM.generate_key(bit_length=256)), self._file.clock.now())
        logger.info("keyring created path=%s key_id=%s", self.path, table.key_id)
        return table

    def _table(self) -> KeyTable:
        if not self._file.exists():
            self._file.update(lambda table: None, self._new_table)
        return self._file.load()

    def active_version(self) -> int:
        return self._table().active().version

    def wrap(self, data_key: bytes, aad: bytes) -> WrappedKey:
        check_data_key(data_key)
        table = self._table()
        record = table.active()
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(_material(table, record)).encrypt(
            nonce, data_key, version_aad(table.key_id, record.version, aad)
        )
        return WrappedKey(PROVIDER, table.key_id, record.version, nonce + sealed)

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        table = self._table()
        check_same_key(PROVIDER, table.key_id, wrapped)
        record = table.get(wrapped.version)
        check_can_unwrap(table.key_id, record)
        nonce, sealed = wrapped.ciphertext[:NONCE_BYTES], wrapped.ciphertext[NONCE_BYTES:]
        try:
            return AESGCM(_material(table, record)).decrypt(
                nonce, sealed, version_aad(table.key_id, record.version, aad)
            )
        except (InvalidTag, ValueError) as exc:
            raise IntegrityError(
                f"The data key wrapped under version {wrapped.version} of keyring "
                f"{table.key_id!r} failed authentication: the wrapped key or its context was "
                "changed. The object was not decrypted; restore it from a backup.",
                version=wrapped.version,
            ) from exc

    def rotate(self) -> int:
        now = self._file.clock.now()

        def change(table: KeyTable) -> int:
            return table.add_active(_encode_key(AESGCM.generate_key(bit_length=256)), now)

        version = self._file.update(change, self._new_table)
        logger.info("keyring rotated key_id=%s active_version=%d", self.key_id, version)
        return version

    def versions(self) -> list[KeyVersion]:
        return [record.public() for record in self._table().records]

    def retire(self, version: int) -> None:
        now = self._file.clock.now()
        self._file.update(lambda table: table.retire(version, now), self._new_table)
        logger.info("keyring version retired key_id=%s version=%d", self.key_id, version)

    def reinstate(self, version: int) -> None:
        self._file.update(lambda table: table.reinstate(version), self._new_table)
        logger.info("keyring version reinstated key_id=%s version=%d", self.key_id, version)

    def destroy(self, version: int) -> None:
        now = self._file.clock.now()
        self._file.update(lambda table: table.destroy(version, now), self._new_table)
        logger.warning("keyring version destroyed key_id=%s version=%d", self.key_id, version)


def check_can_unwrap(key_id: str, record: VersionRecord) -> None:
    """Raise unless ``record`` is in a state that unwraps data keys."""
    if record.state is KeyState.RETIRED:
        raise ConflictError(
            f"Version {record.version} of key {key_id!r} is retired, so it no longer unwraps "
            "data keys: this object was not re-wrapped before the version was retired. Run "
            f"`manara keys reinstate {record.version}`, then `manara keys rewrap`.",
            version=record.version,
        )
    if record.state is KeyState.DESTROYED:
        raise NotFoundError(
            f"Version {record.version} of key {key_id!r} was destroyed at "
            f"{record.destroyed_at}; objects wrapped under it are unreadable for good "
            "(crypto-shredded).",
            version=record.version,
        )


def _encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def _material(table: KeyTable, record: VersionRecord) -> bytes:
    try:
        key = base64.b64decode(record.material or "", validate=True)
    except binascii.Error as exc:
        raise IntegrityError(
            f"Version {record.version} of keyring {table.key_id!r} contains invalid key material. "
            "Restore the keyring file from a backup."
        ) from exc
    if len(key) != KEK_BYTES:
        raise IntegrityError(
            f"Version {record.version} of keyring {table.key_id!r} contains a {len(key)}-byte "
            f"key; expected {KEK_BYTES}. Restore the keyring file from a backup."
        )
    return key
