"""Run the same SDK tests in local and remote mode.

``client_for(mode, workspace)`` yields a ``manara.Client``: in local mode on
the workspace itself, in remote mode on a control plane started from
``manara.api.app.create_app(workspace)`` with uvicorn in a background thread
on a free loopback port, authenticated with a fresh admin API key. A test
module gets the parametrised fixture with::

    from tests.sdk_modes import client  # noqa: F401
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn

from manara.api.app import create_app
from manara.client import Client
from manara.workspace import Workspace

MODES = ("local", "remote")


@contextmanager
def running_server(workspace: Workspace) -> Iterator[str]:
    """Serve the control plane of ``workspace`` on 127.0.0.1; yield its base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        create_app(workspace), log_config=None, log_level="warning", lifespan="on", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test control plane did not start within 15 s")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        listener.close()


@contextmanager
def client_for(mode: str, workspace: Workspace) -> Iterator[Client]:
    if mode == "local":
        with Client(workspace=workspace) as local:
            yield local
        return
    with running_server(workspace) as url:
        token = workspace.issue_key(workspace.local_admin()).token
        with Client(url=url, token=token) as remote:
            yield remote


@pytest.fixture(params=MODES)
def client(request: pytest.FixtureRequest, workspace: Workspace) -> Iterator[Client]:
    """A Client in local mode and in remote mode, on the ``workspace`` fixture."""
    with client_for(request.param, workspace) as sdk:
        yield sdk
