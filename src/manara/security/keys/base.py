"""The KeyProvider port: key encryption keys (KEKs) that wrap per-object data keys.

A provider manages numbered versions of one KEK. Each version is in one state:

============  ===========  =============  =====================================
state         wraps new    unwraps        how it gets there
============  ===========  =============  =====================================
active        yes          yes            the newest version, made by ``rotate``
enabled       no           yes            the previous active version, after ``rotate``
retired       no           no             ``retire``; ``reinstate`` makes it enabled again
destroyed     no           no             ``destroy``; the key material is erased, for good
============  ===========  =============  =====================================

So old versions keep decrypting until they are retired. A rotation must
re-wrap the data keys of existing objects under the new active version
*before* the old version is retired, because a retired version can no
longer unwrap them (``manara keys rotate`` does both steps, and
``manara keys retire`` checks that no object still needs the version).
Destroying a version makes every object whose data key it wrapped
unreadable: that is crypto-shredding.

Errors raised by ``unwrap``: ``IntegrityError`` when the wrapped key or its
associated data were changed, ``ConflictError`` for a retired version,
``NotFoundError`` for a destroyed or unknown version or another key.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from manara.errors import InvalidInputError, NotFoundError

DATA_KEY_BYTES = 32
"""Length of the AES-256 data keys that providers wrap."""


class KeyState(StrEnum):
    ACTIVE = "active"
    ENABLED = "enabled"
    RETIRED = "retired"
    DESTROYED = "destroyed"


@dataclass(frozen=True)
class WrappedKey:
    """A data key encrypted under one KEK version."""

    provider: str
    """Provider kind, such as ``local``, ``vault-transit`` or ``aws-kms``."""
    key_id: str
    """The KEK: a keyring id, a Vault transit key name or a KMS key."""
    version: int
    ciphertext: bytes


@dataclass(frozen=True)
class KeyVersion:
    """One version of a KEK and its lifecycle times (UTC; ``None`` when unknown)."""

    version: int
    state: KeyState
    created_at: datetime | None = None
    retired_at: datetime | None = None
    destroyed_at: datetime | None = None


@runtime_checkable
class KeyProvider(Protocol):
    @property
    def provider(self) -> str:
        """Provider kind written into every ``WrappedKey``."""
        ...

    @property
    def key_id(self) -> str:
        """Identifier of the KEK that this provider manages."""
        ...

    def active_version(self) -> int:
        """Return the version that wraps new data keys."""
        ...

    def wrap(self, data_key: bytes, aad: bytes) -> WrappedKey:
        """Encrypt ``data_key`` under the active version, bound to ``aad``."""
        ...

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        """Decrypt a wrapped data key; ``aad`` must equal the one given to ``wrap``."""
        ...

    def rotate(self) -> int:
        """Create a new active version and return its number."""
        ...

    def versions(self) -> list[KeyVersion]:
        """Return every version, oldest first."""
        ...

    def retire(self, version: int) -> None:
        """Stop ``version`` from unwrapping; its material is kept."""
        ...

    def reinstate(self, version: int) -> None:
        """Let a retired ``version`` unwrap again."""
        ...

    def destroy(self, version: int) -> None:
        """Erase the material of ``version``; objects wrapped under it become unreadable."""
        ...


def check_data_key(data_key: bytes) -> None:
    if len(data_key) != DATA_KEY_BYTES:
        raise InvalidInputError(
            f"Invalid data key length {len(data_key)} bytes; expected {DATA_KEY_BYTES} (AES-256)."
        )


def check_same_key(provider: str, key_id: str, wrapped: WrappedKey) -> None:
    """Raise ``NotFoundError`` when ``wrapped`` belongs to another provider or KEK."""
    if wrapped.provider != provider or wrapped.key_id != key_id:
        raise NotFoundError(
            f"The data key was wrapped by {wrapped.provider} key {wrapped.key_id!r}, but the "
            f"configured key provider is {provider} key {key_id!r}. "
            "Configure the key provider that wrote the object.",
            key_id=wrapped.key_id,
        )


def version_aad(key_id: str, version: int, aad: bytes) -> bytes:
    """Return associated data that also binds the KEK id and version."""
    encoded_id = key_id.encode("utf-8")
    return (
        b"manara-kek-wrap-v1\0"
        + struct.pack(">I", len(encoded_id))
        + encoded_id
        + struct.pack(">I", version)
        + aad
    )
