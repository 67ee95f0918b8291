"""Run the inference server on uvicorn in a background thread of this process."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from manara.config import Settings
from manara.errors import UnavailableError
from manara.workspace import Workspace

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_SECONDS = 60.0
SHUTDOWN_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class RunningServer:
    base_url: str
    """``http://127.0.0.1:<port>``, without a trailing slash."""
    port: int
    model_name: str
    model_version: int

    @property
    def infer_url(self) -> str:
        return f"{self.base_url}/v2/models/{self.model_name}/versions/{self.model_version}/infer"


def _bind(port: int) -> socket.socket:
    """Bind a loopback socket. Port 0 lets the operating system choose a free one."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", port))
    except OSError as exc:
        listener.close()
        raise UnavailableError(
            f"Could not listen on 127.0.0.1:{port}: {exc}. Pass another --port, or 0 for any "
            "free port."
        ) from exc
    return listener


@contextmanager
def running_server(settings: Settings, ref: str, port: int = 0) -> Iterator[RunningServer]:
    """Serve ``ref`` with authentication and the prediction log until the block ends.

    The server opens its own workspace, like a separate process would. On
    leaving the block, even by an exception, uvicorn shuts down gracefully,
    which flushes the prediction log before this returns.
    """
    from manara.serving.server import build_app

    listener = _bind(port)
    workspace = Workspace.open(settings)
    try:
        app = build_app(workspace, ref, prediction_log=True, on_shutdown=workspace.close)
    except BaseException:
        workspace.close()
        listener.close()
        raise
    server, thread = _start(app, listener)
    try:
        _wait_started(server, thread)
        bound_port = int(listener.getsockname()[1])
        logger.info("quickstart server started port=%d ref=%s", bound_port, ref)
        yield RunningServer(
            base_url=f"http://127.0.0.1:{bound_port}",
            port=bound_port,
            model_name=app.model.name,
            model_version=app.model.version,
        )
    finally:
        server.should_exit = True
        thread.join(SHUTDOWN_TIMEOUT_SECONDS)
        listener.close()
        if not server.started:
            # The application's shutdown hook, which closes the workspace, never ran.
            workspace.close()
        if thread.is_alive():
            logger.error("quickstart server did not stop within %.0f s", SHUTDOWN_TIMEOUT_SECONDS)
        else:
            logger.info("quickstart server stopped ref=%s", ref)


def _start(app: Any, listener: socket.socket) -> tuple[Any, threading.Thread]:
    """Start a uvicorn server for ``app`` on ``listener`` in a new thread."""
    import uvicorn

    from manara.serving.server import uvicorn_options

    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
        **uvicorn_options(),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="manara-quickstart-server"
    )
    thread.start()
    return server, thread


def _wait_started(server: object, thread: threading.Thread) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not getattr(server, "started", False):
        if not thread.is_alive():
            raise UnavailableError(
                "The inference server stopped during start-up; run with "
                "MANARA_CLI_LOG_LEVEL=INFO to see its log."
            )
        if time.monotonic() > deadline:
            raise UnavailableError(
                f"The inference server did not start within {STARTUP_TIMEOUT_SECONDS:.0f} s."
            )
        time.sleep(0.05)
