"""CloudKMSKeyProvider: KEKs held in a cloud KMS with the AWS KMS API.

The provider takes a client object with the AWS KMS method names and
keyword arguments, so ``boto3.client("kms", region_name="me-central-1")``
fits as it is. Manara does not depend on boto3. AWS KMS has no per-key
version to retire, so each version here is its own KMS key. A small 0600
JSON table (no key material in it) maps versions to KMS key ids:

- ``rotate`` calls ``CreateKey`` and makes the new key active;
- ``retire`` and ``reinstate`` call ``DisableKey`` and ``EnableKey``;
- ``destroy`` calls ``ScheduleKeyDeletion``. NOTE: AWS erases the key
  material only after the pending window (7 to 30 days); until then the
  key is unusable but an AWS administrator can still cancel the deletion.

The associated data is sent as the encryption context
``{"manara-aad-sha256": <hex SHA-256 of the AAD>}``: KMS binds the wrapped
key to it, and CloudTrail logs only the hash, not artifact names.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from manara.clock import Clock, SystemClock
from manara.errors import (
    ConflictError,
    IntegrityError,
    ManaraError,
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
)
from manara.ids import new_id
from manara.security.keys.base import KeyVersion, WrappedKey, check_data_key, check_same_key
from manara.security.keys.local import check_can_unwrap
from manara.security.keys.table import KeyTable, KeyTableFile

logger = logging.getLogger(__name__)

PROVIDER = "aws-kms"
_CONTEXT_KEY = "manara-aad-sha256"


class KMSClient(Protocol):
    """The subset of the AWS KMS client API that the provider calls."""

    def encrypt(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def decrypt(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def create_key(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def disable_key(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def enable_key(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def schedule_key_deletion(self, **kwargs: Any) -> Mapping[str, Any]: ...


class CloudKMSKeyProvider:
    """A ``KeyProvider`` whose versions are KMS keys listed in a local table."""

    def __init__(
        self,
        client: KMSClient,
        table_path: Path,
        initial_key_id: str | None = None,
        pending_window_days: int = 7,
        clock: Clock | None = None,
    ) -> None:
        if not 7 <= pending_window_days <= 30:
            raise ValueError(
                f"pending_window_days must be between 7 and 30 (the AWS KMS limits); "
                f"got {pending_window_days}"
            )
        self._client = client
        self._file = KeyTableFile(table_path, clock or SystemClock())
        self._initial_key_id = initial_key_id
        self._pending_window_days = pending_window_days

    @property
    def provider(self) -> str:
        return PROVIDER

    @property
    def key_id(self) -> str:
        return self._table().key_id

    def _create_kms_key(self) -> str:
        response = self._kms(
            "CreateKey",
            lambda: self._client.create_key(
                Description="Manara key encryption key",
                KeyUsage="ENCRYPT_DECRYPT",
                KeySpec="SYMMETRIC_DEFAULT",
            ),
        )
        return str(response["KeyMetadata"]["Arn"])

    def _new_table(self) -> KeyTable:
        table = KeyTable(provider=PROVIDER, key_id=f"kms_{new_id()[:16]}")
        material = self._initial_key_id or self._create_kms_key()
        table.add_active(material, self._file.clock.now())
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
        response = self._kms(
            "Encrypt",
            lambda: self._client.encrypt(
                KeyId=record.material, Plaintext=data_key, EncryptionContext=_context(aad)
            ),
        )
        return WrappedKey(PROVIDER, table.key_id, record.version, bytes(response["CiphertextBlob"]))

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        table = self._table()
        check_same_key(PROVIDER, table.key_id, wrapped)
        record = table.get(wrapped.version)
        check_can_unwrap(table.key_id, record)
        response = self._kms(
            "Decrypt",
            lambda: self._client.decrypt(
                KeyId=record.material,
                CiphertextBlob=wrapped.ciphertext,
                EncryptionContext=_context(aad),
            ),
        )
        return bytes(response["Plaintext"])

    def rotate(self) -> int:
        kms_key = self._create_kms_key()
        now = self._file.clock.now()
        version = self._file.update(lambda table: table.add_active(kms_key, now), self._new_table)
        logger.info("kms key rotated key_id=%s active_version=%d", self.key_id, version)
        return version

    def versions(self) -> list[KeyVersion]:
        return [record.public() for record in self._table().records]

    def retire(self, version: int) -> None:
        now = self._file.clock.now()

        def change(table: KeyTable) -> None:
            material = table.get(version).material
            table.retire(version, now)
            self._kms("DisableKey", lambda: self._client.disable_key(KeyId=material))

        self._file.update(change, self._new_table)

    def reinstate(self, version: int) -> None:
        def change(table: KeyTable) -> None:
            material = table.get(version).material
            table.reinstate(version)
            self._kms("EnableKey", lambda: self._client.enable_key(KeyId=material))

        self._file.update(change, self._new_table)

    def destroy(self, version: int) -> None:
        now = self._file.clock.now()

        def change(table: KeyTable) -> None:
            old = table.destroy(version, now)
            if old.material is not None:
                self._kms(
                    "ScheduleKeyDeletion",
                    lambda: self._client.schedule_key_deletion(
                        KeyId=old.material, PendingWindowInDays=self._pending_window_days
                    ),
                )

        self._file.update(change, self._new_table)
        logger.warning("kms key version destroyed key_id=%s version=%d", self.key_id, version)

    def _kms(self, operation: str, call: Callable[[], Mapping[str, Any]]) -> Mapping[str, Any]:
        try:
            return call()
        except ManaraError:
            raise
        except Exception as exc:
            # botocore's ClientError carries the AWS error code in ``response``.
            response = getattr(exc, "response", None)
            if not isinstance(response, Mapping):
                raise
            code = str(response.get("Error", {}).get("Code", ""))
            raise _kms_error(operation, code, str(exc)) from exc


def _context(aad: bytes) -> dict[str, str]:
    return {_CONTEXT_KEY: hashlib.sha256(aad).hexdigest()}


_ERRORS: dict[str, tuple[type[ManaraError], str]] = {
    "InvalidCiphertextException": (
        IntegrityError,
        "The wrapped data key or its context was changed; the object was not decrypted.",
    ),
    "IncorrectKeyException": (IntegrityError, "The wrapped data key belongs to another key."),
    "DisabledException": (ConflictError, "The KMS key is disabled; reinstate it first."),
    "KMSInvalidStateException": (
        ConflictError,
        "The KMS key is disabled or pending deletion.",
    ),
    "NotFoundException": (NotFoundError, "Check the KMS key id and region."),
    "AccessDeniedException": (PermissionDeniedError, "Grant the caller the KMS permission."),
}


def _kms_error(operation: str, code: str, detail: str) -> ManaraError:
    cls, advice = _ERRORS.get(code, (UnavailableError, "Retry later."))
    return cls(
        f"KMS {operation} failed ({code or 'unknown error'}: {detail}). {advice}", aws_code=code
    )
