"""HTTP status of each error code; the only place statuses are decided."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from manara import errors
from manara.http_security import response_headers
from manara.ids import new_id

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[errors.ManaraError], int] = {
    errors.SignatureError: 400,
    errors.UnsafeArtifactError: 400,
    errors.InvalidInputError: 400,
    errors.RateLimitedError: 429,
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


def error_headers(error: errors.ManaraError) -> tuple[tuple[bytes, bytes], ...]:
    """Return the extra headers of an error response, shared by both HTTP servers."""
    if isinstance(error, errors.RateLimitedError):
        seconds = int(error.details.get("retry_after_seconds", 1))
        return ((b"retry-after", str(max(1, seconds)).encode()),)
    if isinstance(error, errors.AuthenticationError):
        return ((b"www-authenticate", b"Bearer"),)
    return ()


def error_body(error: errors.ManaraError) -> dict[str, object]:
    return {"error": error.to_dict()}


async def handle_manara_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, errors.ManaraError):
        raise exc
    headers = {name.decode(): value.decode() for name, value in error_headers(exc)}
    # FastAPI deprecated ORJSONResponse; orjson still renders the body.
    return Response(
        orjson.dumps(error_body(exc)),
        status_code=status_for(exc),
        headers=headers,
        media_type="application/json",
    )


def _field_name(location: Sequence[object]) -> str:
    """Render a pydantic error location such as ``("body", "metrics", 0, "value")``."""
    return ".".join(str(part) for part in location) or "request"


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    """Return a request that failed FastAPI's validation as ``invalid_input`` (422).

    The details list each failing field with pydantic's message and error
    type. The rejected input values are left out, because they may hold
    secrets or personal data.
    """
    if not isinstance(exc, RequestValidationError):
        raise exc
    problems = [
        {
            "field": _field_name(error.get("loc", ())),
            "message": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    first = problems[0] if problems else {"field": "request", "message": "invalid"}
    more = f" ({len(problems) - 1} more problems in details)" if len(problems) > 1 else ""
    body = {
        "error": {
            "code": errors.InvalidInputError.code,
            "message": f"Invalid {first['field']}: {first['message']}{more}.",
            "details": {"errors": problems},
        }
    }
    return Response(orjson.dumps(body), status_code=422, media_type="application/json")


_HTTP_CODES: dict[int, str] = {404: "not_found", 405: "method_not_allowed"}


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Return Starlette's own errors (unknown route, wrong method) in the error shape."""
    if not isinstance(exc, StarletteHTTPException):
        raise exc
    if exc.status_code == 404:
        message = f"No route {request.url.path!r}. The routes are listed in /openapi.json."
    else:
        message = f"{request.method} {request.url.path!r} failed: {exc.detail}."
    body = {
        "error": {
            "code": _HTTP_CODES.get(exc.status_code, "http_error"),
            "message": message,
            "details": {},
        }
    }
    return Response(
        orjson.dumps(body),
        status_code=exc.status_code,
        headers=exc.headers,
        media_type="application/json",
    )


async def handle_unexpected_error(request: Request, exc: Exception) -> Response:
    """Return a 500 in the error shape; Starlette logs the traceback after this returns.

    The response bypasses every added middleware, so it carries the
    security headers itself.
    """
    request_id = new_id()
    logger.error(
        "request failed request_id=%s method=%s path=%s error=%s",
        request_id,
        request.method,
        request.url.path,
        type(exc).__name__,
    )
    body = {
        "error": {
            "code": "internal",
            "message": f"Internal server error (request id {request_id}). "
            "The server log has the details.",
            "details": {"request_id": request_id},
        }
    }
    return Response(
        orjson.dumps(body),
        status_code=500,
        headers={name.decode(): value.decode() for name, value in response_headers(request.scope)},
        media_type="application/json",
    )


ERROR_BODY_SCHEMA: dict[str, object] = {
    "title": "ErrorBody",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}
"""OpenAPI schema of every error response body."""
