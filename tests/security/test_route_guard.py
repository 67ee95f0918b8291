"""Every route of both ASGI apps authenticates (401) and authorises (403).

The routes are enumerated from the applications themselves, so a new route
is covered without editing this file. Path parameters are filled with ids
of real resources created by an admin, so that a principal with the wrong
role gets 403 and never 404.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi import Depends, FastAPI
from sklearn.linear_model import LogisticRegression
from starlette.routing import Mount

from manara.api.app import create_app
from manara.api.deps import authenticated_principal
from manara.api.guard import PUBLIC_ROUTES, RouteView, check_guarded, iter_routes
from manara.registry.service import RegistryService
from manara.serving.app import InferenceApp
from manara.serving.server import build_app
from manara.tracking.entities import Metric
from manara.tracking.service import TrackingService
from manara.workspace import Workspace
from tests.sdk_modes import running_server
from tests.serving.conftest import MODEL, register, running, sklearn_pipeline, synthetic_frame

MALFORMED = ("Bearer", "Bearer not-a-key", "Basic dXNlcjpwYXNz", "mnr_x_y")
UNKNOWN_KEY = "Bearer mnr_000000000000_thiskeywasneverissued"
# POST routes that only read; every other POST, PUT, PATCH and DELETE writes.
# The walk sends hundreds of bad credentials from one address; a lockout
# would turn the later 403 checks into 401s.
NO_LOCKOUT = 1_000_000
READ_ONLY_POSTS = {"/api/v1/runs/search"}
_PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")


@dataclass
class Plane:
    url: str
    app: FastAPI
    values: dict[str, str]
    admin: str
    viewer: str
    nobody: str


def seed_resources(workspace: Workspace) -> dict[str, str]:
    """Create one of each resource as the admin; return path parameter values naming them."""
    ctx = workspace.context()
    tracking = TrackingService(ctx)
    experiment = tracking.create_experiment("guarded")
    run = tracking.create_run(experiment.id)
    tracking.log_metrics(run.id, [Metric("auc", 0.5, 0, None)])
    tracking.log_artifact(run.id, "notes.txt", b"hello")
    frame = pd.DataFrame({"x": np.arange(20, dtype=np.float64)})
    model = LogisticRegression().fit(frame, np.arange(20) % 2)
    registry = RegistryService(ctx, tracking)
    registry.log_model(run.id, model, frame.head(5))
    registry.create_version("guarded-model", run.id)
    registry.set_alias("guarded-model", "champion", 1)
    return {
        "experiment_id": experiment.id,
        "experiment_name": experiment.name,
        "run_id": run.id,
        "key": "auc",
        "path": "notes.txt",
        "name": "guarded-model",
        "version": "1",
        "alias": "champion",
        "role": "manifest",
        "ref": "guarded-model@champion",
    }


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    from manara.config import Settings

    workspace = Workspace.open(
        Settings(home=tmp_path_factory.mktemp("guard") / "home", auth_max_failures=NO_LOCKOUT)
    )
    try:
        values = seed_resources(workspace)
        keys = {
            "admin": workspace.issue_key(workspace.local_admin()).token,
            "viewer": workspace.issue_key(workspace.create_principal("v", {"viewer"})).token,
            "nobody": workspace.issue_key(workspace.create_principal("nobody", set())).token,
        }
        with running_server(workspace) as url:
            yield Plane(url, create_app(workspace), values, **keys)
    finally:
        workspace.close()


def _url(route: RouteView, values: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "name" and route.path.startswith("/api/v1/experiments/by-name/"):
            name = "experiment_name"
        assert name in values, f"add a value for path parameter {name!r} of {route.description}"
        return values[name]

    url = _PARAM.sub(fill, route.path)
    assert route.dependant is not None
    required = [
        param.name for param in route.dependant.query_params if param.field_info.is_required()
    ]
    for name in required:
        assert name in values, f"add a value for query parameter {name!r} of {route.description}"
    query = "&".join(f"{name}={values[name]}" for name in required)
    return f"{url}?{query}" if query else url


def _guarded(app: FastAPI) -> list[tuple[str, RouteView]]:
    pairs = [
        (method, route)
        for route in iter_routes(app)
        for method in sorted(route.methods)
        if (method, route.path) not in PUBLIC_ROUTES
    ]
    assert len(pairs) >= 20, "the route walk found too few routes"
    return pairs


def _minimal(schema: dict[str, Any], components: dict[str, Any], values: dict[str, str]) -> Any:
    """Build the smallest instance of a JSON schema; properties named in ``values`` get those."""
    if "$ref" in schema:
        return _minimal(components[schema["$ref"].rsplit("/", 1)[-1]], components, values)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [item for item in schema[key] if item.get("type") != "null"]
            return _minimal(options[0], components, values)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if kind == "object":
        properties = schema.get("properties", {})
        instance = {}
        for name in schema.get("required", []):
            if name in values:
                known = values[name]
                instance[name] = int(known) if properties[name].get("type") == "integer" else known
            else:
                instance[name] = _minimal(properties[name], components, values)
        return instance
    simple = {"string": "x", "integer": 1, "number": 1.0, "boolean": False, "array": []}
    return simple[kind]


def _body(plane: Plane, method: str, route: RouteView) -> dict[str, Any]:
    schema = plane.app.openapi()
    operation = schema["paths"].get(_PARAM.sub(r"{\1}", route.path), {})
    content = operation.get(method.lower(), {}).get("requestBody", {}).get("content", {})
    if "application/octet-stream" in content:
        return {"content": b"data"}
    if "application/json" in content:
        components = schema["components"]["schemas"]
        body_schema = content["application/json"]["schema"]
        return {"json": _minimal(body_schema, components, plane.values)}
    return {}


def test_no_token_is_401(plane: Plane) -> None:
    with httpx.Client(base_url=plane.url) as http:
        for method, route in _guarded(plane.app):
            response = http.request(method, _url(route, plane.values))
            assert response.status_code == 401, f"{method} {route.path}: {response.text}"
            assert response.json()["error"]["code"] == "unauthenticated"


def test_bad_token_is_401(plane: Plane) -> None:
    with httpx.Client(base_url=plane.url) as http:
        for method, route in _guarded(plane.app):
            for header in (*MALFORMED, UNKNOWN_KEY):
                response = http.request(
                    method, _url(route, plane.values), headers={"Authorization": header}
                )
                assert response.status_code == 401, f"{method} {route.path} {header!r}"


def test_no_role_is_403(plane: Plane) -> None:
    headers = {"Authorization": f"Bearer {plane.nobody}"}
    with httpx.Client(base_url=plane.url, headers=headers) as http:
        for method, route in _guarded(plane.app):
            response = http.request(
                method, _url(route, plane.values), **_body(plane, method, route)
            )
            assert response.status_code == 403, f"{method} {route.path}: {response.text}"
            assert response.json()["error"]["code"] == "permission_denied"


def test_viewer_write_is_403(plane: Plane) -> None:
    headers = {"Authorization": f"Bearer {plane.viewer}"}
    writes = [
        (method, route)
        for method, route in _guarded(plane.app)
        if method != "GET" and route.path not in READ_ONLY_POSTS
    ]
    assert writes, "no write routes found"
    with httpx.Client(base_url=plane.url, headers=headers) as http:
        for method, route in writes:
            response = http.request(
                method, _url(route, plane.values), **_body(plane, method, route)
            )
            assert response.status_code == 403, f"{method} {route.path}: {response.text}"


def test_admin_reads_every_get(plane: Plane) -> None:
    """The filled-in URLs name real resources, so the 403s above are decisions, not 404s."""
    headers = {"Authorization": f"Bearer {plane.admin}"}
    with httpx.Client(base_url=plane.url, headers=headers) as http:
        for method, route in _guarded(plane.app):
            if method != "GET":
                continue
            response = http.get(_url(route, plane.values))
            assert response.status_code == 200, f"GET {route.path}: {response.text}"


def test_liveness_is_public(plane: Plane) -> None:
    with httpx.Client(base_url=plane.url) as http:
        for method, path in PUBLIC_ROUTES:
            response = http.request(method, path)
            assert response.status_code == 200, f"{method} {path}: {response.text}"


def test_docs_not_served(plane: Plane) -> None:
    headers = {"Authorization": f"Bearer {plane.admin}"}
    with httpx.Client(base_url=plane.url, headers=headers) as http:
        for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            response = http.get(path)
            assert response.status_code == 404, f"{path}: {response.text}"


def test_factory_rejects_unguarded_route(sqlite_workspace: Workspace) -> None:
    app = create_app(sqlite_workspace)

    @app.get("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError, match="/api/v1/forgotten"):
        check_guarded(app)


def test_factory_accepts_guarded_route(sqlite_workspace: Workspace) -> None:
    app = create_app(sqlite_workspace)

    @app.get("/api/v1/remembered", dependencies=[Depends(authenticated_principal)])
    def remembered() -> dict[str, str]:
        return {}

    check_guarded(app)


def test_factory_rejects_mount(sqlite_workspace: Workspace) -> None:
    app = create_app(sqlite_workspace)
    app.router.routes.append(Mount("/static", app=FastAPI()))
    with pytest.raises(RuntimeError, match="/static"):
        check_guarded(app)


# The inference server ---------------------------------------------------------


@dataclass
class Inference:
    url: str
    app: InferenceApp
    viewer: str
    nobody: str


@pytest.fixture(scope="module")
def inference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inference]:
    from manara.config import Settings

    home = tmp_path_factory.mktemp("guard-inference") / "home"
    workspace = Workspace.open(Settings(home=home, auth_max_failures=NO_LOCKOUT))
    try:
        frame, labels = synthetic_frame(200, seed=5)
        register(workspace, MODEL, sklearn_pipeline(frame, labels), frame.head(20))
        viewer = workspace.issue_key(workspace.create_principal("v", {"viewer"})).token
        nobody = workspace.issue_key(workspace.create_principal("nobody", set())).token
        app = build_app(workspace, MODEL)
        with running(app) as port:
            yield Inference(f"http://127.0.0.1:{port}", app, viewer, nobody)
    finally:
        workspace.close()


def _inference_routes(inference: Inference) -> list[tuple[str, str, bool]]:
    routes = [
        (method, path, route.public)
        for path, methods in inference.app.routes.items()
        for method, route in methods.items()
    ]
    assert len(routes) >= 10, "the route walk found too few inference routes"
    return routes


def test_inference_routes_need_token(inference: Inference) -> None:
    with httpx.Client(base_url=inference.url) as http:
        for method, path, public in _inference_routes(inference):
            if public:
                assert http.request(method, path).status_code == 200, path
                continue
            for headers in ({}, *({"Authorization": h} for h in (*MALFORMED, UNKNOWN_KEY))):
                response = http.request(method, path, headers=headers, content=b"{}")
                assert response.status_code == 401, f"{method} {path} {headers}"


def test_inference_no_role_is_403(inference: Inference) -> None:
    headers = {"Authorization": f"Bearer {inference.nobody}"}
    with httpx.Client(base_url=inference.url, headers=headers) as http:
        for method, path, public in _inference_routes(inference):
            if public:
                continue
            response = http.request(method, path, content=b"{}")
            assert response.status_code == 403, f"{method} {path}: {response.text}"


def test_inference_viewer_cannot_infer(inference: Inference) -> None:
    headers = {"Authorization": f"Bearer {inference.viewer}"}
    with httpx.Client(base_url=inference.url, headers=headers) as http:
        for method, path, _public in _inference_routes(inference):
            if method == "POST":
                response = http.post(path, content=b"{}")
                assert response.status_code == 403, f"{method} {path}: {response.text}"
