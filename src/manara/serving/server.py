"""Build the inference application for a registered model and run it on uvicorn."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from manara.config import Settings, load_settings
from manara.http_security import ASGIApp, secure_app, tls_options
from manara.logs import configure_logging
from manara.security.principal import Principal
from manara.serving.app import InferenceApp
from manara.serving.auth import ServingAuth
from manara.serving.model import ServedModel
from manara.serving.prediction_log import PredictionLogWriter
from manara.stores.metadata.access import model_access
from manara.workspace import Workspace

logger = logging.getLogger(__name__)

# Worker processes started by uvicorn read the resolved model from here.
MODEL_ENV = "MANARA_SERVE_MODEL"
LOG_LEVEL_ENV = "MANARA_SERVE_LOG_LEVEL"


def build_app(
    workspace: Workspace,
    ref: str,
    prediction_log: bool = True,
    on_shutdown: Callable[[], None] | None = None,
) -> InferenceApp:
    """Resolve ``ref`` (``NAME``, ``NAME@ALIAS`` or ``NAME:VERSION``), load it, build the app.

    ``on_shutdown`` runs after the prediction log is flushed, for example to
    close a workspace that the caller opened only for this server.
    """
    from manara.registry.service import RegistryService

    loaded = RegistryService(workspace.context()).load(ref)
    model = ServedModel(loaded)
    logger.info(
        "serving model=%s version=%d runtime=%s ref=%s",
        model.name,
        model.version,
        model.runtime,
        ref,
    )
    registered = RegistryService(workspace.context()).get_model(model.name)
    access = model_access(workspace.metadata, registered.project, model.name)

    def audit_denial(principal: Principal, action: str, reason: str) -> None:
        workspace.context(principal).record(
            action, "model", model.name, decision="deny", reason=reason
        )

    auth = ServingAuth(
        workspace.authenticator,
        workspace.policy,
        model.name,
        access=access,
        on_denied=audit_denial,
    )
    workspace.context().record(
        "model.deploy",
        "model_version",
        f"{model.name}:{model.version}",
        details={"ref": ref, "runtime": model.runtime},
    )
    writer = None
    if prediction_log:
        settings = workspace.settings
        writer = PredictionLogWriter(
            settings.predictions_dir,
            model.name,
            model.version,
            loaded.signature,
            batch_size=settings.prediction_log_batch_size,
            flush_seconds=settings.prediction_log_flush_seconds,
        )
    return InferenceApp(model, auth, writer, clock=workspace.clock, on_shutdown=on_shutdown)


def resolve_ref(workspace: Workspace, ref: str) -> str:
    """Pin a reference to ``NAME:VERSION`` so that every worker serves the same version."""
    from manara.registry.service import RegistryService

    return RegistryService(workspace.context()).resolve(ref).ref


def app_from_environment() -> ASGIApp:
    """Application factory for uvicorn worker processes (``--workers`` above 1)."""
    configure_logging(os.environ.get(LOG_LEVEL_ENV, "INFO"), json_lines=True)
    workspace = Workspace.open(load_settings())
    app = build_app(workspace, os.environ[MODEL_ENV], on_shutdown=workspace.close)
    return with_browser_access(app, workspace.settings)


def with_browser_access(app: InferenceApp, settings: Settings) -> ASGIApp:
    """Wrap ``app`` for CORS when ``cors_origins`` is set; otherwise return it unchanged.

    ``InferenceApp`` sets the security headers itself, so the request path
    has no middleware unless CORS is configured.
    """
    if not settings.cors_origins:
        return app
    return secure_app(app, settings.cors_origins)


def uvicorn_options() -> dict[str, Any]:
    """Use uvloop and httptools when they are installed (``uvicorn[standard]``)."""
    options: dict[str, Any] = {}
    if importlib.util.find_spec("uvloop") is not None:
        options["loop"] = "uvloop"
    if importlib.util.find_spec("httptools") is not None:
        options["http"] = "httptools"
    return options


def serve(
    settings: Settings,
    ref: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "INFO",
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
) -> None:
    """Serve ``ref`` until interrupted; the version is resolved once, before listening.

    With ``tls_cert`` and ``tls_key`` the server speaks HTTPS only.
    """
    import uvicorn

    common: dict[str, Any] = {
        **tls_options(tls_cert, tls_key),
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,
        "lifespan": "on",
        "server_header": False,
        **uvicorn_options(),
    }
    workspace = Workspace.open(settings)
    if workers <= 1:
        try:
            app = build_app(workspace, ref, on_shutdown=workspace.close)
        except BaseException:
            workspace.close()
            raise
        uvicorn.run(with_browser_access(app, settings), **common)
        return
    try:
        pinned = resolve_ref(workspace, ref)
    finally:
        workspace.close()
    logger.info("serving %s as %s with %d worker processes", ref, pinned, workers)
    os.environ[MODEL_ENV] = pinned
    os.environ[LOG_LEVEL_ENV] = log_level
    uvicorn.run(
        "manara.serving.server:app_from_environment", factory=True, workers=workers, **common
    )
