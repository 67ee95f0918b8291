"""The quickstart's OIP v2 client against the inference server's own protocol code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from manara.errors import InvalidInputError
from manara.quickstart.evaluation import latency_percentiles, monthly_performance
from manara.quickstart.models import classification_metrics
from manara.quickstart.run import QuickstartOptions
from manara.quickstart.traffic import decode_probabilities, encode_infer_request
from manara.registry.entities import Signature, TensorSpec
from manara.serving.protocol import ModelSchema, encode_infer_response, parse_infer_request

SIGNATURE = Signature(
    inputs=(
        TensorSpec("carrier", "BYTES"),
        TensorSpec("temp", "FP64"),
        TensorSpec("month", "INT64"),
    ),
    outputs=(
        TensorSpec("label", "INT64"),
        TensorSpec("probabilities", "FP64", (-1, 2)),
    ),
)


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "carrier": ["UA", "AA", "unknown", "Zürich-Ω"],
            "temp": [39.02, np.nan, -3.5, 0.0],
            "month": [9, 10, 11, 12],
        }
    )


def test_request_decoded_by_server(frame: pd.DataFrame) -> None:
    body, header_length = encode_infer_request(frame, SIGNATURE, "req-1")
    request = parse_infer_request(body, ModelSchema(SIGNATURE), header_length)

    assert request.id == "req-1"
    assert request.rows == 4
    assert list(request.inputs["carrier"]) == list(frame["carrier"])
    np.testing.assert_array_equal(request.inputs["temp"], frame["temp"].to_numpy())
    np.testing.assert_array_equal(request.inputs["month"], frame["month"].to_numpy())
    assert request.outputs is not None
    assert [output.name for output in request.outputs] == ["probabilities"]
    assert request.outputs[0].binary


def test_response_probabilities(frame: pd.DataFrame) -> None:
    body, header_length = encode_infer_request(frame, SIGNATURE, "req-2")
    schema = ModelSchema(SIGNATURE)
    request = parse_infer_request(body, schema, header_length)
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [0.0, 1.0]])
    outputs = {"label": np.array([0, 1, 1, 1]), "probabilities": probabilities}

    response, response_header = encode_infer_response(request, "m", "1", outputs, schema)
    decoded = decode_probabilities(response, response_header)

    np.testing.assert_array_equal(decoded, probabilities)


def test_missing_column_rejected(frame: pd.DataFrame) -> None:
    with pytest.raises(InvalidInputError, match="temp"):
        encode_infer_request(frame.drop(columns="temp"), SIGNATURE, "req-3")


def test_monthly_performance_matches_sklearn() -> None:
    rng = np.random.default_rng(7)
    months = np.repeat([9, 10], 200)
    outcomes = rng.integers(0, 2, size=400)
    probabilities = rng.random(400)

    table = monthly_performance(months, outcomes, probabilities)

    assert list(table["month"]) == [9, 10]
    assert list(table["rows"]) == [200, 200]
    october = classification_metrics(outcomes[200:], probabilities[200:])
    assert table.loc[1, "roc_auc"] == pytest.approx(october["roc_auc"])
    assert table.loc[1, "mean_probability"] == pytest.approx(probabilities[200:].mean())


def test_monthly_performance_length_mismatch() -> None:
    with pytest.raises(InvalidInputError, match="same length"):
        monthly_performance(np.array([9, 9]), np.array([0]), np.array([0.5, 0.5]))


def test_latency_percentiles_in_ms() -> None:
    latencies = np.linspace(0.001, 0.1, 100)
    result = latency_percentiles(latencies)
    assert result["p50_ms"] == pytest.approx(np.percentile(latencies, 50) * 1000)
    assert result["p99_ms"] == pytest.approx(np.percentile(latencies, 99) * 1000)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"sample": 0.0}, "sample"),
        ({"sample": 1.5}, "sample"),
        ({"port": 70000}, "port"),
        ({"batch_size": 0}, "batch size"),
    ],
)
def test_options_rejected(values: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        QuickstartOptions(**values)  # type: ignore[arg-type]
