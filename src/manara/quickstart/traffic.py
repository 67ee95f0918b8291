"""Replay a frame as Open Inference Protocol v2 requests over HTTP and time each request.

Requests use the protocol's binary tensor data extension: a JSON header of
``Inference-Header-Content-Length`` bytes, then each input's raw
little-endian values (``BYTES`` as a 4-byte little-endian length and the
UTF-8 text). JSON has no NaN, while the binary form carries the missing
numbers that the model imputes.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd

from manara.errors import InvalidInputError, UnavailableError
from manara.registry.entities import Signature

logger = logging.getLogger(__name__)

HEADER_LENGTH = "Inference-Header-Content-Length"
PROBABILITIES_OUTPUT = "probabilities"

_BINARY_DTYPES: dict[str, str] = {
    "BOOL": "?",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP32": "<f4",
    "FP64": "<f8",
}
_LENGTH = struct.Struct("<I")


def _tensor_bytes(column: pd.Series, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts: list[bytes] = []
        for value in column.astype("str").tolist():
            encoded = value.encode("utf-8")
            parts.append(_LENGTH.pack(len(encoded)))
            parts.append(encoded)
        return b"".join(parts)
    if datatype not in _BINARY_DTYPES:
        raise InvalidInputError(
            f"Input {column.name!r} has datatype {datatype}, which this client cannot encode. "
            f"Supported: BYTES, {', '.join(_BINARY_DTYPES)}."
        )
    return column.to_numpy(dtype=_BINARY_DTYPES[datatype]).tobytes()


def encode_infer_request(
    inputs: pd.DataFrame, signature: Signature, request_id: str
) -> tuple[bytes, int]:
    """Build a binary infer request body for ``inputs``, and return it with its JSON header length."""
    tensors: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for spec in signature.inputs:
        if spec.name not in inputs.columns:
            raise InvalidInputError(
                f"Column {spec.name!r} required by the model signature is missing from the frame."
            )
        chunk = _tensor_bytes(inputs[spec.name], spec.datatype)
        chunks.append(chunk)
        tensors.append(
            {
                "name": spec.name,
                "datatype": spec.datatype,
                "shape": [len(inputs)],
                "parameters": {"binary_data_size": len(chunk)},
            }
        )
    header = orjson.dumps(
        {
            "id": request_id,
            "inputs": tensors,
            "outputs": [{"name": PROBABILITIES_OUTPUT, "parameters": {"binary_data": True}}],
        }
    )
    return header + b"".join(chunks), len(header)


def decode_probabilities(body: bytes, header_length: int | None) -> np.ndarray:
    """Read the ``probabilities`` output of an infer response as an ``(n, classes)`` array."""
    header_bytes = body if header_length is None else body[:header_length]
    header = orjson.loads(header_bytes)
    offset = len(header_bytes)
    for output in header.get("outputs", []):
        size = output.get("parameters", {}).get("binary_data_size")
        if output["name"] == PROBABILITIES_OUTPUT:
            if size is None:
                values = np.asarray(output["data"], dtype="float64")
            else:
                values = np.frombuffer(body[offset : offset + size], dtype="<f8")
            return values.reshape(output["shape"])
        offset += size or 0
    raise InvalidInputError(
        f"The infer response has no {PROBABILITIES_OUTPUT!r} output. Serve a classifier, "
        "which has one."
    )


@dataclass(frozen=True)
class ReplayResult:
    probabilities: np.ndarray
    """Probability of the positive class, one per row, in the frame's order."""
    latencies: np.ndarray
    """Client-side seconds per request, from sending the body to reading the response."""
    requests: int
    rows: int


def send_batch(
    client: httpx.Client, url: str, inputs: pd.DataFrame, signature: Signature, request_id: str
) -> tuple[np.ndarray, float]:
    """Send one infer request, and return the positive-class probabilities and the latency."""
    body, header_length = encode_infer_request(inputs, signature, request_id)
    headers = {HEADER_LENGTH: str(header_length), "Content-Type": "application/octet-stream"}
    started = time.perf_counter()
    response = client.post(url, content=body, headers=headers)
    latency = time.perf_counter() - started
    if response.status_code != 200:
        # Server errors may pass on a retry; a rejected request will not.
        error = UnavailableError if response.status_code >= 500 else InvalidInputError
        raise error(
            f"Infer request {request_id} to {url} failed with HTTP {response.status_code}: "
            f"{response.text[:500]}"
        )
    length = response.headers.get(HEADER_LENGTH)
    probabilities = decode_probabilities(response.content, int(length) if length else None)
    # scikit-learn orders classes ascending, so column 1 is the positive class 1.
    return probabilities[:, 1], latency


def replay(
    client: httpx.Client,
    url: str,
    inputs: pd.DataFrame,
    signature: Signature,
    batch_size: int = 500,
    on_batch: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Send ``inputs`` in batches of ``batch_size`` rows, one request at a time."""
    if batch_size < 1:
        raise InvalidInputError(f"Invalid batch size {batch_size}: it must be at least 1.")
    probabilities: list[np.ndarray] = []
    latencies: list[float] = []
    for start in range(0, len(inputs), batch_size):
        batch = inputs.iloc[start : start + batch_size]
        values, latency = send_batch(client, url, batch, signature, f"quickstart-{start}")
        probabilities.append(values)
        latencies.append(latency)
        if on_batch is not None:
            on_batch(len(batch))
    logger.info("replay finished requests=%d rows=%d url=%s", len(latencies), len(inputs), url)
    return ReplayResult(
        probabilities=np.concatenate(probabilities) if probabilities else np.empty(0),
        latencies=np.asarray(latencies, dtype="float64"),
        requests=len(latencies),
        rows=len(inputs),
    )
