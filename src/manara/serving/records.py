"""The JSON records endpoint: one object per row instead of one tensor per column.

Request: ``{"records": [{"<input>": value, ...}, ...]}`` with every signature
input in every record. A ``null`` is accepted for floating inputs and
becomes NaN. Response::

    {"model_name": "...", "model_version": "3", "id": "...",
     "predictions": [{"label": ..., "probabilities": [...]}, ...]}

Each prediction has one key per model output: a scalar for a ``(-1,)``
output and a list for a ``(-1, k)`` output such as class probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from manara.errors import InvalidInputError, SignatureError
from manara.serving.protocol import ModelSchema, decode_json_values, load_json


def parse_records(body: bytes, schema: ModelSchema) -> tuple[dict[str, np.ndarray], int]:
    """Turn a records request into one array per signature input, and the row count."""
    document = load_json(body, "records request")
    records = document.get("records")
    if not isinstance(records, list) or not records:
        raise InvalidInputError(
            "The request needs a non-empty 'records' list of objects, one per row, with the "
            f"fields: {schema.input_list}."
        )
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidInputError(f"Record {index} must be a JSON object; got {record!r}.")
        if len(record) != len(schema.inputs) or not all(k in schema.inputs for k in record):
            _raise_field_error(index, record, schema)

    inputs: dict[str, np.ndarray] = {}
    for name, rule in schema.inputs.items():
        values = [record[name] for record in records]
        if rule.spec.datatype in ("FP16", "FP32", "FP64"):
            values = [np.nan if value is None else value for value in values]
        array = decode_json_values(name, rule.spec.datatype, values)
        inputs[name] = array.astype(rule.target, copy=False)
    return inputs, len(records)


def _raise_field_error(index: int, record: Mapping[str, Any], schema: ModelSchema) -> None:
    for name, rule in schema.inputs.items():
        if name not in record:
            raise SignatureError(
                f"Record {index} has no field {name!r} ({rule.spec.datatype}). Every record "
                f"needs: {schema.input_list}.",
                input=name,
                expected=rule.spec.datatype,
            )
    unexpected = next(key for key in record if key not in schema.inputs)
    raise SignatureError(
        f"Record {index} has an unexpected field {unexpected!r}. Every record needs exactly: "
        f"{schema.input_list}.",
        input=unexpected,
    )


def encode_predictions(
    request_id: str,
    model_name: str,
    model_version: str,
    outputs: Mapping[str, np.ndarray],
    rows: int,
) -> bytes:
    columns = {name: _row_values(array) for name, array in outputs.items()}
    predictions = [{name: column[row] for name, column in columns.items()} for row in range(rows)]
    return orjson.dumps(
        {
            "model_name": model_name,
            "model_version": model_version,
            "id": request_id,
            "predictions": predictions,
        }
    )


def _row_values(array: np.ndarray) -> list[Any]:
    values: list[Any] = array.tolist()
    if array.dtype.kind == "S":
        return [value.decode() for value in values]
    return values
