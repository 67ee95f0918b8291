"""Request dependencies: authenticate the bearer token, build the call's Context.

``create_app`` attaches ``authenticated_principal`` to every router, and
refuses to build an application with a route that lacks it (see
``manara.api.guard``). ``request_context`` depends on it too; FastAPI runs
a dependency once per request, so the token is checked once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from manara.context import Context
from manara.errors import AuthenticationError, PermissionDeniedError
from manara.security.apikeys import bearer_token
from manara.security.principal import Principal
from manara.workspace import Workspace


def workspace_of(request: Request) -> Workspace:
    workspace: Workspace = request.app.state.workspace
    return workspace


def client_host(request: Request) -> str | None:
    """Return the address of the peer that sent ``request``, or ``None`` when the server does not report it."""
    return request.client.host if request.client is not None else None


def authenticated_principal(request: Request) -> Principal:
    """Authenticate the caller's bearer token and check that it has a role somewhere.

    A missing or invalid credential raises ``AuthenticationError`` (401). A
    principal with no role in any project raises ``PermissionDeniedError``
    (403) before any lookup: every shipped policy grants through roles, so
    such a principal may do nothing. Finer decisions stay with the policy,
    which each service asks before it acts.
    """
    workspace = workspace_of(request)
    try:
        token = bearer_token(request.headers.get("authorization"))
    except AuthenticationError as error:
        reason = str(error.details.get("reason", "malformed_header"))
        workspace.authenticator.report_header_failure(reason, client_host(request))
        raise
    principal = workspace.authenticator.authenticate(token, client=client_host(request))
    if not principal.roles and not any(principal.memberships.values()):
        route = f"{request.method} {request.url.path}"
        workspace.context(principal).record(
            "request", "route", route, decision="deny", reason="no_role"
        )
        raise PermissionDeniedError(
            f"Principal {principal.name!r} has no role in any project, so it may not call "
            f"{route}. Ask a platform admin to grant it a role.",
            reason="no_role",
        )
    return principal


def request_context(
    request: Request, principal: Annotated[Principal, Depends(authenticated_principal)]
) -> Context:
    """Build the Context of an authenticated call; every route except liveness depends on this."""
    return workspace_of(request).context(principal)
