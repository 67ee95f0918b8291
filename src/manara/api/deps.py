"""Request dependencies: authenticate the bearer token, build the call's Context."""

from __future__ import annotations

from fastapi import Request

from manara.context import Context
from manara.security.apikeys import bearer_token
from manara.workspace import Workspace


def workspace_of(request: Request) -> Workspace:
    workspace: Workspace = request.app.state.workspace
    return workspace


def request_context(request: Request) -> Context:
    """Authenticate the caller; every route except liveness depends on this."""
    workspace = workspace_of(request)
    token = bearer_token(request.headers.get("authorization"))
    principal = workspace.authenticator.authenticate(token)
    return workspace.context(principal)
