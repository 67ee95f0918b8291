from datetime import timedelta

import pytest

from manara.clock import FixedClock
from manara.config import Settings
from manara.errors import AuthenticationError, ConflictError, PermissionDeniedError
from manara.security.apikeys import Authenticator, bearer_token, issue_api_key
from manara.security.policy import Resource, RoleBasedPolicy, authorize
from manara.security.principal import Principal
from manara.workspace import Workspace


def test_policy_denies_by_default() -> None:
    nobody = Principal(id="p1", name="nobody")
    decision = RoleBasedPolicy().decide(nobody, "run.create", Resource("run"))
    assert not decision.allowed
    assert decision.reason == "no_matching_grant"


@pytest.mark.parametrize(
    ("roles", "action", "allowed"),
    [
        ({"admin"}, "model.delete", True),
        ({"viewer"}, "run.read", True),
        ({"viewer"}, "run.create", False),
        ({"ml-engineer"}, "model.create", True),
        ({"ml-engineer"}, "principal.create", False),
        ({"inference-client"}, "model.invoke", True),
        ({"inference-client"}, "run.read", False),
    ],
)
def test_role_grants(roles: set[str], action: str, allowed: bool) -> None:
    principal = Principal(id="p", name="p", roles=frozenset(roles))
    assert RoleBasedPolicy().decide(principal, action, Resource("x")).allowed is allowed


def test_other_project_denied_even_for_admin() -> None:
    admin = Principal(id="a", name="a", roles=frozenset({"admin"}), project="alpha")
    with pytest.raises(PermissionDeniedError, match="other_project"):
        authorize(RoleBasedPolicy(), admin, "run.read", Resource("run", "r1", project="beta"))


def test_api_key_round_trip(workspace: Workspace, clock: FixedClock) -> None:
    admin = workspace.local_admin()
    issued = issue_api_key(workspace.identities, admin, clock.now())
    authenticator = Authenticator(workspace.identities, clock)
    assert authenticator.authenticate(issued.token) == admin


def test_wrong_secret_rejected(workspace: Workspace, clock: FixedClock) -> None:
    issued = issue_api_key(workspace.identities, workspace.local_admin(), clock.now())
    forged = issued.token[:-4] + ("AAAA" if not issued.token.endswith("AAAA") else "BBBB")
    with pytest.raises(AuthenticationError):
        Authenticator(workspace.identities, clock).authenticate(forged)


def test_expired_key_rejected(workspace: Workspace, clock: FixedClock) -> None:
    issued = issue_api_key(
        workspace.identities, workspace.local_admin(), clock.now(), ttl=timedelta(minutes=5)
    )
    authenticator = Authenticator(workspace.identities, clock, cache_seconds=60)
    authenticator.authenticate(issued.token)
    clock.advance(timedelta(minutes=6))
    with pytest.raises(AuthenticationError, match="expired"):
        authenticator.authenticate(issued.token)


def test_revoked_key_rejected(workspace: Workspace, clock: FixedClock) -> None:
    issued = issue_api_key(workspace.identities, workspace.local_admin(), clock.now())
    workspace.identities.revoke_api_key(issued.prefix, clock.now())
    with pytest.raises(AuthenticationError, match="revoked"):
        Authenticator(workspace.identities, clock).authenticate(issued.token)


def test_key_hash_not_plaintext(workspace: Workspace, clock: FixedClock) -> None:
    issued = issue_api_key(workspace.identities, workspace.local_admin(), clock.now())
    record = workspace.identities.find_api_key(issued.prefix)
    assert record is not None
    assert issued.token not in record.secret_hash
    assert record.secret_hash.startswith("$argon2id$")


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "Token mnr_x_y"])
def test_bearer_header_rejected(header: str | None) -> None:
    with pytest.raises(AuthenticationError):
        bearer_token(header)


def test_init_twice_conflicts(settings: Settings) -> None:
    workspace = Workspace.open(settings)
    try:
        _, key = workspace.init()
        record_before = workspace.identities.find_api_key(key.prefix)
        with pytest.raises(ConflictError, match="already initialised"):
            workspace.init()
        assert workspace.identities.find_api_key(key.prefix) == record_before
    finally:
        workspace.close()
