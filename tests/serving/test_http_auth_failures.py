"""Failed authentications over real HTTP on both servers: lockout responses and audit events."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from manara.clock import FixedClock
from manara.serving.server import build_app
from manara.workspace import Workspace
from tests.sdk_modes import running_server
from tests.serving.conftest import MODEL, Served, running

WRONG_KEY = "mnr_0123456789ab_not-the-secret"


@pytest.fixture
def strict(served: Served) -> Iterator[Workspace]:
    """A second workspace on the same home whose authenticator locks out after 2 failures."""
    settings = dataclasses.replace(served.settings, auth_max_failures=2, auth_lockout_seconds=120)
    workspace = Workspace.open(settings)
    yield workspace
    workspace.close()


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    retry_after = response.headers.get("retry-after")
    assert retry_after is not None, response.headers
    assert 1 <= int(retry_after) <= 120, retry_after
    assert "Too many failed authentications" in response.text, response.text


def lock_out(client: httpx.Client, path: str) -> None:
    for _ in range(2):
        rejected = client.get(path, headers={"Authorization": f"Bearer {WRONG_KEY}"})
        assert rejected.status_code == 401, rejected.text


def test_control_plane_lockout_429(strict: Workspace, served: Served) -> None:
    with running_server(strict) as url, httpx.Client(base_url=url) as client:
        lock_out(client, "/api/v1/experiments")
        locked = client.get(
            "/api/v1/experiments", headers={"Authorization": f"Bearer {served.admin_key}"}
        )
    assert_rate_limited(locked)
    assert locked.json()["error"]["code"] == "rate_limited"
    assert locked.json()["error"]["details"]["retry_after_seconds"] == int(
        locked.headers["retry-after"]
    )


def test_inference_lockout_429(strict: Workspace, served: Served) -> None:
    with running(build_app(strict, MODEL)) as port, httpx.Client() as client:
        base = f"http://127.0.0.1:{port}/v2/models/{MODEL}"
        lock_out(client, base)
        locked = client.get(base, headers={"Authorization": f"Bearer {served.admin_key}"})
    assert_rate_limited(locked)
    assert isinstance(locked.json()["error"], str), locked.text


def header_failures(workspace: Workspace, reason: str) -> list[dict[str, object]]:
    events = workspace.audit.events(action="auth.failed", limit=10_000)
    return [dict(event.details) for event in events if event.reason == reason]


@contextmanager
def inference_server(workspace: Workspace) -> Iterator[str]:
    with running(build_app(workspace, MODEL)) as port:
        yield f"http://127.0.0.1:{port}"


SERVERS: dict[str, tuple[Callable[[Workspace], AbstractContextManager[str]], str]] = {
    "control-plane": (running_server, "/api/v1/experiments"),
    "inference": (inference_server, f"/v2/models/{MODEL}"),
}


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_header_failures_audited(served: Served, server: str) -> None:
    clock = FixedClock(datetime.now(UTC))
    workspace = Workspace.open(served.settings, clock=clock)
    before_missing = len(header_failures(workspace, "missing_header"))
    before_malformed = len(header_failures(workspace, "malformed_header"))
    start, path = SERVERS[server]
    try:
        with start(workspace) as url, httpx.Client(base_url=url) as client:
            for _ in range(3):
                missing = client.get(path)
                assert missing.status_code == 401, missing.text
            malformed = client.get(path, headers={"Authorization": "Basic Ym9iOnB3"})
            assert malformed.status_code == 401, malformed.text
            clock.advance(timedelta(seconds=61))
            later = client.get(path)
            assert later.status_code == 401, later.text
        missing_events = header_failures(workspace, "missing_header")[before_missing:]
        malformed_events = header_failures(workspace, "malformed_header")[before_malformed:]
    finally:
        workspace.close()

    # One event per client a minute: the first request, then the one after the
    # clock moved, which counts the three rejected in between.
    assert len(missing_events) == 2, missing_events
    assert malformed_events == [], malformed_events
    assert missing_events[0].get("client") == "127.0.0.1", missing_events
    assert missing_events[1].get("suppressed") == 3, missing_events
