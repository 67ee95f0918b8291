"""The control-plane application: routers per area, one error handler, auth on every route."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from manara import __version__
from manara.api.errors import handle_manara_error
from manara.errors import ManaraError
from manara.workspace import Workspace

logger = logging.getLogger(__name__)


def create_app(workspace: Workspace) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logger.info("control plane started home=%s", workspace.settings.home)
        yield
        logger.info("control plane stopped")

    app = FastAPI(
        title="Manara control plane",
        version=__version__,
        lifespan=lifespan,
    )
    app.state.workspace = workspace
    app.add_exception_handler(ManaraError, handle_manara_error)

    @app.get("/health/live", tags=["health"])
    def live() -> dict[str, str]:
        """Liveness: the only route that needs no credentials."""
        return {"status": "live"}

    from manara.api import registry, tracking

    app.include_router(tracking.router)
    app.include_router(registry.router)
    return app
