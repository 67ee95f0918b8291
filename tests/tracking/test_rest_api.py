"""REST specifics of tracking: authentication, authorisation and the OpenAPI schema."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from manara.client import Client
from manara.errors import AuthenticationError, PermissionDeniedError
from manara.rest import RestTransport
from manara.tracking.rest import RestTracking
from manara.workspace import Workspace
from tests.sdk_modes import running_server


@pytest.fixture
def http(sqlite_workspace: Workspace) -> Iterator[httpx.Client]:
    with running_server(sqlite_workspace) as url, httpx.Client(base_url=url) as session:
        yield session


def _auth(workspace: Workspace) -> dict[str, str]:
    token = workspace.issue_key(workspace.local_admin()).token
    return {"Authorization": f"Bearer {token}"}


def test_no_token_is_401(http: httpx.Client) -> None:
    response = http.get("/api/v1/experiments")
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthenticated"
    assert response.headers["www-authenticate"] == "Bearer"
    response = http.post("/api/v1/runs/search", json={})
    assert response.status_code == 401, response.text


def test_routes_round_trip(http: httpx.Client, sqlite_workspace: Workspace) -> None:
    headers = _auth(sqlite_workspace)
    created = http.post("/api/v1/experiments", json={"name": "e"}, headers=headers)
    assert created.status_code == 201, created.text
    experiment_id = created.json()["id"]
    run = http.post("/api/v1/runs", json={"experiment_id": experiment_id}, headers=headers)
    assert run.status_code == 201, run.text
    run_id = run.json()["id"]
    logged = http.post(
        f"/api/v1/runs/{run_id}/metrics",
        json={"metrics": [{"key": "auc", "value": 0.5, "step": 1}]},
        headers=headers,
    )
    assert logged.status_code == 204, logged.text
    put = http.put(f"/api/v1/runs/{run_id}/artifacts/a/b.txt", content=b"hi", headers=headers)
    assert put.status_code == 200, put.text
    got = http.get(f"/api/v1/runs/{run_id}/artifacts/a/b.txt", headers=headers)
    assert got.content == b"hi"
    assert got.headers["x-content-sha256"] == put.json()["digest"]
    ended = http.patch(f"/api/v1/runs/{run_id}", json={"status": "FINISHED"}, headers=headers)
    assert ended.json()["status"] == "FINISHED"
    assert ended.json()["metrics"] == {"auc": 0.5}
    missing = http.get("/api/v1/runs/nope", headers=headers)
    assert missing.status_code == 404, missing.text
    assert missing.json()["error"]["code"] == "not_found"


def test_naive_timestamp_is_400(http: httpx.Client, sqlite_workspace: Workspace) -> None:
    headers = _auth(sqlite_workspace)
    experiment_id = http.post("/api/v1/experiments", json={"name": "e"}, headers=headers).json()[
        "id"
    ]
    run_id = http.post(
        "/api/v1/runs", json={"experiment_id": experiment_id}, headers=headers
    ).json()["id"]
    response = http.post(
        f"/api/v1/runs/{run_id}/metrics",
        json={"metrics": [{"key": "x", "value": 1, "timestamp": "2026-01-01T00:00:00"}]},
        headers=headers,
    )
    assert response.status_code == 400, response.text
    assert "no time zone" in response.json()["error"]["message"]


def test_openapi_lists_routes(http: httpx.Client, sqlite_workspace: Workspace) -> None:
    schema = http.get("/openapi.json", headers=_auth(sqlite_workspace)).json()
    paths = schema["paths"]
    for path in (
        "/api/v1/experiments",
        "/api/v1/experiments/{experiment_id}",
        "/api/v1/experiments/by-name/{name}",
        "/api/v1/runs",
        "/api/v1/runs/{run_id}",
        "/api/v1/runs/{run_id}/params",
        "/api/v1/runs/{run_id}/tags",
        "/api/v1/runs/{run_id}/metrics",
        "/api/v1/runs/{run_id}/metrics/{key}",
        "/api/v1/runs/{run_id}/inputs",
        "/api/v1/runs/{run_id}/artifacts/{path}",
        "/api/v1/runs/search",
    ):
        assert path in paths, sorted(paths)
    assert "RunOut" in schema["components"]["schemas"]
    put = paths["/api/v1/runs/{run_id}/artifacts/{path}"]["put"]
    assert "application/octet-stream" in put["requestBody"]["content"]


def test_sdk_without_valid_token(sqlite_workspace: Workspace) -> None:
    with running_server(sqlite_workspace) as url:
        anonymous = RestTransport(url, None)
        try:
            with pytest.raises(AuthenticationError, match="Missing Authorization"):
                RestTracking(anonymous).list_experiments()
        finally:
            anonymous.close()
        with (
            Client(url=url, token="mnr_000000000000_wrong") as client,
            pytest.raises(AuthenticationError),
        ):
            client.tracking.list_experiments()


def test_viewer_over_rest_is_denied(sqlite_workspace: Workspace) -> None:
    admin = Client(workspace=sqlite_workspace)
    with admin.start_run(experiment="e") as run:
        run.log_param("depth", 3)
    admin.close()
    bob = sqlite_workspace.create_principal("bob", {"viewer"})
    token = sqlite_workspace.issue_key(bob).token
    with running_server(sqlite_workspace) as url, Client(url=url, token=token) as viewer:
        assert viewer.tracking.get_run(run.id).params == {"depth": "3"}
        with pytest.raises(PermissionDeniedError, match="run.update"):
            viewer.tracking.set_tags(run.id, {"x": "y"})
