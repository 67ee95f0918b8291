"""API keys, and the one entry point that authenticates every bearer credential.

A key reads ``mnr_<prefix>_<secret>``. The prefix is stored in clear to
find the row; only an argon2id hash of the whole key is kept. Argon2id is
slow on purpose (tens of milliseconds), so ``Authenticator`` caches a
successful check for a short time under the credential's SHA-256, which
keeps the inference path fast without storing the credential itself.

``Authenticator.authenticate`` also accepts JWTs (three base64url segments)
and hands them to ``manara.security.oidc.TokenVerifier``. Repeated failures
from one client address or for one key prefix lock them out for a while
(``manara.security.ratelimit``). Every failure is reported to ``on_failure``,
which the workspace writes to the audit log as ``auth.failed``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from manara.clock import Clock
from manara.errors import AuthenticationError, RateLimitedError
from manara.ids import new_id
from manara.security.principal import Principal
from manara.security.ratelimit import FailureLimiter
from manara.stores.metadata.identities import ApiKeyRecord, IdentityRepository

if TYPE_CHECKING:
    from manara.security.oidc import TokenVerifier

logger = logging.getLogger(__name__)

KEY_SCHEME = "mnr"
_KEY_START = f"{KEY_SCHEME}_"
_PREFIX_CHARS = 12
_HEX = frozenset("0123456789abcdef")
_HASHER = PasswordHasher()
# Entries past this count are dropped wholesale; a flood of distinct valid
# credentials then costs re-verification, never unbounded memory.
_MAX_CACHE_ENTRIES = 10_000
# Failures that suggest guessing; expired, revoked or disabled credentials were
# valid once, so they are audited but do not count towards a lockout.
_COUNTED_REASONS = frozenset(
    {
        "malformed",
        "invalid_key",
        "invalid_signature",
        "unknown_key",
        "unknown_issuer",
        "algorithm_not_allowed",
        "invalid_token",
    }
)


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
    prefix = secrets.token_hex(_PREFIX_CHARS // 2)
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
        raise AuthenticationError(
            "Invalid API key format. Expected a key that starts with 'mnr_'.", reason="malformed"
        )
    return parts[1]


def _prefix_of(token: str) -> str | None:
    """Return the lookup prefix of a well-formed API key, else None (never attacker text)."""
    if not token.startswith(_KEY_START):
        return None
    prefix = token[len(_KEY_START) : len(_KEY_START) + _PREFIX_CHARS + 1]
    if len(prefix) != _PREFIX_CHARS + 1 or prefix[-1] != "_":
        return None
    prefix = prefix[:-1]
    return prefix if all(c in _HEX for c in prefix) else None


def _limit_keys(client: str | None, prefix: str | None) -> tuple[str, ...]:
    keys: list[str] = []
    if client:
        keys.append(f"client:{client}")
    if prefix is not None:
        keys.append(f"prefix:{prefix}")
    return tuple(keys)


# Missing or malformed Authorization headers are audited at most once per
# client in this interval; past this many clients the table starts afresh.
_HEADER_AUDIT_INTERVAL_SECONDS = 60.0
_MAX_HEADER_CLIENTS = 10_000


@dataclass(frozen=True)
class AuthFailure:
    """A rejected credential, as reported to the audit log (never the credential itself)."""

    reason: str
    """Reason code such as ``invalid_key``, ``expired``, ``revoked`` or ``rate_limited``."""
    credential: str
    """``api_key``, ``jwt`` or ``unknown``."""
    client: str | None
    key_prefix: str | None
    principal_id: str | None
    """The principal the credential belongs to, when that is known (expired, revoked keys)."""
    suppressed: int = 0
    """Failures of the same kind from the same client not audited since the previous event."""


class Authenticator:
    """Turns a bearer credential (API key or JWT) into a Principal, or raises ``AuthenticationError``.

    Successful checks are cached for ``cache_seconds`` under the SHA-256 of
    the credential, so a revoked key or a disabled principal keeps working
    in this process for up to that long (``forget`` drops the cache).
    Failures are counted by ``limiter`` and reported to ``on_failure``.
    """

    def __init__(
        self,
        identities: IdentityRepository,
        clock: Clock,
        cache_seconds: float = 60.0,
        *,
        tokens: TokenVerifier | None = None,
        limiter: FailureLimiter | None = None,
        on_failure: Callable[[AuthFailure], None] | None = None,
    ) -> None:
        self._identities = identities
        self._clock = clock
        self._cache_ttl = timedelta(seconds=cache_seconds)
        self._cache: dict[bytes, tuple[Principal, datetime]] = {}
        self._lock = threading.Lock()
        self._tokens = tokens
        self._limiter = limiter or FailureLimiter(clock=lambda: clock.now().timestamp())
        self._on_failure = on_failure
        # Per client: (start of the current throttle window, failures left unaudited in it).
        self._header_failures: dict[str, tuple[float, int]] = {}

    def report_header_failure(self, reason: str, client: str | None) -> None:
        """Audit a missing or malformed Authorization header, at most once per client a minute.

        Such requests carry no credential to count towards a lockout, so an
        unauthenticated flood could otherwise fill the audit log. The next
        event for the client records in ``suppressed`` how many were skipped.
        """
        now = self._clock.now().timestamp()
        key = client or "unknown"
        with self._lock:
            started, skipped = self._header_failures.get(key, (float("-inf"), 0))
            if now - started < _HEADER_AUDIT_INTERVAL_SECONDS:
                self._header_failures[key] = (started, skipped + 1)
                return
            if len(self._header_failures) >= _MAX_HEADER_CLIENTS:
                self._header_failures.clear()
            self._header_failures[key] = (now, 0)
        logger.info("authentication failed reason=%s client=%s", reason, client)
        if self._on_failure is None:
            return
        failure = AuthFailure(reason, "none", client, None, None, suppressed=skipped)
        try:
            self._on_failure(failure)
        except Exception:
            logger.exception("could not record a failed authentication reason=%s", reason)

    def authenticate(self, token: str, *, client: str | None = None) -> Principal:
        """Return the principal of ``token``; ``client`` is the caller's address, if known."""
        now = self._clock.now()
        fingerprint = hashlib.sha256(token.encode()).digest()
        limit_keys = _limit_keys(client, _prefix_of(token))
        retry_after = self._limiter.retry_after(limit_keys)
        if retry_after is not None:
            self._reject_rate_limited(token, client, limit_keys, retry_after)
        with self._lock:
            cached = self._cache.get(fingerprint)
        if cached is not None and cached[1] > now:
            return cached[0]

        try:
            principal, valid_until = self._check(token, now)
        except AuthenticationError as error:
            self._failed(error, token, client, limit_keys)
            raise
        with self._lock:
            if len(self._cache) >= _MAX_CACHE_ENTRIES:
                self._cache.clear()
            self._cache[fingerprint] = (principal, min(valid_until, now + self._cache_ttl))
        return principal

    def _check(self, token: str, now: datetime) -> tuple[Principal, datetime]:
        if token.startswith(_KEY_START):
            return self._verify_api_key(token, now)
        if self._tokens is not None and token.count(".") == 2:
            verified = self._tokens.verify(token)
            return verified.principal, verified.expires_at
        raise AuthenticationError(
            "Invalid credential format. Send an API key (mnr_...) or a signed JWT.",
            reason="malformed",
        )

    def _verify_api_key(self, token: str, now: datetime) -> tuple[Principal, datetime]:
        prefix = _parse(token)
        record = self._identities.find_api_key(prefix)
        if record is None or not self._verify(record, token):
            raise AuthenticationError(
                "Invalid API key. Check the key or issue a new one.", reason="invalid_key"
            )
        if record.revoked_at is not None:
            raise AuthenticationError(
                f"API key {prefix} was revoked. Issue a new one.",
                reason="revoked",
                principal_id=record.principal_id,
            )
        if record.expires_at is not None and record.expires_at <= now:
            raise AuthenticationError(
                f"API key {prefix} expired. Issue a new one.",
                reason="expired",
                principal_id=record.principal_id,
            )
        stored = self._identities.get_principal_record(record.principal_id)
        if stored.disabled_at is not None:
            raise AuthenticationError(
                f"Principal {stored.principal.name!r} is disabled. Ask an admin.",
                reason="disabled",
                principal_id=record.principal_id,
            )
        self._identities.touch_api_key(record.id, now)
        return stored.principal, record.expires_at or datetime.max.replace(tzinfo=UTC)

    @staticmethod
    def _verify(record: ApiKeyRecord, token: str) -> bool:
        try:
            return _HASHER.verify(record.secret_hash, token)
        except (VerificationError, InvalidHashError):
            return False

    def _failed(
        self,
        error: AuthenticationError,
        token: str,
        client: str | None,
        limit_keys: tuple[str, ...],
    ) -> None:
        reason = str(error.details.get("reason", "invalid_credential"))
        if reason in _COUNTED_REASONS and limit_keys and self._limiter.record_failure(limit_keys):
            logger.warning("authentication locked out keys=%s", ",".join(limit_keys))
        principal_id = error.details.pop("principal_id", None)
        self._report(reason, token, client, principal_id)

    def _reject_rate_limited(
        self, token: str, client: str | None, limit_keys: tuple[str, ...], retry_after: float
    ) -> None:
        # One audit event per lockout: a flood of attempts must not flood the log.
        if self._limiter.first_report(limit_keys):
            self._report("rate_limited", token, client, None)
        seconds = max(1, math.ceil(retry_after))
        raise RateLimitedError(
            f"Too many failed authentications from this client or for this key. Wait "
            f"{seconds} seconds, then try again with a valid credential.",
            reason="rate_limited",
            retry_after_seconds=seconds,
        )

    def _report(
        self, reason: str, token: str, client: str | None, principal_id: str | None
    ) -> None:
        logger.info("authentication failed reason=%s client=%s", reason, client)
        if self._on_failure is None:
            return
        credential = "api_key" if token.startswith(_KEY_START) else "jwt"
        if credential == "jwt" and token.count(".") != 2:
            credential = "unknown"
        failure = AuthFailure(reason, credential, client, _prefix_of(token), principal_id)
        try:
            self._on_failure(failure)
        except Exception:
            # The credential is rejected either way; a broken audit sink must not turn
            # a 401 into a 500, but it must be visible.
            logger.exception("could not record a failed authentication reason=%s", reason)

    def forget(self) -> None:
        """Drop cached checks, for example after a key is revoked."""
        with self._lock:
            self._cache.clear()


def bearer_token(header_value: str | None) -> str:
    """Extract the token of an ``Authorization: Bearer`` header."""
    if not header_value:
        raise AuthenticationError(
            "Missing Authorization header. Send 'Authorization: Bearer <API key>'.",
            reason="missing_header",
        )
    scheme, _, token = header_value.partition(" ")
    if not hmac.compare_digest(scheme.lower(), "bearer") or not token.strip():
        raise AuthenticationError(
            "Invalid Authorization header. Use 'Bearer <API key>'.", reason="malformed_header"
        )
    return token.strip()
