from __future__ import annotations

import asyncio

import pytest

from manara.errors import AuthenticationError, PermissionDeniedError
from manara.security.apikeys import Authenticator
from manara.security.principal import Principal
from manara.serving.auth import ServingAuth
from manara.workspace import Workspace


class Ticker:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingAuthenticator(Authenticator):
    calls = 0

    def authenticate(self, token: str, *, client: str | None = None) -> Principal:
        self.calls += 1
        return super().authenticate(token, client=client)


def bearer(token: str) -> bytes:
    return f"Bearer {token}".encode()


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


def serving_auth(workspace: Workspace, ticker: Ticker) -> tuple[ServingAuth, CountingAuthenticator]:
    authenticator = CountingAuthenticator(workspace.identities, workspace.clock, cache_seconds=0)
    auth = ServingAuth(authenticator, workspace.policy, "churn", cache_seconds=5, monotonic=ticker)
    return auth, authenticator


def test_valid_key_cached(sqlite_workspace: Workspace, ticker: Ticker) -> None:
    scorer = sqlite_workspace.create_principal("scorer", {"inference-client"})
    token = sqlite_workspace.issue_key(scorer).token
    auth, authenticator = serving_auth(sqlite_workspace, ticker)

    async def twice() -> list[Principal]:
        return [await auth.authenticate(bearer(token)), await auth.authenticate(bearer(token))]

    assert asyncio.run(twice()) == [scorer, scorer]
    assert authenticator.calls == 1


def test_revoked_key_rejected_after_ttl(sqlite_workspace: Workspace, ticker: Ticker) -> None:
    scorer = sqlite_workspace.create_principal("scorer", {"inference-client"})
    issued = sqlite_workspace.issue_key(scorer)
    auth, _ = serving_auth(sqlite_workspace, ticker)

    async def check() -> Principal:
        return await auth.authenticate(bearer(issued.token))

    assert asyncio.run(check()) == scorer
    sqlite_workspace.identities.revoke_api_key(issued.prefix, sqlite_workspace.clock.now())
    ticker.now = 4.9
    assert asyncio.run(check()) == scorer, "a cached principal is kept for cache_seconds"
    ticker.now = 5.1
    with pytest.raises(AuthenticationError, match="revoked"):
        asyncio.run(check())


def test_concurrent_misses_verify_once(sqlite_workspace: Workspace, ticker: Ticker) -> None:
    scorer = sqlite_workspace.create_principal("scorer", {"inference-client"})
    token = sqlite_workspace.issue_key(scorer).token
    auth, authenticator = serving_auth(sqlite_workspace, ticker)

    async def many() -> list[Principal]:
        return await asyncio.gather(*(auth.authenticate(bearer(token)) for _ in range(10)))

    assert asyncio.run(many()) == [scorer] * 10
    assert authenticator.calls == 1


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Missing Authorization header"),
        (b"Basic abc", "Invalid Authorization header"),
        (b"Bearer mnr_000000000000_nope", "Invalid API key"),
    ],
)
def test_bad_credentials_rejected(
    sqlite_workspace: Workspace, ticker: Ticker, header: bytes | None, message: str
) -> None:
    auth, _ = serving_auth(sqlite_workspace, ticker)
    with pytest.raises(AuthenticationError, match=message):
        asyncio.run(auth.authenticate(header))


def test_viewer_reads_but_cannot_invoke(sqlite_workspace: Workspace, ticker: Ticker) -> None:
    viewer = sqlite_workspace.create_principal("v", {"viewer"})
    auth, _ = serving_auth(sqlite_workspace, ticker)
    auth.authorize(viewer, ("model.read", "model.invoke"))
    with pytest.raises(PermissionDeniedError, match="model.invoke"):
        auth.authorize(viewer, ("model.invoke",))


def test_decision_cached_for_ttl(sqlite_workspace: Workspace, ticker: Ticker) -> None:
    scorer = sqlite_workspace.create_principal("scorer", {"inference-client"})
    auth, _ = serving_auth(sqlite_workspace, ticker)
    auth.authorize(scorer, ("model.invoke",))
    # The same principal id with its role removed: still allowed from the cache.
    stripped = Principal(id=scorer.id, name=scorer.name, roles=frozenset())
    auth.authorize(stripped, ("model.invoke",))
    ticker.now = 6.0
    with pytest.raises(PermissionDeniedError):
        auth.authorize(stripped, ("model.invoke",))


def test_grant_cached_per_action(sqlite_workspace: Workspace, ticker: Ticker) -> None:
    viewer = sqlite_workspace.create_principal("watcher", {"viewer"})
    token = sqlite_workspace.issue_key(viewer).token
    auth, authenticator = serving_auth(sqlite_workspace, ticker)

    async def check(actions: tuple[str, ...]) -> None:
        await auth.check(bearer(token), "127.0.0.1", actions)

    asyncio.run(check(("model.read",)))
    asyncio.run(check(("model.read",)))
    assert authenticator.calls == 1
    with pytest.raises(PermissionDeniedError):
        asyncio.run(check(("model.invoke",)))


def test_grant_expires_after_ttl(sqlite_workspace: Workspace, ticker: Ticker) -> None:
    scorer = sqlite_workspace.create_principal("scorer", {"inference-client"})
    issued = sqlite_workspace.issue_key(scorer)
    auth, _ = serving_auth(sqlite_workspace, ticker)

    async def check() -> None:
        await auth.check(bearer(issued.token), None, ("model.invoke",))

    asyncio.run(check())
    sqlite_workspace.identities.revoke_api_key(issued.prefix, sqlite_workspace.clock.now())
    ticker.now = 4.9
    asyncio.run(check())
    ticker.now = 10.2
    with pytest.raises(AuthenticationError, match="revoked"):
        asyncio.run(check())


def test_check_without_header_rejected(sqlite_workspace: Workspace, ticker: Ticker) -> None:
    auth, _ = serving_auth(sqlite_workspace, ticker)
    with pytest.raises(AuthenticationError, match="Missing Authorization"):
        asyncio.run(auth.check(None, "127.0.0.1", ("model.invoke",)))
