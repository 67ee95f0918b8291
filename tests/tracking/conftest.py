"""Fixtures of the tracking tests: the SDK in both modes, a workspace on a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from manara.clock import FixedClock
from manara.config import Settings
from manara.tracking.service import TrackingService
from manara.workspace import Workspace
from tests.sdk_modes import client  # noqa: F401


@pytest.fixture
def clocked_workspace(settings: Settings, clock: FixedClock) -> Iterator[Workspace]:
    """A workspace on SQLite and on PostgreSQL whose clock moves only by hand."""
    workspace = Workspace.open(settings, clock=clock)
    try:
        yield workspace
    finally:
        workspace.close()


@pytest.fixture
def tracking(clocked_workspace: Workspace) -> TrackingService:
    """The tracking service as the workspace's admin."""
    return TrackingService(clocked_workspace.context())
