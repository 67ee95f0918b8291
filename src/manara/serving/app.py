"""The inference server's ASGI application: Open Inference Protocol v2 over HTTP.

It is a raw ASGI application rather than a framework, because this is the
benchmarked request path. Routes are an exact-path dict built for the one
served model and metadata responses are encoded once. A request does one
dict lookup, one cached credential check and one JSON parse before the
model runs.

Every route except ``GET /v2/health/live`` needs ``Authorization: Bearer``.
Inference needs ``model.invoke`` on the model; readiness and metadata need
``model.read`` or ``model.invoke``. Every error body is ``{"error": "..."}``.
Every response carries the security headers of ``manara.http_security``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from manara import __version__
from manara.api.errors import error_headers, status_for
from manara.clock import Clock, SystemClock
from manara.errors import AuthenticationError, InvalidInputError, ManaraError, NotFoundError
from manara.http_security import response_headers
from manara.serving.auth import ServingAuth
from manara.serving.model import ServedModel
from manara.serving.prediction_log import PredictionLogWriter, PredictionRecord
from manara.serving.protocol import encode_infer_response, new_request_id, parse_infer_request
from manara.serving.records import encode_predictions, parse_records

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SERVER_NAME = "manara"
EXTENSIONS = ("binary_tensor_data",)
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
# Requests with more rows run on a worker thread so that they do not hold
# the event loop. Smaller ones run inline because a thread hop costs more.
INLINE_ROWS = 64

_JSON = b"application/json"
_BINARY = b"application/octet-stream"
_MODEL_PATH = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(?:/(ready|infer|records))?$")
_INVOKE = ("model.invoke",)
_READ = ("model.read", "model.invoke")


@dataclass(slots=True)
class Call:
    """One HTTP request as the handlers see it."""

    method: str
    path: str
    start: float
    authorization: bytes | None = None
    header_length: bytes | None = None
    content_encoding: bytes | None = None
    request_id: str | None = None
    client: str | None = None
    """Address of the peer, for rate-limiting failed authentication."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    content_type: bytes = _JSON
    headers: tuple[tuple[bytes, bytes], ...] = ()


Handler = Callable[[Call, bytes], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    actions: tuple[str, ...] | None
    """Actions of which the principal needs one; ``None`` means any authenticated caller."""
    public: bool = False


def error_reply(status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> Reply:
    return Reply(status, orjson.dumps({"error": message}), _JSON, headers)


class InferenceApp:
    """Serves one model version over the Open Inference Protocol v2 REST API."""

    def __init__(
        self,
        model: ServedModel,
        auth: ServingAuth,
        prediction_log: PredictionLogWriter | None = None,
        clock: Clock | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        on_shutdown: Callable[[], None] | None = None,
    ) -> None:
        self.model = model
        self.auth = auth
        self.prediction_log = prediction_log
        self.ready = False
        self._clock = clock or SystemClock()
        self._max_body_bytes = max_body_bytes
        self._on_shutdown = on_shutdown
        self._server_metadata = orjson.dumps(
            {"name": SERVER_NAME, "version": __version__, "extensions": list(EXTENSIONS)}
        )
        self.routes = self._build_routes()

    def _build_routes(self) -> dict[str, dict[str, Route]]:
        routes: dict[str, dict[str, Route]] = {
            "/v2/health/live": {"GET": Route(self._live, None, public=True)},
            "/v2/health/ready": {"GET": Route(self._server_ready, _READ)},
            "/v2": {"GET": Route(self._server_metadata_reply, _READ)},
        }
        unversioned = f"/v2/models/{self.model.name}"
        versioned = f"{unversioned}/versions/{self.model.version_label}"
        for prefix in (unversioned, versioned):
            routes[prefix] = {"GET": Route(self._model_metadata, _READ)}
            routes[f"{prefix}/ready"] = {"GET": Route(self._model_ready, _READ)}
            routes[f"{prefix}/infer"] = {"POST": Route(self._infer, _INVOKE)}
            routes[f"{prefix}/records"] = {"POST": Route(self._records, _INVOKE)}
        return routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    # Lifespan -----------------------------------------------------------------

    def startup(self) -> None:
        if self.prediction_log is not None:
            self.prediction_log.start()
        self.ready = True
        logger.info(
            "inference server started model=%s version=%s runtime=%s",
            self.model.name,
            self.model.version,
            self.model.runtime,
        )

    def shutdown(self) -> None:
        """Report not ready, then write every queued prediction record."""
        self.ready = False
        if self.prediction_log is not None:
            self.prediction_log.close()
        if self._on_shutdown is not None:
            self._on_shutdown()
        logger.info("inference server stopped model=%s", self.model.name)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.startup()
                except Exception as exc:
                    logger.exception("inference server failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await loop.run_in_executor(None, self.shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return

    # HTTP ---------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = _call_of(scope)
        try:
            reply = await self._dispatch(call, receive)
        except ManaraError as error:
            reply = _reply_for_error(error)
        except Exception:
            call.request_id = call.request_id or new_request_id()
            logger.exception(
                "inference request failed request_id=%s method=%s path=%s",
                call.request_id,
                call.method,
                call.path,
            )
            reply = error_reply(
                500,
                f"Internal server error (request id {call.request_id}). "
                "The server log has the details.",
            )
        headers = [
            (b"content-type", reply.content_type),
            (b"content-length", str(len(reply.body)).encode()),
            *reply.headers,
            *response_headers(scope),
        ]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "request method=%s path=%s status=%d latency_ms=%.3f request_id=%s",
                call.method,
                call.path,
                reply.status,
                (time.perf_counter() - call.start) * 1000.0,
                call.request_id or "-",
            )

    async def _dispatch(self, call: Call, receive: Receive) -> Reply:
        methods = self.routes.get(call.path)
        if methods is None:
            await self.auth.authenticate(call.authorization, call.client)
            return self._not_found(call.path)
        route = methods.get(call.method)
        if route is None:
            allowed = ", ".join(methods).encode()
            return error_reply(
                405,
                f"Method {call.method} is not allowed on {call.path}; use {allowed.decode()}.",
                ((b"allow", allowed),),
            )
        if not route.public:
            await self.auth.check(call.authorization, call.client, route.actions)
        body = await self._read_body(call, receive) if call.method == "POST" else b""
        return await route.handler(call, body)

    def _not_found(self, path: str) -> Reply:
        match = _MODEL_PATH.match(path)
        served = f"this server serves model {self.model.name!r} version {self.model.version}"
        if match is None:
            raise NotFoundError(f"No route {path!r}. See the Open Inference Protocol v2 routes.")
        name, version = match.group(1), match.group(2)
        if name != self.model.name:
            raise NotFoundError(f"Model {name!r} not found; {served}.", model=name)
        raise NotFoundError(f"Version {version!r} of model {name!r} not found; {served}.")

    async def _read_body(self, call: Call, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise InvalidInputError("The client disconnected before sending the whole body.")
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body_bytes:
                raise _TooLarge(self._max_body_bytes)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if call.content_encoding is not None:
            body = _decompress(body, call.content_encoding, self._max_body_bytes)
        return body

    # Handlers -----------------------------------------------------------------

    async def _live(self, call: Call, body: bytes) -> Reply:
        return Reply(200, b'{"live":true}')

    async def _server_ready(self, call: Call, body: bytes) -> Reply:
        if not self.ready:
            return error_reply(503, "The server is not ready: it is starting or shutting down.")
        return Reply(200, b'{"ready":true}')

    async def _server_metadata_reply(self, call: Call, body: bytes) -> Reply:
        return Reply(200, self._server_metadata)

    async def _model_metadata(self, call: Call, body: bytes) -> Reply:
        return Reply(200, self.model.metadata_body)

    async def _model_ready(self, call: Call, body: bytes) -> Reply:
        if not self.ready:
            return error_reply(503, f"Model {self.model.name!r} is not ready.")
        return Reply(200, self.model.ready_body)

    async def _infer(self, call: Call, body: bytes) -> Reply:
        header_length = _header_length(call.header_length)
        request = parse_infer_request(body, self.model.schema, header_length)
        call.request_id = request.id
        outputs = await self._predict(request.inputs, request.rows)
        payload, json_length = encode_infer_response(
            request, self.model.name, self.model.version_label, outputs, self.model.schema
        )
        self._log_prediction(call, request.inputs, outputs)
        if json_length is None:
            return Reply(200, payload)
        return Reply(
            200, payload, _BINARY, ((b"inference-header-content-length", b"%d" % json_length),)
        )

    async def _records(self, call: Call, body: bytes) -> Reply:
        inputs, rows = parse_records(body, self.model.schema)
        call.request_id = new_request_id()
        outputs = await self._predict(inputs, rows)
        payload = encode_predictions(
            call.request_id, self.model.name, self.model.version_label, outputs, rows
        )
        self._log_prediction(call, inputs, outputs)
        return Reply(200, payload)

    async def _predict(self, inputs: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
        if rows <= INLINE_ROWS:
            return self.model.predict(inputs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.model.predict, inputs)

    def _log_prediction(
        self, call: Call, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray]
    ) -> None:
        if self.prediction_log is None:
            return
        latency_ms = (time.perf_counter() - call.start) * 1000.0
        record = PredictionRecord(
            call.request_id or "", self._clock.now(), latency_ms, inputs, outputs
        )
        self.prediction_log.submit(record)


class _TooLarge(InvalidInputError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is larger than the limit of {limit} bytes.")


def _call_of(scope: Scope) -> Call:
    peer = scope.get("client")
    call = Call(scope["method"], scope["path"], time.perf_counter())
    call.client = peer[0] if peer else None
    for name, value in scope["headers"]:
        if name == b"authorization":
            call.authorization = value
        elif name == b"inference-header-content-length":
            call.header_length = value
        elif name == b"content-encoding":
            call.content_encoding = value
    return call


def _header_length(value: bytes | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInputError(
            f"Invalid Inference-Header-Content-Length {value.decode('latin-1')!r}; "
            "send the byte length of the JSON header."
        ) from None


def _decompress(body: bytes, encoding: bytes, limit: int) -> bytes:
    wbits = {b"gzip": 31, b"deflate": 15, b"identity": 0}.get(encoding.strip().lower())
    if wbits is None:
        raise InvalidInputError(
            f"Unsupported Content-Encoding {encoding.decode('latin-1')!r}; use gzip or deflate."
        )
    if wbits == 0:
        return body
    decompressor = zlib.decompressobj(wbits)
    try:
        data = decompressor.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInputError(
            f"The request body is not valid {encoding!r} data: {exc}."
        ) from None
    if len(data) > limit:
        raise _TooLarge(limit)
    return data


def _reply_for_error(error: ManaraError) -> Reply:
    if isinstance(error, _TooLarge):
        return error_reply(413, error.message)
    status = status_for(error)
    if isinstance(error, AuthenticationError):
        return error_reply(status, error.message, error_headers(error))
    if status >= 500:
        logger.error("inference request failed code=%s: %s", error.code, error.message)
    return error_reply(status, error.message)
