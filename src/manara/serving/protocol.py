"""Open Inference Protocol v2 (REST) requests and responses for one served model.

The protocol is the one KServe, Triton and MLServer implement. An inference
request is a JSON object with named input tensors, each with a datatype,
a shape and its values in row-major order (flat or nested). With the
binary tensor data extension, the body is a JSON header of
``Inference-Header-Content-Length`` bytes followed by the raw tensors. ``BYTES`` tensors are UTF-8
strings in JSON and length-prefixed (4-byte little-endian) in binary form.

Tabular models take one tensor per column, shaped ``[n]`` or ``[n, 1]``.
An input declared with an integer datatype is accepted for a floating
signature input and converted, as the registry's own validation does.
Every other mismatch is rejected with a ``SignatureError`` naming the input.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from manara.errors import InvalidInputError, SignatureError
from manara.registry.entities import Signature, TensorSpec

# Little-endian dtypes, as the binary tensor data extension requires.
NUMPY_DTYPES: Mapping[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
_INTEGER_TYPES = frozenset(
    {"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"}
)
_FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
# NumPy kinds that JSON values may parse to, per declared datatype.
_JSON_KINDS: Mapping[str, str] = {
    **{name: "iu" for name in _INTEGER_TYPES},
    **{name: "fiu" for name in _FLOAT_TYPES},
    "BOOL": "b",
}
# orjson writes these dtypes straight from the array buffer.
_ORJSON_KINDS = frozenset("biuf")
_LENGTH_PREFIX = struct.Struct("<I")


def accepted_datatypes(expected: str) -> frozenset[str]:
    """Return the declared datatypes a signature input of ``expected`` accepts."""
    if expected in _FLOAT_TYPES:
        return _FLOAT_TYPES | _INTEGER_TYPES
    if expected in _INTEGER_TYPES:
        return _INTEGER_TYPES
    return frozenset({expected})


@dataclass(frozen=True)
class InputRule:
    """Checking and conversion rules of one signature input."""

    spec: TensorSpec
    accepted: frozenset[str]
    target: np.dtype[Any]
    tabular: bool
    """True for ``(-1,)`` inputs, which also accept ``[n, 1]`` and are passed 1-D."""


class ModelSchema:
    """A signature prepared for request checking and response encoding."""

    def __init__(self, signature: Signature) -> None:
        self.signature = signature
        self.inputs: dict[str, InputRule] = {}
        for spec in signature.inputs:
            if spec.datatype not in NUMPY_DTYPES:
                raise InvalidInputError(
                    f"Signature input {spec.name!r} has datatype {spec.datatype!r}, which the "
                    "Open Inference Protocol does not define."
                )
            self.inputs[spec.name] = InputRule(
                spec=spec,
                accepted=accepted_datatypes(spec.datatype),
                target=NUMPY_DTYPES[spec.datatype],
                tabular=tuple(spec.shape) == (-1,),
            )
        self.outputs: dict[str, TensorSpec] = {spec.name: spec for spec in signature.outputs}
        self.input_list = ", ".join(self.inputs)


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool


@dataclass
class InferRequest:
    """A checked inference request: arrays ready for ``LoadedModel.predict``."""

    id: str
    inputs: dict[str, np.ndarray]
    rows: int
    outputs: list[RequestedOutput] | None
    """Outputs named by the request, or ``None`` for all of them."""
    binary_output: bool
    """Default for outputs not named: the ``binary_data_output`` request parameter."""


# A counter passed through BLAKE2b keyed with a random per-process key: ids
# neither reveal how many requests a server has handled nor let a client
# predict the next one. One keyed hash costs about a microsecond, where
# os.urandom (behind uuid4) can cost tens of microseconds per call. Two ids
# collide only if 128-bit keyed hashes do, which is as unlikely as for uuid4.
_ID_KEY = os.urandom(32)
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """Return an unpredictable 32-character hex id, unique within and across processes."""
    counter = next(_ID_COUNTER).to_bytes(8, "little")
    return hashlib.blake2b(counter, key=_ID_KEY, digest_size=16).hexdigest()


def load_json(body: bytes | memoryview, description: str) -> dict[str, Any]:
    """Parse a JSON object, or raise ``InvalidInputError`` naming the ``description``."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"Invalid JSON in the {description}: {exc}.") from None
    if not isinstance(document, dict):
        raise InvalidInputError(
            f"The {description} must be a JSON object; got {type(document).__name__}."
        )
    return document


def parse_infer_request(
    body: bytes, schema: ModelSchema, header_length: int | None = None
) -> InferRequest:
    """Check an inference request against the schema and decode its tensors.

    ``header_length`` is the ``Inference-Header-Content-Length`` header: the
    size of the JSON part when binary tensor data follows it.
    """
    if header_length is None:
        document = load_json(body, "inference request")
        binary = memoryview(b"")
    else:
        if not 0 <= header_length <= len(body):
            raise InvalidInputError(
                f"Inference-Header-Content-Length is {header_length} but the body has "
                f"{len(body)} bytes; send the length of the JSON header."
            )
        view = memoryview(body)
        document = load_json(view[:header_length], "inference request header")
        binary = view[header_length:]

    inputs, rows = _decode_inputs(document.get("inputs"), schema, binary)
    parameters = _parameters(document.get("parameters"), "request")
    return InferRequest(
        id=_request_id(document.get("id")),
        inputs=inputs,
        rows=rows,
        outputs=_requested_outputs(document.get("outputs"), schema),
        binary_output=parameters.get("binary_data_output") is True,
    )


def _request_id(value: Any) -> str:
    if value is None or value == "":
        return new_request_id()
    if not isinstance(value, str):
        raise InvalidInputError(f"The request 'id' must be a string; got {value!r}.")
    return value


def _parameters(value: Any, owner: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError(f"The {owner} 'parameters' must be a JSON object; got {value!r}.")
    return value


def _decode_inputs(
    items: Any, schema: ModelSchema, binary: memoryview
) -> tuple[dict[str, np.ndarray], int]:
    if not isinstance(items, list) or not items:
        raise InvalidInputError(
            f"The request needs a non-empty 'inputs' list; the model expects: {schema.input_list}."
        )
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    rows = -1
    first = ""
    for item in items:
        if not isinstance(item, dict):
            raise InvalidInputError(f"Each entry of 'inputs' must be a JSON object; got {item!r}.")
        name = item.get("name")
        rule = schema.inputs.get(name) if isinstance(name, str) else None
        if rule is None:
            raise SignatureError(
                f"Unexpected input {name!r}. The model expects: {schema.input_list}.",
                input=name,
            )
        if name in arrays:
            raise SignatureError(f"Input {name!r} appears more than once.", input=name)
        array, offset = _decode_tensor(item, rule, binary, offset)
        if rows == -1:
            rows, first = len(array), rule.spec.name
        elif len(array) != rows:
            raise SignatureError(
                f"Input {name!r} has {len(array)} rows but input {first!r} has {rows}. "
                "Send the same number of rows for every input.",
                input=name,
            )
        arrays[rule.spec.name] = array
    if len(arrays) != len(schema.inputs):
        missing = next(name for name in schema.inputs if name not in arrays)
        expected = schema.inputs[missing].spec.datatype
        raise SignatureError(
            f"Missing input {missing!r} ({expected}). The model expects: {schema.input_list}.",
            input=missing,
            expected=expected,
        )
    if offset != len(binary):
        raise InvalidInputError(
            f"The request has {len(binary) - offset} bytes of binary data that no input "
            "claims; check each input's 'binary_data_size'."
        )
    return arrays, rows


def _decode_tensor(
    item: dict[str, Any], rule: InputRule, binary: memoryview, offset: int
) -> tuple[np.ndarray, int]:
    name = rule.spec.name
    datatype = item.get("datatype")
    if datatype not in rule.accepted:
        raise SignatureError(
            f"Input {name!r} has datatype {datatype!r}; expected {rule.spec.datatype}.",
            input=name,
            expected=rule.spec.datatype,
            got=datatype,
        )
    shape = _checked_shape(item.get("shape"), rule)
    count = math.prod(shape)
    size = _parameters(item.get("parameters"), f"input {name!r}").get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise InvalidInputError(
                f"Input {name!r} has binary_data_size {size!r} but only "
                f"{len(binary) - offset} bytes of binary data remain."
            )
        flat = decode_binary(name, datatype, binary[offset : offset + size], count)
        offset += size
    elif "data" in item:
        flat = decode_json_values(name, datatype, _flatten(item["data"]))
    else:
        raise InvalidInputError(
            f"Input {name!r} has neither 'data' nor a 'binary_data_size' parameter."
        )
    if len(flat) != count:
        raise SignatureError(
            f"Input {name!r} has shape {shape} but {len(flat)} values; the shape needs {count}.",
            input=name,
        )
    if flat.dtype != rule.target:
        flat = flat.astype(rule.target)
    if rule.tabular:
        return flat, offset
    return flat.reshape(shape), offset


def _checked_shape(shape: Any, rule: InputRule) -> list[int]:
    name = rule.spec.name
    if not isinstance(shape, list) or not all(
        isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0 for dim in shape
    ):
        raise SignatureError(
            f"Input {name!r} needs a 'shape' list of non-negative integers; got {shape!r}.",
            input=name,
        )
    expected = list(rule.spec.shape)
    if rule.tabular:
        fits = len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)
        expected_text = "[n] or [n, 1]"
    else:
        fits = len(shape) == len(expected) and all(
            dim in (-1, got) for dim, got in zip(expected, shape, strict=True)
        )
        expected_text = str(expected)
    if not fits:
        raise SignatureError(
            f"Input {name!r} has shape {shape}; expected {expected_text}.",
            input=name,
            expected=expected,
            got=shape,
        )
    return shape


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not data or not isinstance(data[0], list):
        return data
    flat: list[Any] = []
    for element in data:
        flat.extend(_flatten(element))
    return flat


def decode_json_values(name: str, datatype: str, values: Sequence[Any]) -> np.ndarray:
    """Convert JSON values to a 1-D array of ``datatype``, rejecting values of another kind."""
    if datatype == "BYTES":
        for value in values:
            if type(value) is not str:
                raise SignatureError(
                    f"Input {name!r} is BYTES but contains {value!r}; send UTF-8 strings.",
                    input=name,
                    expected="BYTES",
                )
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array
    parsed = np.asarray(values)
    kinds = _JSON_KINDS[datatype]
    if parsed.size and parsed.dtype.kind not in kinds:
        bad = next((v for v in values if np.asarray(v).dtype.kind not in kinds), values[0])
        raise SignatureError(
            f"Input {name!r} is {datatype} but contains {bad!r}; send values of that type.",
            input=name,
            expected=datatype,
        )
    try:
        return parsed.astype(NUMPY_DTYPES[datatype], copy=False)
    except OverflowError as exc:
        raise SignatureError(
            f"Input {name!r} has a value out of range for {datatype}.", input=name
        ) from exc


def decode_binary(name: str, datatype: str, chunk: memoryview, count: int) -> np.ndarray:
    """Decode one input's raw bytes from the binary tensor data extension."""
    if datatype != "BYTES":
        dtype = NUMPY_DTYPES[datatype]
        if len(chunk) != count * dtype.itemsize:
            raise SignatureError(
                f"Input {name!r} has {len(chunk)} bytes of binary data; its shape and "
                f"datatype {datatype} need {count * dtype.itemsize}.",
                input=name,
            )
        return np.frombuffer(chunk, dtype=dtype)
    values: list[str] = []
    position = 0
    try:
        while position < len(chunk):
            (length,) = _LENGTH_PREFIX.unpack_from(chunk, position)
            position += 4
            if position + length > len(chunk):
                raise ValueError("string length past the end of the data")
            values.append(str(chunk[position : position + length], "utf-8"))
            position += length
    except (struct.error, ValueError) as exc:
        raise SignatureError(
            f"Input {name!r} has invalid BYTES binary data ({exc}); each element must be a "
            "4-byte little-endian length followed by UTF-8 bytes.",
            input=name,
        ) from None
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _requested_outputs(items: Any, schema: ModelSchema) -> list[RequestedOutput] | None:
    if items is None:
        return None
    if not isinstance(items, list):
        raise InvalidInputError(f"The request 'outputs' must be a list; got {items!r}.")
    requested: list[RequestedOutput] = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        if name not in schema.outputs:
            raise InvalidInputError(
                f"Unknown output {name!r}. The model has outputs: {', '.join(schema.outputs)}."
            )
        parameters = _parameters(item.get("parameters"), f"output {name!r}")
        requested.append(RequestedOutput(name, parameters.get("binary_data") is True))
    return requested


def output_datatype(array: np.ndarray, spec: TensorSpec | None) -> str:
    if spec is not None:
        return spec.datatype
    kind = array.dtype.kind
    if kind in "OUS":
        return "BYTES"
    for datatype, dtype in NUMPY_DTYPES.items():
        if dtype == array.dtype.newbyteorder("<"):
            return datatype
    return "FP64"


def json_values(array: np.ndarray, datatype: str) -> Any:
    """Return a flat value orjson can write: the array itself when its dtype allows."""
    flat = array.reshape(-1)
    if datatype == "BYTES":
        return [value.decode() if isinstance(value, bytes) else str(value) for value in flat]
    if flat.dtype.kind in _ORJSON_KINDS and flat.dtype.itemsize > 2 or flat.dtype.kind == "b":
        return np.ascontiguousarray(flat)
    return flat.tolist()


def binary_values(array: np.ndarray, datatype: str) -> bytes:
    """Serialise an output tensor for the binary tensor data extension."""
    flat = array.reshape(-1)
    if datatype == "BYTES":
        parts: list[bytes] = []
        for value in flat:
            encoded = value if isinstance(value, bytes) else str(value).encode()
            parts.append(_LENGTH_PREFIX.pack(len(encoded)))
            parts.append(encoded)
        return b"".join(parts)
    return flat.astype(NUMPY_DTYPES[datatype], copy=False).tobytes()


def encode_infer_response(
    request: InferRequest,
    model_name: str,
    model_version: str,
    outputs: Mapping[str, np.ndarray],
    schema: ModelSchema,
) -> tuple[bytes, int | None]:
    """Build the response body, and the JSON header length when binary data follows."""
    if request.outputs is None:
        selected: Iterable[RequestedOutput] = (
            RequestedOutput(name, request.binary_output) for name in outputs
        )
    else:
        selected = request.outputs
    tensors: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for requested in selected:
        array = outputs[requested.name]
        datatype = output_datatype(array, schema.outputs.get(requested.name))
        tensor: dict[str, Any] = {
            "name": requested.name,
            "datatype": datatype,
            "shape": list(array.shape),
        }
        if requested.binary:
            raw = binary_values(array, datatype)
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            tensor["data"] = json_values(array, datatype)
        tensors.append(tensor)
    header = orjson.dumps(
        {
            "model_name": model_name,
            "model_version": model_version,
            "id": request.id,
            "outputs": tensors,
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    if not chunks:
        return header, None
    return header + b"".join(chunks), len(header)
