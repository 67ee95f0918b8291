"""Checks that every route of the control plane authenticates its caller.

A route is guarded when ``authenticated_principal`` is among its
dependencies, directly or through another dependency. ``create_app``
calls ``check_guarded`` before returning, so an application with a new
route that forgot authentication fails to build instead of serving it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fastapi.routing
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from manara.api.deps import authenticated_principal

PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset({("GET", "/health/live")})
"""(method, path) pairs served without credentials."""


@dataclass(frozen=True)
class RouteView:
    """One served route, with the router-level dependencies it was included with."""

    path: str
    """The path template, such as ``/api/v1/runs/{run_id}``."""
    methods: frozenset[str]
    dependant: Dependant | None
    """FastAPI's dependency tree of the route; ``None`` for a non-FastAPI route."""
    description: str


def iter_routes(app: FastAPI) -> Iterator[RouteView]:
    """Yield every route that ``app`` serves, including those of included routers."""
    # FastAPI 0.16x keeps included routers as one entry of ``app.routes``
    # and resolves their routes through ``iter_route_contexts``; older
    # versions copy each route into ``app.routes``.
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    entries = list(iterate(app.routes)) if iterate is not None else list(app.routes)
    entry: Any
    for entry in entries:
        original = getattr(entry, "original_route", entry)
        path = str(getattr(entry, "path_format", None) or getattr(entry, "path", ""))
        if isinstance(original, APIRoute):
            methods = frozenset(entry.methods or ())
            yield RouteView(path, methods, entry.dependant, f"{','.join(sorted(methods))} {path}")
        else:
            yield RouteView(path, frozenset(), None, f"{type(original).__name__} {path!r}")


def _depends_on_guard(dependant: Dependant) -> bool:
    return any(
        dependency.call is authenticated_principal or _depends_on_guard(dependency)
        for dependency in dependant.dependencies
    )


def unguarded_routes(app: FastAPI) -> list[str]:
    """Return a description of each route that is neither public nor authenticated."""
    unguarded = []
    for route in iter_routes(app):
        if route.dependant is None:
            # Mounts, websockets and plain Starlette routes cannot carry
            # FastAPI dependencies, so none may be added.
            unguarded.append(route.description)
            continue
        if route.methods and all((method, route.path) in PUBLIC_ROUTES for method in route.methods):
            continue
        if not _depends_on_guard(route.dependant):
            unguarded.append(route.description)
    return unguarded


def check_guarded(app: FastAPI) -> None:
    """Raise ``RuntimeError`` if a route of ``app`` is neither public nor authenticated."""
    unguarded = unguarded_routes(app)
    if unguarded:
        raise RuntimeError(
            "Routes without authentication: "
            + "; ".join(unguarded)
            + ". Include them through a router with the authenticated_principal dependency, "
            "or list them in manara.api.guard.PUBLIC_ROUTES."
        )
