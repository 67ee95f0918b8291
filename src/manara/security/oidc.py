"""OIDC/JWT bearer tokens: signature, issuer, audience, time and algorithm checks.

``TokenVerifier`` accepts a token only from a configured issuer: the
external OIDC provider (``oidc_*`` settings, keys from its JWKS) and the
platform itself (tokens of ``manara token``, signed with the local Ed25519
key). The algorithm is checked three times. It must be in the issuer's
allow-list (RS256, ES256 and EdDSA by default, never ``none``). The key is
chosen by the issuer and ``kid``, never by the token's ``alg``. The key's
type must match the ``alg``. HS256/384/512 are accepted only from an
issuer configured with a shared secret, and then only with that secret, so
an HS256 token signed with a public RSA key fails.

Times (``exp``, ``nbf``, ``iat``) are checked against the injected clock
with ``leeway_seconds`` of tolerance for clock skew.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import httpx
import jwt
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from manara.clock import Clock
from manara.config import Secret, Settings
from manara.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    UnavailableError,
)
from manara.security.principal import Principal
from manara.security.redaction import mask_url_passwords
from manara.security.tokens import (
    PLATFORM_AUDIENCE,
    PLATFORM_ISSUER,
    TokenSigner,
    signing_key_path,
)
from manara.stores.metadata.identities import IdentityRepository, PrincipalRecord

logger = logging.getLogger(__name__)

DEFAULT_ALGORITHMS = frozenset({"RS256", "ES256", "EdDSA"})
_HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
_MIN_SHARED_SECRET_BYTES = 32
_MAX_TOKEN_CHARS = 16_384
_MAX_JWKS_BYTES = 1 << 20
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "[::1]", "localhost"})
_EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}

PublicKey = Any  # a cryptography public key object


def _reject(message: str, reason: str) -> AuthenticationError:
    return AuthenticationError(message, reason=reason)


# Group mapping


@dataclass(frozen=True)
class GroupGrant:
    """Roles that members of an identity-provider group get in one project."""

    project: str
    roles: frozenset[str]


def load_group_roles(path: Path) -> dict[str, tuple[GroupGrant, ...]]:
    """Read a YAML mapping of group to ``{project, roles}`` (or a list of them)."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInputError(f"Cannot read the OIDC group roles file {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise InvalidInputError(
            f"OIDC group roles file {path} must map group names to "
            "{project: NAME, roles: [ROLE, ...]}."
        )
    mapping: dict[str, tuple[GroupGrant, ...]] = {}
    for group, value in loaded.items():
        entries = value if isinstance(value, list) else [value]
        mapping[str(group)] = tuple(_grant(path, str(group), entry) for entry in entries)
    return mapping


def _grant(path: Path, group: str, entry: Any) -> GroupGrant:
    roles = entry.get("roles") if isinstance(entry, dict) else None
    project = entry.get("project") if isinstance(entry, dict) else None
    if not isinstance(project, str) or not project:
        raise InvalidInputError(f"Group {group!r} in {path} needs a 'project' name.")
    if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
        raise InvalidInputError(f"Group {group!r} in {path} needs 'roles' as a list of names.")
    return GroupGrant(project=project, roles=frozenset(roles))


# Key sources


@dataclass(frozen=True)
class _Key:
    key: PublicKey
    declared_alg: str | None


class KeySource(Protocol):
    def key(self, kid: str | None) -> _Key | None:
        """Return the verification key for ``kid``, or None when there is none."""
        ...


def _parse_jwks(document: Any, origin: str) -> dict[str | None, _Key]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise InvalidInputError(f"JWKS from {origin} is not an object with a 'keys' list.")
    keys: dict[str | None, _Key] = {}
    for entry in document["keys"]:
        # Symmetric keys are never taken from a JWKS: anyone who can read it could sign.
        if not isinstance(entry, dict) or entry.get("kty") == "oct" or entry.get("use") == "enc":
            continue
        try:
            parsed = jwt.PyJWK(entry)
        except jwt.PyJWTError as exc:
            logger.warning(
                "skipping unusable key kid=%s from %s: %s", entry.get("kid"), origin, exc
            )
            continue
        declared = entry.get("alg")
        keys[entry.get("kid")] = _Key(parsed.key, declared if isinstance(declared, str) else None)
    return keys


class JwksSource:
    """Keys of a JWKS file or URL, cached for ``cache_seconds`` and refetched on an unknown kid.

    An unknown kid triggers at most one refetch per ``refetch_interval_seconds``
    so that tokens with random kids cannot make us hammer the provider.
    """

    def __init__(
        self,
        location: str,
        clock: Clock,
        cache_seconds: float = 600.0,
        refetch_interval_seconds: float = 10.0,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.location = location
        self._url = _checked_url(location)
        self._clock = clock
        self._ttl = timedelta(seconds=cache_seconds)
        self._refetch_interval = timedelta(seconds=refetch_interval_seconds)
        self._timeout = timeout_seconds
        self._keys: dict[str | None, _Key] = {}
        self._fetched_at: datetime | None = None
        self._lock = threading.Lock()

    def key(self, kid: str | None) -> _Key | None:
        now = self._clock.now()
        fetched_at = self._fetched_at
        if fetched_at is None or now - fetched_at >= self._ttl:
            self._refresh(fetched_at, now)
            return self._lookup(kid)
        found = self._lookup(kid)
        if found is None and now - fetched_at >= self._refetch_interval:
            self._refresh(fetched_at, now)
            found = self._lookup(kid)
        return found

    def _lookup(self, kid: str | None) -> _Key | None:
        keys = self._keys
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        return keys.get(kid)

    def _refresh(self, seen_fetched_at: datetime | None, now: datetime) -> None:
        with self._lock:
            if self._fetched_at != seen_fetched_at:
                return  # another thread refreshed while this one waited for the lock
            try:
                self._keys = _parse_jwks(self._load(), self.location)
            except InvalidInputError as exc:
                failure = UnavailableError(f"The JWKS of the OIDC issuer is unusable: {exc}")
                if not self._keys:
                    raise failure from exc
                logger.error("%s Keeping the cached keys.", failure)
            except UnavailableError:
                if not self._keys:
                    raise
                logger.exception(
                    "JWKS refresh from %s failed; keeping the cached keys", self.location
                )
            self._fetched_at = now
            logger.info("loaded JWKS from %s kids=%s", self.location, sorted(map(str, self._keys)))

    def _load(self) -> Any:
        if self._url is None:
            path = Path(self.location)
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InvalidInputError(f"Cannot read the JWKS file {path}: {exc}") from exc
        try:
            response = httpx.get(self._url, timeout=self._timeout, follow_redirects=False)
        except httpx.HTTPError as exc:
            message = f"Fetching the JWKS from {self._url} failed: {exc}"
            raise UnavailableError(mask_url_passwords(message)) from None
        if response.status_code != 200 or len(response.content) > _MAX_JWKS_BYTES:
            raise UnavailableError(
                f"Fetching the JWKS from {mask_url_passwords(self._url)} returned HTTP {response.status_code} with "
                f"{len(response.content)} bytes; expected 200 and at most {_MAX_JWKS_BYTES}."
            )
        try:
            return response.json()
        except ValueError as exc:
            raise InvalidInputError(
                f"The JWKS at {mask_url_passwords(self._url)} is not JSON: {exc}"
            ) from exc


def _checked_url(location: str) -> str | None:
    if not location.startswith(("http://", "https://")):
        return None
    url = httpx.URL(location)
    if url.scheme == "http" and url.host not in _LOOPBACK_HOSTS:
        raise InvalidInputError(
            f"JWKS URL {location} uses plain HTTP, so anyone on the path could swap the keys. "
            "Use https (plain http is accepted on loopback only)."
        )
    return location


class PlatformKeySource:
    """The platform token-signing key, read from its file when first needed."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._signer: TokenSigner | None = None

    def key(self, kid: str | None) -> _Key | None:
        if self._signer is None:
            self._signer = TokenSigner.load(self._path)
        signer = self._signer
        if signer is None or kid != signer.key_id:
            return None
        return _Key(signer.public_key, "EdDSA")


# Verification


@dataclass(frozen=True)
class TrustedIssuer:
    """An issuer whose tokens are accepted, and how to check and map them."""

    issuer: str
    audience: str
    keys: KeySource
    algorithms: frozenset[str] = DEFAULT_ALGORITHMS
    shared_secret: Secret | None = None
    groups_claim: str = "groups"
    group_roles: Mapping[str, tuple[GroupGrant, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    platform: bool = False
    """Platform tokens name a stored principal id in ``sub``; OIDC tokens name a user."""

    def __post_init__(self) -> None:
        if "none" in {a.lower() for a in self.algorithms}:
            raise InvalidInputError("The JWS algorithm 'none' can never be allowed.")
        hmac = self.algorithms & _HMAC_ALGORITHMS
        if hmac and self.shared_secret is None:
            raise InvalidInputError(
                f"Algorithms {sorted(hmac)} for issuer {self.issuer!r} need a shared secret. "
                "Set MANARA_OIDC_SHARED_SECRET or remove them from MANARA_OIDC_ALGORITHMS."
            )
        secret = self.shared_secret
        if secret is not None and len(secret.get().encode()) < _MIN_SHARED_SECRET_BYTES:
            raise InvalidInputError(
                f"The shared secret of issuer {self.issuer!r} is shorter than "
                f"{_MIN_SHARED_SECRET_BYTES} bytes. Use a longer random secret."
            )


@dataclass(frozen=True)
class VerifiedToken:
    principal: Principal
    expires_at: datetime
    issuer: str


def _key_matches(alg: str, key: PublicKey) -> bool:
    if alg.startswith(("RS", "PS")):
        return isinstance(key, rsa.RSAPublicKey)
    if alg in _EC_CURVES:
        return isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == _EC_CURVES[alg]
    if alg == "EdDSA":
        return isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)
    return False


# PyJWT error class -> reason code, most specific first.
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.InvalidSignatureError, "invalid_signature"),
    (jwt.InvalidAudienceError, "wrong_audience"),
    (jwt.InvalidIssuerError, "wrong_issuer"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.InvalidAlgorithmError, "algorithm_not_allowed"),
    (jwt.InvalidKeyError, "invalid_key"),
)


class TokenVerifier:
    """Verifies JWT bearer tokens of the trusted issuers and maps them to principals."""

    def __init__(
        self,
        issuers: Sequence[TrustedIssuer],
        identities: IdentityRepository,
        clock: Clock,
        leeway_seconds: float = 30.0,
    ) -> None:
        self._issuers = {issuer.issuer: issuer for issuer in issuers}
        self._identities = identities
        self._clock = clock
        self._leeway = leeway_seconds

    def verify(self, token: str) -> VerifiedToken:
        """Return the principal of a valid token; raise ``AuthenticationError`` with a reason."""
        issuer, alg, kid = self._inspect(token)
        key = self._select_key(issuer, alg, kid)
        claims = self._decode(token, issuer, alg, key)
        expires_at = self._check_times(claims)
        principal = self._principal(issuer, claims)
        return VerifiedToken(principal, expires_at, issuer.issuer)

    def _inspect(self, token: str) -> tuple[TrustedIssuer, str, str | None]:
        if len(token) > _MAX_TOKEN_CHARS:
            raise _reject(f"Token is longer than {_MAX_TOKEN_CHARS} characters.", "malformed")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise _reject(f"Token is not a valid JWT: {exc}.", "malformed") from exc
        alg, kid, iss = header.get("alg"), header.get("kid"), unverified.get("iss")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise _reject("Token is unsigned (alg 'none'); sign it.", "algorithm_not_allowed")
        issuer = self._issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise _reject(
                "Token issuer is not trusted. Use a token from the configured OIDC issuer "
                "or from `manara token`.",
                "unknown_issuer",
            )
        if alg not in issuer.algorithms:
            raise _reject(
                f"Token algorithm {alg!r} is not allowed for this issuer; allowed: "
                f"{', '.join(sorted(issuer.algorithms))}.",
                "algorithm_not_allowed",
            )
        return issuer, alg, kid if isinstance(kid, str) else None

    def _select_key(self, issuer: TrustedIssuer, alg: str, kid: str | None) -> Any:
        if alg in _HMAC_ALGORITHMS:
            if issuer.shared_secret is None:  # unreachable: TrustedIssuer forbids it
                raise _reject("HMAC tokens need a configured secret.", "algorithm_not_allowed")
            return issuer.shared_secret.get().encode()
        found = issuer.keys.key(kid)
        if found is None:
            raise _reject(
                "Token was signed by a key the issuer does not publish. Get a new token.",
                "unknown_key",
            )
        if not _key_matches(alg, found.key) or found.declared_alg not in (None, alg):
            raise _reject(
                f"Token algorithm {alg!r} does not match its key's type.",
                "algorithm_not_allowed",
            )
        return found.key

    def _decode(self, token: str, issuer: TrustedIssuer, alg: str, key: Any) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=issuer.audience,
                issuer=issuer.issuer,
                options={
                    # Times are checked against the injected clock in _check_times.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "require": ["exp", "iss", "aud", "sub"],
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.PyJWTError as exc:
            reason = next((r for cls, r in _REASONS if isinstance(exc, cls)), "invalid_token")
            raise _reject(f"Token rejected: {exc}.", reason) from exc
        return claims

    def _check_times(self, claims: Mapping[str, Any]) -> datetime:
        now = self._clock.now().timestamp()
        exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
        for name, value in (("exp", exp), ("nbf", nbf), ("iat", iat)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise _reject(f"Token claim {name!r} is not a number.", "malformed")
        if not isinstance(exp, int | float):
            raise _reject("Token has no expiry (exp).", "missing_claim")
        if now >= exp + self._leeway:
            raise _reject("Token expired. Get a new token.", "expired")
        if nbf is not None and nbf > now + self._leeway:
            raise _reject("Token is not valid yet (nbf is in the future).", "not_yet_valid")
        if iat is not None and iat > now + self._leeway:
            raise _reject("Token was issued in the future (iat).", "not_yet_valid")
        return datetime.fromtimestamp(exp, UTC)

    def _principal(self, issuer: TrustedIssuer, claims: Mapping[str, Any]) -> Principal:
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise _reject("Token subject 'sub' is empty or not a string.", "missing_claim")
        if issuer.platform:
            record = self._stored(lambda: self._identities.get_principal_record(subject))
            if record is None:
                raise _reject("Token subject is no longer a principal.", "unknown_principal")
            return record.principal
        name = f"oidc:{issuer.issuer}:{subject}"
        stored = self._stored(lambda: self._identities.find_principal_record(name))
        grants = _grants(issuer, claims)
        if stored is not None:
            return _merge(stored.principal, grants)
        return _ephemeral(name, grants)

    @staticmethod
    def _stored(find: Callable[[], PrincipalRecord | None]) -> PrincipalRecord | None:
        try:
            record = find()
        except NotFoundError:
            return None
        if record is not None and record.disabled_at is not None:
            raise _reject(
                f"Principal {record.principal.name!r} is disabled. Ask an admin.", "disabled"
            )
        return record


def _grants(issuer: TrustedIssuer, claims: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    groups = claims.get(issuer.groups_claim, [])
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, list):
        logger.warning("ignoring non-list claim %s in a token", issuer.groups_claim)
        return {}
    roles: dict[str, frozenset[str]] = {}
    for group in groups:
        for grant in issuer.group_roles.get(group, ()) if isinstance(group, str) else ():
            roles[grant.project] = roles.get(grant.project, frozenset()) | grant.roles
    return roles


def _merge(principal: Principal, grants: dict[str, frozenset[str]]) -> Principal:
    memberships = dict(principal.memberships)
    for project, roles in grants.items():
        if project != principal.project:
            memberships[project] = memberships.get(project, frozenset()) | roles
    return replace(
        principal,
        roles=principal.roles | grants.get(principal.project, frozenset()),
        memberships=MappingProxyType(memberships),
    )


def _ephemeral(name: str, grants: dict[str, frozenset[str]]) -> Principal:
    """Build an unstored principal; its id is derived from the name, so audits correlate."""
    if len(grants) == 1 or "default" not in grants:
        home = min(grants, default="default")
    else:
        home = "default"
    others = {project: roles for project, roles in grants.items() if project != home}
    return Principal(
        id="oidc-" + hashlib.sha256(name.encode()).hexdigest()[:27],
        name=name,
        kind="user",
        roles=grants.get(home, frozenset()),
        project=home,
        memberships=MappingProxyType(others),
    )


def verifier_from_settings(
    settings: Settings, identities: IdentityRepository, clock: Clock
) -> TokenVerifier:
    """Build the verifier for the platform issuer and, when configured, the OIDC issuer."""
    issuers = [
        TrustedIssuer(
            issuer=PLATFORM_ISSUER,
            audience=PLATFORM_AUDIENCE,
            keys=PlatformKeySource(signing_key_path(settings)),
            algorithms=frozenset({"EdDSA"}),
            platform=True,
        )
    ]
    if settings.oidc_issuer:
        issuers.append(_oidc_issuer(settings, clock))
    return TokenVerifier(issuers, identities, clock)


def _oidc_issuer(settings: Settings, clock: Clock) -> TrustedIssuer:
    if not settings.oidc_audience or not settings.oidc_jwks:
        raise InvalidInputError(
            "MANARA_OIDC_ISSUER is set but MANARA_OIDC_AUDIENCE or MANARA_OIDC_JWKS is empty. "
            "Set both, or unset MANARA_OIDC_ISSUER to turn OIDC off."
        )
    if settings.oidc_issuer == PLATFORM_ISSUER:
        raise InvalidInputError(f"MANARA_OIDC_ISSUER may not be {PLATFORM_ISSUER!r}.")
    algorithms = frozenset(a.strip() for a in settings.oidc_algorithms.split(",") if a.strip())
    group_roles = (
        load_group_roles(Path(settings.oidc_group_roles)) if settings.oidc_group_roles else {}
    )
    return TrustedIssuer(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        keys=JwksSource(settings.oidc_jwks, clock),
        algorithms=algorithms,
        shared_secret=settings.oidc_shared_secret,
        groups_claim=settings.oidc_groups_claim,
        group_roles=MappingProxyType(group_roles),
    )
