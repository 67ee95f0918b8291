from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from manara.errors import InvalidInputError, SignatureError
from manara.registry.entities import Signature, TensorSpec
from manara.serving.protocol import ModelSchema
from manara.serving.records import encode_predictions, parse_records

SCHEMA = ModelSchema(
    Signature(
        inputs=(TensorSpec("amount", "FP64"), TensorSpec("city", "BYTES")),
        outputs=(TensorSpec("label", "INT64"), TensorSpec("probabilities", "FP64", (-1, 2))),
    )
)


def records(*rows: dict) -> bytes:
    return orjson.dumps({"records": list(rows)})


def test_records_become_columns() -> None:
    inputs, rows = parse_records(
        records({"amount": 1, "city": "Dubai"}, {"amount": 2.5, "city": "Al Ain"}), SCHEMA
    )
    assert rows == 2
    assert inputs["amount"].dtype == np.float64
    assert inputs["amount"].tolist() == [1.0, 2.5]
    assert inputs["city"].tolist() == ["Dubai", "Al Ain"]


def test_null_float_becomes_nan() -> None:
    inputs, _ = parse_records(records({"amount": None, "city": "Dubai"}), SCHEMA)
    assert math.isnan(inputs["amount"][0])


def test_missing_field_named() -> None:
    with pytest.raises(SignatureError, match="Record 1 has no field 'city'"):
        parse_records(records({"amount": 1, "city": "x"}, {"amount": 2}), SCHEMA)


def test_unexpected_field_named() -> None:
    with pytest.raises(SignatureError, match="unexpected field 'colour'"):
        parse_records(records({"amount": 1, "city": "x", "colour": "red"}), SCHEMA)


def test_wrong_value_kind_named() -> None:
    with pytest.raises(SignatureError, match="Input 'city'"):
        parse_records(records({"amount": 1, "city": 7}), SCHEMA)


@pytest.mark.parametrize("raw", [b'{"records": []}', b'{"rows": [{}]}', b'{"records": [1]}'])
def test_malformed_records_rejected(raw: bytes) -> None:
    with pytest.raises(InvalidInputError):
        parse_records(raw, SCHEMA)


def test_predictions_one_object_per_row() -> None:
    outputs = {
        "label": np.array([0, 1]),
        "probabilities": np.array([[0.75, 0.25], [0.125, 0.875]]),
    }
    response = orjson.loads(encode_predictions("r1", "churn", "3", outputs, 2))
    assert response["model_name"] == "churn"
    assert response["model_version"] == "3"
    assert response["id"] == "r1"
    assert response["predictions"] == [
        {"label": 0, "probabilities": [0.75, 0.25]},
        {"label": 1, "probabilities": [0.125, 0.875]},
    ]
