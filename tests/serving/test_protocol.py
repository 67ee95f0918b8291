from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tritonclient.http import InferResult
from tritonclient.utils import serialize_byte_tensor

from manara.errors import InvalidInputError, SignatureError
from manara.registry.entities import Signature, TensorSpec
from manara.serving.protocol import (
    InferRequest,
    ModelSchema,
    RequestedOutput,
    encode_infer_response,
    new_request_id,
    parse_infer_request,
)

SIGNATURE = Signature(
    inputs=(
        TensorSpec("amount", "FP64", (-1,)),
        TensorSpec("count", "INT64", (-1,)),
        TensorSpec("city", "BYTES", (-1,)),
    ),
    outputs=(
        TensorSpec("label", "BYTES", (-1,)),
        TensorSpec("probabilities", "FP64", (-1, 2)),
    ),
)
SCHEMA = ModelSchema(SIGNATURE)


def tensor(name: str, datatype: str, data: list[Any], shape: list[int] | None = None) -> dict:
    return {
        "name": name,
        "datatype": datatype,
        "shape": [len(data)] if shape is None else shape,
        "data": data,
    }


def body(*tensors: dict, **extra: Any) -> bytes:
    return orjson.dumps({"inputs": list(tensors), **extra})


def valid_tensors() -> list[dict]:
    return [
        tensor("amount", "FP64", [1.5, 2.5]),
        tensor("count", "INT64", [3, 4]),
        tensor("city", "BYTES", ["Dubai", "Abu Dhabi"]),
    ]


def test_json_request_decoded() -> None:
    request = parse_infer_request(body(*valid_tensors(), id="r1"), SCHEMA)
    assert request.id == "r1"
    assert request.rows == 2
    np.testing.assert_array_equal(request.inputs["amount"], [1.5, 2.5])
    assert request.inputs["amount"].dtype == np.float64
    assert request.inputs["count"].dtype == np.int64
    assert request.inputs["city"].dtype == object
    assert request.inputs["city"].tolist() == ["Dubai", "Abu Dhabi"]
    assert request.outputs is None


def test_request_id_generated() -> None:
    first = parse_infer_request(body(*valid_tensors()), SCHEMA)
    second = parse_infer_request(body(*valid_tensors()), SCHEMA)
    assert len(first.id) == 32
    assert first.id != second.id


def test_request_ids_unique() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(value) == 32 for value in ids)
    assert all(int(value, 16) >= 0 for value in ids)


def test_request_ids_unpredictable() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    # A counter shows up as a shared head or tail, or as a difference of one.
    # Eight equal hex digits happen by chance with probability 2**-32 per pair.
    for before, after in itertools.pairwise(ids):
        assert before[:8] != after[:8], (before, after)
        assert before[-8:] != after[-8:], (before, after)
        assert abs(int(after, 16) - int(before, 16)) > 1, (before, after)


def test_nested_column_shape_accepted() -> None:
    tensors = valid_tensors()
    tensors[0] = tensor("amount", "FP64", [[1.5], [2.5]], [2, 1])
    request = parse_infer_request(body(*tensors), SCHEMA)
    assert request.inputs["amount"].shape == (2,)


def test_integers_accepted_for_float_input() -> None:
    tensors = valid_tensors()
    tensors[0] = tensor("amount", "INT64", [1, 2])
    request = parse_infer_request(body(*tensors), SCHEMA)
    assert request.inputs["amount"].dtype == np.float64


def test_missing_input_named() -> None:
    tensors = valid_tensors()[:2]
    with pytest.raises(SignatureError, match="Missing input 'city'") as info:
        parse_infer_request(body(*tensors), SCHEMA)
    assert info.value.details["input"] == "city"


def test_unexpected_input_named() -> None:
    tensors = [*valid_tensors(), tensor("colour", "BYTES", ["red", "blue"])]
    with pytest.raises(SignatureError, match="Unexpected input 'colour'"):
        parse_infer_request(body(*tensors), SCHEMA)


def test_duplicate_input_rejected() -> None:
    tensors = [*valid_tensors(), tensor("count", "INT64", [1, 2])]
    with pytest.raises(SignatureError, match="'count' appears more than once"):
        parse_infer_request(body(*tensors), SCHEMA)


def test_wrong_datatype_named() -> None:
    tensors = valid_tensors()
    tensors[2] = tensor("city", "INT64", [1, 2])
    with pytest.raises(SignatureError) as info:
        parse_infer_request(body(*tensors), SCHEMA)
    message = str(info.value)
    assert "'city'" in message
    assert "INT64" in message, "the message names the datatype sent"
    assert "expected BYTES" in message


@pytest.mark.parametrize(
    ("name", "datatype", "data"),
    [
        ("amount", "FP64", ["1.5", "2.5"]),
        ("count", "INT64", [1.5, 2.0]),
        ("count", "INT64", [True, False]),
        ("city", "BYTES", [1, 2]),
        ("amount", "FP64", [None, 1.0]),
    ],
)
def test_values_of_other_kind_rejected(name: str, datatype: str, data: list[Any]) -> None:
    tensors = [t for t in valid_tensors() if t["name"] != name]
    tensors.append(tensor(name, datatype, data))
    with pytest.raises(SignatureError, match=f"Input '{name}'"):
        parse_infer_request(body(*tensors), SCHEMA)


@pytest.mark.parametrize("shape", [[2, 2], [1, 2], [2, 1, 1], [], [-1]])
def test_wrong_shape_named(shape: list[int]) -> None:
    tensors = valid_tensors()
    tensors[1] = tensor("count", "INT64", [3, 4], shape)
    with pytest.raises(SignatureError, match="Input 'count'"):
        parse_infer_request(body(*tensors), SCHEMA)


def test_data_length_mismatch_named() -> None:
    tensors = valid_tensors()
    tensors[1] = tensor("count", "INT64", [3, 4, 5], [2])
    with pytest.raises(SignatureError, match="Input 'count' has shape \\[2\\] but 3 values"):
        parse_infer_request(body(*tensors), SCHEMA)


def test_row_counts_must_agree() -> None:
    tensors = valid_tensors()
    tensors[1] = tensor("count", "INT64", [3])
    with pytest.raises(SignatureError, match="Input 'count' has 1 rows but input 'amount' has 2"):
        parse_infer_request(body(*tensors), SCHEMA)


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1, 2]", b'{"inputs": []}', b'{"inputs": "x"}', b'{"inputs": [1]}'],
)
def test_malformed_request_rejected(raw: bytes) -> None:
    with pytest.raises(InvalidInputError):
        parse_infer_request(raw, SCHEMA)


def test_unknown_output_rejected() -> None:
    raw = body(*valid_tensors(), outputs=[{"name": "score"}])
    with pytest.raises(InvalidInputError, match="Unknown output 'score'"):
        parse_infer_request(raw, SCHEMA)


def binary_request(amount: np.ndarray, count: np.ndarray, city: np.ndarray) -> tuple[bytes, int]:
    raws = [amount.tobytes(), count.tobytes(), serialize_byte_tensor(city).item()]
    header = {
        "inputs": [
            {
                "name": name,
                "datatype": datatype,
                "shape": [len(array)],
                "parameters": {"binary_data_size": len(raw)},
            }
            for (name, datatype), array, raw in zip(
                [("amount", "FP64"), ("count", "INT64"), ("city", "BYTES")],
                [amount, count, city],
                raws,
                strict=True,
            )
        ]
    }
    json_part = orjson.dumps(header)
    return json_part + b"".join(raws), len(json_part)


def test_binary_request_decoded() -> None:
    city = np.array(["Dubai", "العين"], dtype=object)
    raw, length = binary_request(np.array([1.5, 2.5]), np.array([3, 4]), city)
    request = parse_infer_request(raw, SCHEMA, header_length=length)
    np.testing.assert_array_equal(request.inputs["amount"], [1.5, 2.5])
    np.testing.assert_array_equal(request.inputs["count"], [3, 4])
    assert request.inputs["city"].tolist() == ["Dubai", "العين"]


def test_binary_size_mismatch_rejected() -> None:
    raw, length = binary_request(
        np.array([1.5, 2.5]), np.array([3, 4]), np.array(["a", "b"], dtype=object)
    )
    with pytest.raises(InvalidInputError, match="binary data that no input claims"):
        parse_infer_request(raw + b"\x00", SCHEMA, header_length=length)
    with pytest.raises(InvalidInputError, match="Inference-Header-Content-Length"):
        parse_infer_request(raw, SCHEMA, header_length=len(raw) + 1)


def outputs_of(rows: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    probabilities = rng.random((rows, 2))
    labels = np.array(["no", "yes"], dtype=object)[probabilities.argmax(axis=1)]
    return {"label": labels, "probabilities": probabilities}


@pytest.mark.parametrize("binary", [False, True])
def test_response_read_by_tritonclient(binary: bool) -> None:
    outputs = outputs_of(3)
    request = InferRequest("r9", {}, 3, None, binary_output=binary)
    payload, length = encode_infer_response(request, "churn", "2", outputs, SCHEMA)
    assert (length is not None) is binary
    result = InferResult.from_response_body(payload, header_length=length)
    response = result.get_response()
    assert response["model_name"] == "churn"
    assert response["model_version"] == "2"
    assert response["id"] == "r9"
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")]
    assert labels == outputs["label"].tolist()
    np.testing.assert_allclose(result.as_numpy("probabilities"), outputs["probabilities"])


def test_requested_output_subset() -> None:
    request = InferRequest("r1", {}, 3, [RequestedOutput("probabilities", False)], False)
    payload, length = encode_infer_response(request, "churn", "2", outputs_of(3), SCHEMA)
    response = orjson.loads(payload)
    assert length is None
    assert [output["name"] for output in response["outputs"]] == ["probabilities"]
    assert response["outputs"][0]["shape"] == [3, 2]
    assert response["outputs"][0]["datatype"] == "FP64"
    assert len(response["outputs"][0]["data"]) == 6


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
text = st.text(max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=8).flatmap(
        lambda n: st.tuples(
            st.lists(finite, min_size=n, max_size=n),
            st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n),
            st.lists(text, min_size=n, max_size=n),
        )
    )
)
def test_json_and_binary_forms_agree(columns: tuple[list[float], list[int], list[str]]) -> None:
    amount, count, city = columns
    from_json = parse_infer_request(
        body(
            tensor("amount", "FP64", amount),
            tensor("count", "INT64", count),
            tensor("city", "BYTES", city),
        ),
        SCHEMA,
    )
    raw, length = binary_request(
        np.array(amount, dtype=np.float64),
        np.array(count, dtype=np.int64),
        np.array(city, dtype=object),
    )
    from_binary = parse_infer_request(raw, SCHEMA, header_length=length)
    for name in ("amount", "count", "city"):
        assert from_json.inputs[name].tolist() == from_binary.inputs[name].tolist(), name
    assert from_json.inputs["amount"].tolist() == amount
    assert from_json.inputs["count"].tolist() == count
    assert from_json.inputs["city"].tolist() == city
