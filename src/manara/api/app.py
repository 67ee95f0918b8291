"""The control-plane application: routers per area, one error handler, auth on every route.

Every route authenticates its caller except ``GET /health/live``, and
``create_app`` raises if a route does not (``manara.api.guard``). The
OpenAPI schema at ``/openapi.json`` needs a valid credential like any other
route. The interactive pages (``/docs``, ``/redoc``) are not served: they
load scripts from a CDN, which the Content-Security-Policy of every
response forbids, and they could not send the bearer token for the schema.
Fetch the schema with a key and open it in any OpenAPI viewer instead.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import Depends, FastAPI, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from manara import __version__
from manara.api.deps import authenticated_principal
from manara.api.errors import (
    ERROR_BODY_SCHEMA,
    handle_http_exception,
    handle_manara_error,
    handle_unexpected_error,
    handle_validation_error,
)
from manara.api.guard import check_guarded
from manara.errors import ManaraError
from manara.http_security import SecurityHeadersMiddleware, cors_options
from manara.workspace import Workspace

logger = logging.getLogger(__name__)

_GUARD = [Depends(authenticated_principal)]


class ControlPlane(FastAPI):
    """FastAPI with an OpenAPI schema that documents Manara's error body."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = get_openapi(
                title=self.title, version=self.version, routes=self.routes, tags=self.openapi_tags
            )
            # FastAPI documents its own validation error body; ours replaces it.
            schemas = schema.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = ERROR_BODY_SCHEMA
                schemas.pop("ValidationError", None)
            self.openapi_schema = schema
        return self.openapi_schema


def create_app(workspace: Workspace) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logger.info("control plane started home=%s", workspace.settings.home)
        yield
        logger.info("control plane stopped")

    app = ControlPlane(
        title="Manara control plane",
        version=__version__,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.workspace = workspace
    app.add_exception_handler(ManaraError, handle_manara_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
    app.add_exception_handler(Exception, handle_unexpected_error)

    @app.get("/health/live", tags=["health"])
    def live() -> dict[str, str]:
        """Liveness: the only route that needs no credentials."""
        return {"status": "live"}

    @app.get("/openapi.json", include_in_schema=False, dependencies=_GUARD)
    def openapi() -> Response:
        return Response(orjson.dumps(app.openapi()), media_type="application/json")

    from manara.api import registry, tracking

    app.include_router(tracking.router, dependencies=_GUARD)
    app.include_router(registry.router, dependencies=_GUARD)
    check_guarded(app)

    if workspace.settings.cors_origins:
        app.add_middleware(CORSMiddleware, **cors_options(workspace.settings.cors_origins))
    # Added last, so it also covers CORS preflight responses. Starlette's error
    # middleware sits outside every added middleware, so the handler of
    # unexpected errors sets these headers on 500 responses itself.
    app.add_middleware(SecurityHeadersMiddleware)
    return app
