"""Identity administration, API key attacks, lockouts and platform tokens."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from typer.testing import CliRunner

from manara.cli.main import build_app
from manara.clock import FixedClock
from manara.config import Settings
from manara.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from manara.security.identities import IdentityService
from manara.security.ratelimit import FailureLimiter
from manara.security.tokens import PLATFORM_AUDIENCE, PLATFORM_ISSUER, platform_jwks
from manara.workspace import Workspace

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def ws(settings: Settings, clock: FixedClock) -> Iterator[Workspace]:
    workspace = Workspace.open(settings, clock=clock)
    try:
        yield workspace
    finally:
        workspace.close()


@pytest.fixture
def admin(ws: Workspace) -> IdentityService:
    return IdentityService(ws.context(), ws.authenticator)


def _reason(ws: Workspace, token: str, client: str | None = None) -> str:
    with pytest.raises(AuthenticationError) as caught:
        ws.authenticator.authenticate(token, client=client)
    return str(caught.value.details.get("reason"))


def test_create_project_and_principals(admin: IdentityService) -> None:
    admin.create_project("fraud", "fraud models")
    user = admin.create_principal("alice", "fraud", ["ml-engineer"])
    bot = admin.create_principal("ci-bot", "fraud", ["viewer"], kind="service")
    assert user.project == "fraud"
    assert bot.kind == "service"
    names = [r.principal.name for r in admin.list_principals("fraud")]
    assert names == ["alice", "ci-bot"]
    assert [p.name for p in admin.list_projects()] == ["default", "fraud"]


def test_bad_input_changes_nothing(admin: IdentityService) -> None:
    with pytest.raises(NotFoundError, match="manara projects create"):
        admin.create_principal("bob", "nowhere", ["viewer"])
    with pytest.raises(InvalidInputError):
        admin.create_principal("bob", "default", ["Not A Role"])
    with pytest.raises(InvalidInputError):
        admin.create_project("Bad Name")
    assert [r.principal.name for r in admin.list_principals()] == ["local-admin"]
    admin.create_project("fraud")
    with pytest.raises(ConflictError):
        admin.create_project("fraud")


def test_membership_roles(admin: IdentityService, ws: Workspace) -> None:
    admin.create_project("fraud")
    alice = admin.create_principal("alice", "default", ["viewer"])
    admin.add_member("alice", "fraud", ["ml-engineer", "approver"])
    assert ws.identities.memberships(alice.id) == {"fraud": frozenset({"ml-engineer", "approver"})}
    admin.add_member("alice", "fraud", ["viewer"])
    key = admin.issue_api_key("alice")
    principal = ws.authenticator.authenticate(key.token)
    assert principal.roles_in("default") == frozenset({"viewer"})
    assert principal.roles_in("fraud") == frozenset({"viewer"})
    assert principal.roles_in("other") == frozenset()


def test_viewer_cannot_administer(admin: IdentityService, ws: Workspace) -> None:
    viewer = admin.create_principal("vera", "default", ["viewer"])
    as_viewer = IdentityService(ws.context(viewer))
    with pytest.raises(PermissionDeniedError):
        as_viewer.create_project("mine")
    with pytest.raises(PermissionDeniedError):
        as_viewer.create_principal("mallory", "default", ["admin"])
    with pytest.raises(PermissionDeniedError):
        as_viewer.disable_principal("local-admin")
    with pytest.raises(PermissionDeniedError):
        as_viewer.issue_api_key("vera")


def test_changes_audited(admin: IdentityService, ws: Workspace) -> None:
    admin.create_project("fraud")
    admin.create_principal("alice", "fraud", ["viewer"])
    key = admin.issue_api_key("alice", timedelta(days=30))
    admin.revoke_api_key(key.prefix)
    admin.disable_principal("alice")
    actions = [e.action for e in ws.audit.events()]
    for action in (
        "project.create",
        "principal.create",
        "apikey.create",
        "apikey.revoke",
        "principal.disable",
    ):
        assert action in actions, actions
    assert all(key.token not in str(e.details) for e in ws.audit.events())


def test_revoked_api_key(admin: IdentityService, ws: Workspace) -> None:
    admin.create_principal("svc", "default", ["viewer"], kind="service")
    key = admin.issue_api_key("svc")
    assert ws.authenticator.authenticate(key.token).name == "svc"
    admin.revoke_api_key(key.prefix)
    assert _reason(ws, key.token) == "revoked"
    events = ws.audit.events(action="auth.failed")
    assert [e.reason for e in events] == ["revoked"]
    assert events[0].resource_id == key.prefix


def test_disabled_principal(admin: IdentityService, ws: Workspace) -> None:
    admin.create_principal("svc", "default", ["viewer"], kind="service")
    key = admin.issue_api_key("svc")
    token = admin.issue_token("svc", timedelta(minutes=15)).token
    assert ws.authenticator.authenticate(key.token).name == "svc"
    assert ws.authenticator.authenticate(token).name == "svc"
    admin.disable_principal("svc")
    assert _reason(ws, key.token) == "disabled"
    assert _reason(ws, token) == "disabled"
    with pytest.raises(InvalidInputError, match="disabled"):
        admin.issue_api_key("svc")


def test_wrong_keys_locked_out(admin: IdentityService, ws: Workspace, clock: FixedClock) -> None:
    admin.create_principal("svc", "default", ["viewer"], kind="service")
    key = admin.issue_api_key("svc")
    wrong = key.token[:-6] + ("A" * 6 if not key.token.endswith("A" * 6) else "B" * 6)
    for _ in range(ws.settings.auth_max_failures):
        assert _reason(ws, wrong, client="10.0.0.9") == "invalid_key"
    with pytest.raises(AuthenticationError, match="Wait 300 seconds") as caught:
        ws.authenticator.authenticate(key.token)
    assert caught.value.details["reason"] == "rate_limited"
    assert _reason(ws, key.token, client="10.0.0.9") == "rate_limited"
    assert _reason(ws, key.token, client="10.0.0.9") == "rate_limited"
    clock.advance(timedelta(seconds=ws.settings.auth_lockout_seconds))
    assert ws.authenticator.authenticate(key.token).name == "svc"
    reasons = [e.reason for e in ws.audit.events(action="auth.failed")]
    # One event per lockout (the prefix's, then the client's), not one per attempt.
    assert reasons == ["invalid_key"] * 5 + ["rate_limited"] * 2


def test_client_locked_out(ws: Workspace, clock: FixedClock) -> None:
    key = ws.issue_key(ws.local_admin())
    for index in range(5):
        _reason(ws, f"mnr_{index:012x}_guess-guess-guess-guess", client="203.0.113.5")
    assert _reason(ws, key.token, client="203.0.113.5") == "rate_limited"
    assert ws.authenticator.authenticate(key.token, client="198.51.100.1").name == "local-admin"


def test_limiter_window_slides() -> None:
    now = [0.0]
    limiter = FailureLimiter(3, window_seconds=10, lockout_seconds=30, clock=lambda: now[0])
    assert not limiter.record_failure(["k"])
    now[0] = 6
    assert not limiter.record_failure(["k"])
    now[0] = 12  # the first failure left the window
    assert not limiter.record_failure(["k"])
    assert limiter.retry_after(["k"]) is None
    now[0] = 13
    assert limiter.record_failure(["k"])
    assert limiter.retry_after(["k", "other"]) == 30
    now[0] = 43
    assert limiter.retry_after(["k"]) is None


def test_platform_token_expires(admin: IdentityService, ws: Workspace, clock: FixedClock) -> None:
    admin.create_principal("svc", "default", ["viewer"], kind="service")
    issued = admin.issue_token("svc", timedelta(minutes=15))
    keys = jwt.PyJWKSet.from_dict(platform_jwks(ws.settings))
    claims = jwt.decode(
        issued.token,
        keys.keys[0].key,
        algorithms=["EdDSA"],
        audience=PLATFORM_AUDIENCE,
        issuer=PLATFORM_ISSUER,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["exp"] - claims["iat"] == 900
    assert ws.authenticator.authenticate(issued.token).name == "svc"
    ws.authenticator.forget()
    clock.advance(timedelta(minutes=14))
    assert ws.authenticator.authenticate(issued.token).name == "svc"
    clock.advance(timedelta(minutes=2))
    assert _reason(ws, issued.token) == "expired"


def test_token_only_for_service_accounts(admin: IdentityService) -> None:
    admin.create_principal("alice", "default", ["viewer"])
    with pytest.raises(InvalidInputError, match="service account"):
        admin.issue_token("alice", timedelta(minutes=15))


def test_token_issue_permission(admin: IdentityService, ws: Workspace) -> None:
    bot = admin.create_principal("bot", "default", ["viewer"], kind="service")
    admin.create_principal("other", "default", ["viewer"], kind="service")
    as_bot = IdentityService(ws.context(bot))
    assert as_bot.issue_token("bot", timedelta(minutes=5), via_api_key=True).token
    with pytest.raises(PermissionDeniedError):
        as_bot.issue_token("bot", timedelta(minutes=5))
    with pytest.raises(PermissionDeniedError):
        as_bot.issue_token("other", timedelta(minutes=5), via_api_key=True)


def test_signing_key_private(admin: IdentityService, ws: Workspace) -> None:
    admin.create_principal("svc", "default", [], kind="service")
    admin.issue_token("svc", timedelta(minutes=1))
    path = ws.settings.home / "keys" / "token-signing.key"
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "cli"
    monkeypatch.setenv("MANARA_HOME", str(home))
    for variable in ("MANARA_SERVER_URL", "MANARA_DATABASE_URL", "MANARA_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    return home


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args))
    return result.exit_code, result.output


def test_cli_identity_flow(cli_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _cli("projects", "create", "fraud")[0] == 0
    code, output = _cli("principals", "create", "ci-bot", "--project", "fraud", "--service")
    assert code == 0, output
    code, output = _cli("api-keys", "create", "ci-bot", "--expires-in", "30d")
    assert code == 0, output
    api_key = output.strip().splitlines()[-1]
    assert api_key.startswith("mnr_")
    code, output = _cli("principals", "list")
    assert code == 0, output
    assert "ci-bot" in output

    monkeypatch.setenv("MANARA_API_KEY", api_key)
    code, output = _cli("token", "ci-bot")
    assert code == 0, output
    token = output.strip().splitlines()[-1]
    monkeypatch.delenv("MANARA_API_KEY")
    workspace = Workspace.open(Settings(home=cli_home))
    try:
        assert workspace.authenticator.authenticate(token).name == "ci-bot"
    finally:
        workspace.close()

    code, output = _cli("token", "ci-bot", "--expires-in", "2d")
    assert code == 2, output
    prefix = api_key.split("_")[1]
    assert _cli("api-keys", "revoke", prefix)[0] == 0
    code, output = _cli("principals", "disable", "ci-bot")
    assert code == 0, output
    code, output = _cli("token", "ci-bot")
    assert code == 5, output
