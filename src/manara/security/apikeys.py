"""API keys: shown once, stored as argon2id hashes, found by a public prefix.

A key reads ``mnr_<prefix>_<secret>``. The prefix is stored in clear to
find the row; only an argon2id hash of the whole key is kept. Argon2id is
slow on purpose (tens of milliseconds), so ``Authenticator`` caches a
successful check for a short time under the key's SHA-256, which keeps the
inference path fast without storing the key itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from manara.clock import Clock
from manara.errors import AuthenticationError
from manara.ids import new_id
from manara.security.principal import Principal
from manara.stores.metadata.identities import ApiKeyRecord, IdentityRepository

logger = logging.getLogger(__name__)

KEY_SCHEME = "mnr"
_HASHER = PasswordHasher()


@dataclass(frozen=True)
class IssuedKey:
    """A new key; ``token`` is shown to the user once and never stored."""

    token: str
    prefix: str
    expires_at: datetime | None


def issue_api_key(
    identities: IdentityRepository,
    principal: Principal,
    now: datetime,
    ttl: timedelta | None = None,
) -> IssuedKey:
    prefix = secrets.token_hex(6)
    token = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    expires_at = now + ttl if ttl is not None else None
    identities.add_api_key(
        ApiKeyRecord(
            id=new_id(),
            prefix=prefix,
            secret_hash=_HASHER.hash(token),
            principal_id=principal.id,
            created_at=now,
            expires_at=expires_at,
            revoked_at=None,
            last_used_at=None,
        )
    )
    return IssuedKey(token=token, prefix=prefix, expires_at=expires_at)


def _parse(token: str) -> str:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_SCHEME or not parts[1] or not parts[2]:
        raise AuthenticationError("Invalid API key format. Expected a key that starts with 'mnr_'.")
    return parts[1]


class Authenticator:
    """Turns a bearer token into a Principal, or raises ``AuthenticationError``."""

    def __init__(
        self, identities: IdentityRepository, clock: Clock, cache_seconds: float = 60.0
    ) -> None:
        self._identities = identities
        self._clock = clock
        self._cache_ttl = timedelta(seconds=cache_seconds)
        self._cache: dict[bytes, tuple[Principal, datetime]] = {}
        self._lock = threading.Lock()

    def authenticate(self, token: str) -> Principal:
        now = self._clock.now()
        fingerprint = hashlib.sha256(token.encode()).digest()
        with self._lock:
            cached = self._cache.get(fingerprint)
        if cached is not None and cached[1] > now:
            return cached[0]

        prefix = _parse(token)
        record = self._identities.find_api_key(prefix)
        if record is None or not self._verify(record, token):
            raise AuthenticationError("Invalid API key. Check the key or issue a new one.")
        if record.revoked_at is not None:
            raise AuthenticationError(f"API key {prefix} was revoked. Issue a new one.")
        if record.expires_at is not None and record.expires_at <= now:
            raise AuthenticationError(f"API key {prefix} expired. Issue a new one.")

        principal = self._identities.get_principal(record.principal_id)
        self._identities.touch_api_key(record.id, now)
        valid_until = now + self._cache_ttl
        if record.expires_at is not None:
            valid_until = min(valid_until, record.expires_at)
        with self._lock:
            self._cache[fingerprint] = (principal, valid_until)
        return principal

    @staticmethod
    def _verify(record: ApiKeyRecord, token: str) -> bool:
        try:
            return _HASHER.verify(record.secret_hash, token)
        except (VerificationError, InvalidHashError):
            return False

    def forget(self) -> None:
        """Drop cached checks, for example after a key is revoked."""
        with self._lock:
            self._cache.clear()


def bearer_token(header_value: str | None) -> str:
    """Extract the token of an ``Authorization: Bearer`` header."""
    if not header_value:
        raise AuthenticationError(
            "Missing Authorization header. Send 'Authorization: Bearer <API key>'."
        )
    scheme, _, token = header_value.partition(" ")
    if not hmac.compare_digest(scheme.lower(), "bearer") or not token.strip():
        raise AuthenticationError("Invalid Authorization header. Use 'Bearer <API key>'.")
    return token.strip()
