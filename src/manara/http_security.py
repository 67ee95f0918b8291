"""Transport security shared by both servers: response headers, CORS and TLS files.

Every HTTP response of the control plane and the inference server carries
the headers of ``response_headers``. Both servers send only JSON or raw
bytes to programs, never pages, so the Content-Security-Policy forbids
every source and every framing, and no response may be cached.
Strict-Transport-Security is added when the request arrived over TLS
(the ASGI scope's scheme is ``https``), so a plain-HTTP server never
advertises it.

Cross-origin requests from browsers are refused unless the ``cors_origins``
setting names the allowed origins.
"""

from __future__ import annotations

import ssl
import stat
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.middleware.cors import CORSMiddleware

from manara.errors import InvalidInputError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = tuple[tuple[bytes, bytes], ...]

HSTS_MAX_AGE_SECONDS = 31_536_000
"""One year, the value that browsers' HSTS preload lists ask for."""

PLAIN_HEADERS: Headers = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
)
TLS_HEADERS: Headers = (
    *PLAIN_HEADERS,
    (b"strict-transport-security", b"max-age=%d; includeSubDomains" % HSTS_MAX_AGE_SECONDS),
)

# Request headers a browser client may send cross-origin, and response
# headers it may read, when CORS is configured.
CORS_REQUEST_HEADERS = (
    "authorization",
    "content-type",
    "content-encoding",
    "inference-header-content-length",
    "x-request-id",
)
CORS_EXPOSED_HEADERS = ("x-content-sha256", "inference-header-content-length")


def response_headers(scope: Scope) -> Headers:
    """Return the security headers for a response to the request of ``scope``."""
    return TLS_HEADERS if scope.get("scheme") == "https" else PLAIN_HEADERS


class SecurityHeadersMiddleware:
    """Add the security headers to every HTTP response that does not already set them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = response_headers(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in extra if item[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def check_origins(origins: Sequence[str]) -> list[str]:
    """Return ``origins`` if each is ``scheme://host[:port]``; raise ``InvalidInputError``."""
    checked = []
    for origin in origins:
        parts = urlsplit(origin)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or parts.username is not None
        ):
            raise InvalidInputError(
                f"Invalid CORS origin {origin!r} in the cors_origins setting. Give each origin "
                "as scheme://host[:port], for example https://ui.example.com; the wildcard "
                "'*' is not accepted.",
                setting="cors_origins",
            )
        checked.append(origin.rstrip("/"))
    return checked


def cors_options(origins: Sequence[str]) -> dict[str, Any]:
    """Return the options of Starlette's ``CORSMiddleware`` for the allowed ``origins``.

    Credentials travel in the ``Authorization`` header, never in cookies, so
    ``allow_credentials`` stays off.
    """
    return {
        "allow_origins": check_origins(origins),
        "allow_methods": ["GET", "POST", "PUT", "PATCH", "DELETE"],
        "allow_headers": list(CORS_REQUEST_HEADERS),
        "expose_headers": list(CORS_EXPOSED_HEADERS),
        "allow_credentials": False,
        "max_age": 600,
    }


def with_cors(app: ASGIApp, origins: Sequence[str]) -> ASGIApp:
    """Wrap ``app`` in Starlette's CORS middleware when ``origins`` is not empty."""
    if not origins:
        return app
    return CORSMiddleware(app, **cors_options(origins))


def secure_app(app: ASGIApp, origins: Sequence[str]) -> ASGIApp:
    """Wrap ``app`` with CORS (when configured) and the security headers, outermost last."""
    return SecurityHeadersMiddleware(with_cors(app, origins))


def tls_options(cert: Path | None, key: Path | None) -> dict[str, Any]:
    """Check a TLS certificate and key pair and return uvicorn's options for them.

    Both or neither must be given. The key file must not be readable or
    writable by the group or others, as with SSH private keys.
    """
    if cert is None and key is None:
        return {}
    if cert is None or key is None:
        missing = "--tls-cert (MANARA_TLS_CERT)" if cert is None else "--tls-key (MANARA_TLS_KEY)"
        raise InvalidInputError(f"TLS needs a certificate and a key; {missing} is missing.")
    for label, path in (("certificate", cert), ("key", key)):
        if not path.is_file():
            raise InvalidInputError(f"TLS {label} file {path} not found.")
    mode = stat.S_IMODE(key.stat().st_mode)
    if mode & 0o077:
        raise InvalidInputError(
            f"TLS key file {key} is accessible by its group or others (mode {mode:o}). "
            f"Restrict it with: chmod 600 {key}"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # An encrypted key fails here instead of prompting on the terminal.
        context.load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as exc:
        raise InvalidInputError(
            f"TLS certificate {cert} and key {key} could not be loaded together: {exc.reason}. "
            "Check that both are PEM files and that the key belongs to the certificate."
        ) from None
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
