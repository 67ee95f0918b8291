"""The Python SDK entry point: ``manara.Client``.

In local mode (no URL) the client calls the services directly on the
workspace named by the settings, as the local admin principal. With a URL it
calls a control plane over HTTP with an API key. Both modes expose the same
``tracking`` and ``registry`` interfaces.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from manara.config import Settings, load_settings
from manara.errors import InvalidInputError
from manara.security.redaction import mask_url_passwords
from manara.workspace import Workspace

if TYPE_CHECKING:
    from manara.registry.api import RegistryAPI
    from manara.rest import RestTransport
    from manara.tracking.api import TrackingAPI
    from manara.tracking.run_context import ActiveRun


class Client:
    tracking: TrackingAPI
    registry: RegistryAPI

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        settings: Settings | None = None,
        workspace: Workspace | None = None,
    ) -> None:
        self.settings = settings or (workspace.settings if workspace else load_settings())
        url = url if url is not None else self.settings.server_url
        self._workspace: Workspace | None = None
        self._transport: RestTransport | None = None
        self._owns_workspace = False

        if url:
            from manara.registry.rest import RestRegistry
            from manara.rest import RestTransport
            from manara.tracking.rest import RestTracking

            if token is None and self.settings.api_key is not None:
                token = self.settings.api_key.get()
            if not token:
                raise InvalidInputError(
                    f"No API key for the server at {mask_url_passwords(url)}. Set MANARA_API_KEY "
                    "(CLI) or pass "
                    "token=... to manara.Client (SDK)."
                )
            self._transport = RestTransport(url, token)
            self.tracking = RestTracking(self._transport)
            self.registry = RestRegistry(self._transport)
        else:
            from manara.registry.service import RegistryService
            from manara.tracking.service import TrackingService

            if workspace is None:
                workspace = Workspace.open(self.settings)
                self._owns_workspace = True
            self._workspace = workspace
            context = workspace.context()
            self.tracking = TrackingService(context)
            self.registry = RegistryService(context)

    def start_run(
        self,
        experiment: str = "Default",
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> ActiveRun:
        """Start a run (see ``manara.tracking.run_context.start_run``); use it with ``with``."""
        from manara.tracking.run_context import start_run

        return start_run(self, experiment, run_name, tags)

    @property
    def mode(self) -> str:
        return "remote" if self._transport is not None else "local"

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._workspace is not None and self._owns_workspace:
            self._workspace.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
