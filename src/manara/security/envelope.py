"""Envelope encryption of artifacts: AES-256-GCM under a fresh data key per object.

Each object gets a random 256-bit data key and a random 96-bit nonce. The
data key is wrapped by a ``KeyProvider``. Both the data and the wrapped key
are bound to the object's ``ArtifactContext`` (project, artifact id,
classification, region) through associated data, so a ciphertext moved to
another context fails to decrypt with ``IntegrityError``.

Byte layout of an envelope (integers big-endian)::

    offset  size  field
    0       4     magic b"MNRE"
    4       1     format version, 1
    5       4     header length H in bytes, counted from offset 0
    9       ...   nine fields, each a u32 length then that many bytes, in order:
                  key provider (UTF-8), KEK id (UTF-8), KEK version (u32),
                  wrapped data key, nonce (12 bytes), project, artifact id,
                  classification, region (UTF-8)
    H       ...   AES-256-GCM ciphertext followed by its 16-byte tag

The associated data of the body is ``b"manara-envelope-v1\\0"`` followed by
the four context fields, each length-prefixed (u32). The wrapped key uses
the same fields under the prefix ``b"manara-data-key-v1\\0"``. Neither
includes the KEK fields, so ``rewrap`` can replace the wrapped key without
touching the body. The context fields in the header are a copy for
``rewrap``: ``decrypt`` checks them against the caller's context, and
the associated data is built from the caller's context, never from the
header alone.

NOTE: one envelope is sealed in a single AES-GCM call, and the
cryptography package limits one call to 2**31 - 1 bytes. Larger artifacts
are rejected until a chunked format exists.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, fields

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from manara.errors import IntegrityError, InvalidInputError
from manara.security.keys.base import DATA_KEY_BYTES, KeyProvider, WrappedKey

MAGIC = b"MNRE"
FORMAT_VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_PLAINTEXT_BYTES = 2**31 - 1
_PREFIX = struct.Struct(">4sBI")
_LENGTH = struct.Struct(">I")
_FIELD_COUNT = 9
_MAX_FIELD_BYTES = 1 << 16


@dataclass(frozen=True)
class ArtifactContext:
    """The owner and placement of an artifact; every field is bound into its ciphertext."""

    project: str
    artifact_id: str
    classification: str
    region: str

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not isinstance(value, str) or not value:
                raise InvalidInputError(
                    f"Invalid artifact context: {item.name} must be a non-empty string; "
                    f"got {value!r}.",
                    field=item.name,
                )
            if len(value.encode("utf-8")) > _MAX_FIELD_BYTES:
                raise InvalidInputError(
                    f"Invalid artifact context: {item.name} is longer than "
                    f"{_MAX_FIELD_BYTES} bytes.",
                    field=item.name,
                )

    def encode(self) -> bytes:
        """Return the canonical encoding: each field length-prefixed, in declaration order."""
        return b"".join(_field(getattr(self, item.name).encode("utf-8")) for item in fields(self))


def body_aad(context: ArtifactContext) -> bytes:
    return b"manara-envelope-v1\0" + context.encode()


def data_key_aad(context: ArtifactContext) -> bytes:
    return b"manara-data-key-v1\0" + context.encode()


@dataclass(frozen=True)
class EnvelopeHeader:
    wrapped: WrappedKey
    nonce: bytes
    context: ArtifactContext

    def encode(self) -> bytes:
        parts = [
            self.wrapped.provider.encode("utf-8"),
            self.wrapped.key_id.encode("utf-8"),
            _LENGTH.pack(self.wrapped.version),
            self.wrapped.ciphertext,
            self.nonce,
            self.context.encode(),
        ]
        body = b"".join(_field(part) for part in parts[:5]) + parts[5]
        return _PREFIX.pack(MAGIC, FORMAT_VERSION, _PREFIX.size + len(body)) + body

    @classmethod
    def decode(cls, blob: bytes) -> tuple[EnvelopeHeader, int]:
        """Parse the header at the start of ``blob``; return it and the body offset."""
        if len(blob) < _PREFIX.size:
            raise _corrupt("it is shorter than an envelope header")
        magic, version, length = _PREFIX.unpack_from(blob)
        if magic != MAGIC:
            raise _corrupt("it does not start with the envelope magic bytes b'MNRE'")
        if version != FORMAT_VERSION:
            raise _corrupt(f"its format version {version} is not supported (expected 1)")
        if length > len(blob) or length < _PREFIX.size:
            raise _corrupt(f"its header length {length} does not fit the object")
        values = _read_fields(blob[_PREFIX.size : length])
        try:
            kek_version = _LENGTH.unpack(values[2])[0]
            wrapped = WrappedKey(
                values[0].decode("utf-8"), values[1].decode("utf-8"), kek_version, values[3]
            )
            context = ArtifactContext(*(value.decode("utf-8") for value in values[5:]))
        except (struct.error, UnicodeDecodeError, InvalidInputError) as exc:
            raise _corrupt(f"a header field is invalid ({exc})") from exc
        if len(values[4]) != NONCE_BYTES:
            raise _corrupt(f"its nonce is {len(values[4])} bytes, not {NONCE_BYTES}")
        return cls(wrapped, values[4], context), length


def _field(value: bytes) -> bytes:
    return _LENGTH.pack(len(value)) + value


def _read_fields(data: bytes) -> list[bytes]:
    values: list[bytes] = []
    offset = 0
    while offset < len(data):
        if offset + _LENGTH.size > len(data):
            raise _corrupt("a header field length is cut short")
        (size,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        if offset + size > len(data):
            raise _corrupt("a header field runs past the header")
        values.append(data[offset : offset + size])
        offset += size
    if len(values) != _FIELD_COUNT:
        raise _corrupt(f"its header has {len(values)} fields, not {_FIELD_COUNT}")
    return values


def _corrupt(reason: str) -> IntegrityError:
    return IntegrityError(
        f"The object is not a valid Manara envelope: {reason}. It was changed or is not "
        "encrypted by Manara; restore it from a backup."
    )


def check_context(header: EnvelopeHeader, expected: ArtifactContext) -> None:
    """Raise ``IntegrityError`` naming the first field where the header's context differs."""
    for item in fields(expected):
        stored = getattr(header.context, item.name)
        requested = getattr(expected, item.name)
        if stored != requested:
            raise IntegrityError(
                f"The object was encrypted for {item.name} {stored!r}, not {requested!r}: it was "
                "moved from another context and was not decrypted. Read it in its own "
                "context, or restore the right object.",
                field=item.name,
            )


def encrypt(plaintext: bytes, context: ArtifactContext, provider: KeyProvider) -> bytes:
    """Encrypt ``plaintext`` under a fresh data key wrapped by ``provider``."""
    if len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise InvalidInputError(
            f"Artifact of {len(plaintext)} bytes is too large to encrypt; the maximum is "
            f"{MAX_PLAINTEXT_BYTES} bytes."
        )
    data_key = AESGCM.generate_key(bit_length=8 * DATA_KEY_BYTES)
    nonce = os.urandom(NONCE_BYTES)
    body = AESGCM(data_key).encrypt(nonce, plaintext, body_aad(context))
    wrapped = provider.wrap(data_key, data_key_aad(context))
    return EnvelopeHeader(wrapped, nonce, context).encode() + body


def decrypt(blob: bytes, context: ArtifactContext, provider: KeyProvider) -> bytes:
    """Decrypt an envelope written for ``context``; raise ``IntegrityError`` if changed."""
    header, offset = EnvelopeHeader.decode(blob)
    check_context(header, context)
    data_key = provider.unwrap(header.wrapped, data_key_aad(context))
    try:
        return AESGCM(data_key).decrypt(header.nonce, blob[offset:], body_aad(context))
    except (InvalidTag, ValueError) as exc:
        raise IntegrityError(
            f"The encrypted artifact {context.artifact_id!r} failed authentication: its "
            "ciphertext, nonce or tag was changed, or it belongs to another context. "
            "It was not decrypted; restore it from a backup.",
            artifact_id=context.artifact_id,
        ) from exc


def split(blob: bytes) -> tuple[bytes, bytes]:
    """Return the header bytes and the body (ciphertext and tag) of an envelope."""
    _, offset = EnvelopeHeader.decode(blob)
    return blob[:offset], blob[offset:]


def rewrap_header(
    header_bytes: bytes, provider: KeyProvider, target: KeyProvider | None = None
) -> bytes:
    """Re-wrap the data key in an encoded header under ``target``'s active version.

    ``provider`` unwraps the current key; ``target`` (default: the same
    provider) wraps it again, which also moves objects between providers.
    """
    header, offset = EnvelopeHeader.decode(header_bytes)
    if offset != len(header_bytes):
        raise InvalidInputError("rewrap_header takes the header bytes alone; use rewrap.")
    aad = data_key_aad(header.context)
    data_key = provider.unwrap(header.wrapped, aad)
    wrapped = (target or provider).wrap(data_key, aad)
    return EnvelopeHeader(wrapped, header.nonce, header.context).encode()


def rewrap(blob: bytes, provider: KeyProvider, target: KeyProvider | None = None) -> bytes:
    """Return ``blob`` with its data key re-wrapped; the ciphertext bytes stay the same."""
    header_bytes, body = split(blob)
    return rewrap_header(header_bytes, provider, target) + body
