"""Short-lived platform tokens for service accounts (``manara token``).

The platform signs JWTs with an Ed25519 key kept in
``MANARA_HOME/keys/token-signing.key`` (mode 0600, created on first use).
A token names the service account's principal id in ``sub`` and carries no
roles: the roles are read from the metadata database when the token is
verified, so removing a role or disabling the account takes effect at once
(up to the authenticator's cache time). ``platform_jwks`` returns the public
key as a JWKS for other services that verify these tokens.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from manara.config import Settings
from manara.durations import format_duration
from manara.errors import InvalidInputError
from manara.ids import new_id
from manara.security.keyfiles import atomic_write, exclusive_lock, read_private
from manara.security.principal import Principal

logger = logging.getLogger(__name__)

TOKEN_SIGNING_KEY_PATH = Path("keys") / "token-signing.key"
PLATFORM_ISSUER = "urn:manara:platform"
PLATFORM_AUDIENCE = "urn:manara:api"
MAX_TOKEN_TTL = timedelta(hours=24)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenSigner:
    """The platform's Ed25519 token-signing key and its key id."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self.public_key: Ed25519PublicKey = private_key.public_key()
        raw = self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._raw_public = raw
        self.key_id = hashlib.sha256(raw).hexdigest()[:32]

    @classmethod
    def load(cls, path: Path) -> TokenSigner | None:
        """Load the key at ``path``; None when it was never created."""
        if not path.exists():
            return None
        try:
            key = serialization.load_pem_private_key(read_private(path), password=None)
        except ValueError as exc:
            raise InvalidInputError(
                f"Token signing key {path} is not a PEM private key: {exc}. Restore it from "
                "backup, or delete it to create a new one (tokens issued so far stop working)."
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise InvalidInputError(f"Token signing key {path} is not an Ed25519 key.")
        return cls(key)

    @classmethod
    def load_or_create(cls, path: Path) -> TokenSigner:
        """Load the key, creating it under a process lock when it does not exist yet."""
        existing = cls.load(path)
        if existing is not None:
            return existing
        with exclusive_lock(path):
            existing = cls.load(path)
            if existing is not None:
                return existing
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            atomic_write(path, pem)
            logger.info("created token signing key %s", path)
        created = cls.load(path)
        if created is None:
            raise InvalidInputError(f"Token signing key {path} vanished after it was written.")
        return created

    def jwk(self) -> dict[str, str]:
        """Return the public key as a JSON Web Key (RFC 8037 OKP, Ed25519)."""
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64url(self._raw_public),
            "kid": self.key_id,
            "alg": "EdDSA",
            "use": "sig",
        }

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims,
            self._private_key,
            algorithm="EdDSA",
            headers={"kid": self.key_id, "typ": "JWT"},
        )


def signing_key_path(settings: Settings) -> Path:
    return settings.home / TOKEN_SIGNING_KEY_PATH


def platform_jwks(settings: Settings) -> dict[str, list[dict[str, str]]]:
    """Return the JWKS of the platform token-signing key, creating the key on first use."""
    signer = TokenSigner.load_or_create(signing_key_path(settings))
    return {"keys": [signer.jwk()]}


@dataclass(frozen=True)
class IssuedToken:
    """A signed token; ``token`` is a bearer credential shown once."""

    token: str
    principal_id: str
    expires_at: datetime


def _check_ttl(ttl: timedelta) -> None:
    if ttl <= timedelta(0) or ttl > MAX_TOKEN_TTL:
        raise InvalidInputError(
            f"Token lifetime {format_duration(ttl)} is out of range; use more than 0 seconds "
            f"and at most {format_duration(MAX_TOKEN_TTL)}. Issue a new token when it expires."
        )


def sign_platform_token(
    signer: TokenSigner, subject: Principal, now: datetime, ttl: timedelta
) -> IssuedToken:
    """Sign a token for a service account; callers check that the requester may issue it."""
    _check_ttl(ttl)
    if subject.kind != "service":
        raise InvalidInputError(
            f"Principal {subject.name!r} is a {subject.kind}, not a service account; platform "
            "tokens are issued to service accounts only. Users sign in through OIDC."
        )
    expires_at = now + ttl
    claims = {
        "iss": PLATFORM_ISSUER,
        "aud": PLATFORM_AUDIENCE,
        "sub": subject.id,
        "name": subject.name,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": new_id(),
    }
    return IssuedToken(signer.sign(claims), subject.id, expires_at)
