"""HTTP status of each error code; the only place statuses are decided."""

from __future__ import annotations

import orjson
from fastapi import Request
from fastapi.responses import Response

from manara import errors

STATUS_BY_ERROR: dict[type[errors.ManaraError], int] = {
    errors.SignatureError: 400,
    errors.UnsafeArtifactError: 400,
    errors.InvalidInputError: 400,
    errors.AuthenticationError: 401,
    errors.PermissionDeniedError: 403,
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
    errors.IntegrityError: 422,
    errors.UnavailableError: 503,
}


def status_for(error: errors.ManaraError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def error_body(error: errors.ManaraError) -> dict[str, object]:
    return {"error": error.to_dict()}


async def handle_manara_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, errors.ManaraError):
        raise exc
    headers = (
        {"WWW-Authenticate": "Bearer"} if isinstance(exc, errors.AuthenticationError) else None
    )
    # FastAPI deprecated ORJSONResponse; orjson still renders the body.
    return Response(
        orjson.dumps(error_body(exc)),
        status_code=status_for(exc),
        headers=headers,
        media_type="application/json",
    )
