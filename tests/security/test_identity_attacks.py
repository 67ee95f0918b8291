"""Attacks on authentication; each test fails if its defence is removed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from manara.clock import FixedClock
from manara.config import Secret, Settings
from manara.errors import AuthenticationError, InvalidInputError
from manara.security.identities import IdentityService
from manara.security.oidc import JwksSource
from manara.workspace import Workspace
from tests.security.identity_helpers import (
    AUDIENCE,
    ISSUER,
    claims,
    ec_key,
    ed_key,
    forge_hmac,
    jwks,
    rsa_key,
    serve_jwks,
    sign,
    unsigned,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
RSA = rsa_key("rsa-1")
EC = ec_key("ec-1")
ED = ed_key("ed-1")
GROUP_ROLES = """
ml-team: {project: fraud, roles: [ml-engineer]}
readers:
  - {project: default, roles: [viewer]}
  - {project: fraud, roles: [viewer]}
"""


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


def _oidc_settings(settings: Settings, tmp_path: Path, jwks_location: str) -> Settings:
    roles = tmp_path / "group-roles.yaml"
    roles.write_text(GROUP_ROLES)
    return settings.with_overrides(
        oidc_issuer=ISSUER,
        oidc_audience=AUDIENCE,
        oidc_jwks=jwks_location,
        oidc_group_roles=str(roles),
    )


@pytest.fixture
def oidc_workspace(settings: Settings, tmp_path: Path, clock: FixedClock) -> Iterator[Workspace]:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks(RSA, EC, ED)))
    ws = Workspace.open(_oidc_settings(settings, tmp_path, str(path)), clock=clock)
    try:
        yield ws
    finally:
        ws.close()


def _reason(ws: Workspace, token: str) -> str:
    with pytest.raises(AuthenticationError) as caught:
        ws.authenticator.authenticate(token)
    return str(caught.value.details.get("reason"))


@pytest.mark.parametrize("key", [RSA, EC, ED], ids=["RS256", "ES256", "EdDSA"])
def test_valid_token_accepted(oidc_workspace: Workspace, key: object) -> None:
    principal = oidc_workspace.authenticator.authenticate(sign(key, claims(START)))  # type: ignore[arg-type]
    assert principal.name == f"oidc:{ISSUER}:user-42"


def test_expired_token(oidc_workspace: Workspace, clock: FixedClock) -> None:
    token = sign(RSA, claims(START))
    assert oidc_workspace.authenticator.authenticate(token).name.endswith("user-42")
    oidc_workspace.authenticator.forget()
    clock.advance(timedelta(minutes=11))
    assert _reason(oidc_workspace, token) == "expired"


def test_cached_token_expires(oidc_workspace: Workspace, clock: FixedClock) -> None:
    token = sign(RSA, claims(START, exp=int((START + timedelta(seconds=20)).timestamp())))
    oidc_workspace.authenticator.authenticate(token)
    clock.advance(timedelta(seconds=55))
    assert _reason(oidc_workspace, token) == "expired"


def test_other_audience(oidc_workspace: Workspace) -> None:
    assert _reason(oidc_workspace, sign(RSA, claims(START, aud="other-api"))) == "wrong_audience"


def test_other_issuer(oidc_workspace: Workspace) -> None:
    token = sign(RSA, claims(START, iss="https://evil.example.test"))
    assert _reason(oidc_workspace, token) == "unknown_issuer"


def test_not_before_future(oidc_workspace: Workspace) -> None:
    later = int((START + timedelta(minutes=5)).timestamp())
    assert _reason(oidc_workspace, sign(RSA, claims(START, nbf=later))) == "not_yet_valid"


def test_leeway_tolerates_skew(oidc_workspace: Workspace) -> None:
    soon = int((START + timedelta(seconds=10)).timestamp())
    assert oidc_workspace.authenticator.authenticate(sign(RSA, claims(START, nbf=soon)))


def test_alg_none(oidc_workspace: Workspace) -> None:
    assert _reason(oidc_workspace, unsigned(claims(START))) == "algorithm_not_allowed"


def test_hs256_with_rsa_public_key(oidc_workspace: Workspace) -> None:
    token = forge_hmac(claims(START), RSA.public_pem(), kid=RSA.kid)
    assert _reason(oidc_workspace, token) == "algorithm_not_allowed"


def test_hs256_public_key_with_secret(
    settings: Settings, tmp_path: Path, clock: FixedClock
) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks(RSA)))
    configured = _oidc_settings(settings, tmp_path, str(path)).with_overrides(
        oidc_shared_secret=Secret("s" * 48), oidc_algorithms="RS256,HS256"
    )
    ws = Workspace.open(configured, clock=clock)
    try:
        genuine = forge_hmac(claims(START), b"s" * 48, kid="any")
        assert ws.authenticator.authenticate(genuine).name.endswith("user-42")
        forged = forge_hmac(claims(START, sub="admin"), RSA.public_pem(), kid=RSA.kid)
        assert _reason(ws, forged) == "invalid_signature"
    finally:
        ws.close()


def test_alg_mismatching_key(oidc_workspace: Workspace) -> None:
    # An ES256 header pointing at the RSA key must not pick a verifier by the header.
    token = sign(EC, claims(START), kid=RSA.kid)
    assert _reason(oidc_workspace, token) == "algorithm_not_allowed"


def test_unknown_signing_key(oidc_workspace: Workspace) -> None:
    stranger = rsa_key("rsa-1")  # same kid, different key
    assert _reason(oidc_workspace, sign(stranger, claims(START))) == "invalid_signature"
    other = rsa_key("rsa-unknown")
    assert _reason(oidc_workspace, sign(other, claims(START))) == "unknown_key"


def test_failures_audited(oidc_workspace: Workspace) -> None:
    _reason(oidc_workspace, sign(RSA, claims(START, aud="other-api")))
    events = oidc_workspace.audit.events(action="auth.failed")
    assert len(events) == 1
    assert events[0].decision == "deny"
    assert events[0].reason == "wrong_audience"
    assert events[0].details["credential_type"] == "jwt"


def test_groups_mapped_to_roles(oidc_workspace: Workspace) -> None:
    token = sign(RSA, claims(START, groups=["ml-team", "readers", "unmapped"]))
    principal = oidc_workspace.authenticator.authenticate(token)
    assert principal.roles_in("fraud") == frozenset({"ml-engineer", "viewer"})
    assert principal.roles_in("default") == frozenset({"viewer"})
    assert principal.roles_in("other") == frozenset()


def test_groups_claim_configurable(settings: Settings, tmp_path: Path, clock: FixedClock) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks(RSA)))
    configured = _oidc_settings(settings, tmp_path, str(path)).with_overrides(
        oidc_groups_claim="roles"
    )
    ws = Workspace.open(configured, clock=clock)
    try:
        token = sign(RSA, claims(START, groups=["readers"], roles=["ml-team"]))
        principal = ws.authenticator.authenticate(token)
        assert principal.roles_in("fraud") == frozenset({"ml-engineer"})
        assert principal.roles_in("default") == frozenset()
    finally:
        ws.close()


def test_stored_oidc_principal_disabled(oidc_workspace: Workspace) -> None:
    service = IdentityService(oidc_workspace.context(), oidc_workspace.authenticator)
    name = f"oidc:{ISSUER}:user-42"
    stored = service.create_principal(name, "default", ["viewer"])
    token = sign(RSA, claims(START, groups=["ml-team"]))
    principal = oidc_workspace.authenticator.authenticate(token)
    assert principal.id == stored.id
    assert principal.roles_in("fraud") == frozenset({"ml-engineer"})
    service.disable_principal(name)
    assert _reason(oidc_workspace, token) == "disabled"


def test_jwks_over_http_rotation(settings: Settings, tmp_path: Path, clock: FixedClock) -> None:
    old, new = rsa_key("2026-01"), ed_key("2026-02")
    with serve_jwks(jwks(old)) as server:
        ws = Workspace.open(_oidc_settings(settings, tmp_path, server.url), clock=clock)
        try:
            assert ws.authenticator.authenticate(sign(old, claims(START)))
            assert server.requests == 1
            server.document = jwks(new)
            rotated = sign(new, claims(START, sub="user-7"))
            # Within the refetch interval an unknown kid does not hit the provider again.
            assert _reason(ws, rotated) == "unknown_key"
            assert server.requests == 1
            clock.advance(timedelta(seconds=11))
            assert ws.authenticator.authenticate(rotated).name.endswith("user-7")
            assert server.requests == 2
            ws.authenticator.forget()
            assert _reason(ws, sign(old, claims(START))) == "unknown_key"
        finally:
            ws.close()


def test_plain_http_jwks_rejected(clock: FixedClock) -> None:
    with pytest.raises(InvalidInputError, match="plain HTTP"):
        JwksSource("http://idp.example.test/jwks.json", clock)
    assert JwksSource("http://127.0.0.1:1/jwks.json", clock).location.startswith("http://")
