"""The inference server end to end: uvicorn on loopback, called with tritonclient and httpx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.serving.conftest import MODEL, NATIVE_MODEL, Served, running, served_app


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def triton_inputs(frame: pd.DataFrame, binary: bool) -> list[triton.InferInput]:
    columns = {
        "amount": frame["amount"].to_numpy(dtype=np.float64),
        "visits": frame["visits"].to_numpy(dtype=np.int64),
        "city": frame["city"].to_numpy(dtype=object),
    }
    inputs = []
    for name, datatype in (("amount", "FP64"), ("visits", "INT64"), ("city", "BYTES")):
        tensor = triton.InferInput(name, [len(frame)], datatype)
        tensor.set_data_from_numpy(columns[name], binary_data=binary)
        inputs.append(tensor)
    return inputs


@pytest.fixture
def client(server_port: int) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(url=f"127.0.0.1:{server_port}")
    yield client
    client.close()


@pytest.fixture
def http(server_port: int) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{server_port}", timeout=10) as client:
        yield client


def test_live_without_token(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()


def test_ready_with_token(client: triton.InferenceServerClient, served: Served) -> None:
    headers = bearer(served.client_key)
    assert client.is_server_ready(headers=headers)
    assert client.is_model_ready(MODEL, headers=headers)
    assert client.is_model_ready(MODEL, "1", headers=headers)
    assert not client.is_model_ready(MODEL, "2", headers=headers)


@pytest.mark.parametrize("binary", [False, True])
def test_predictions_match_model(
    client: triton.InferenceServerClient, served: Served, binary: bool
) -> None:
    frame = served.frame
    outputs = [
        triton.InferRequestedOutput("label", binary_data=binary),
        triton.InferRequestedOutput("probabilities", binary_data=binary),
    ]
    result = client.infer(
        MODEL,
        triton_inputs(frame, binary),
        outputs=outputs,
        request_id="req-42",
        headers=bearer(served.client_key),
    )
    response = result.get_response()
    assert response["model_name"] == MODEL
    assert response["model_version"] == "1"
    assert response["id"] == "req-42"
    np.testing.assert_array_equal(result.as_numpy("label"), served.pipeline.predict(frame))
    np.testing.assert_allclose(
        result.as_numpy("probabilities"), served.pipeline.predict_proba(frame), atol=1e-6
    )


def test_default_outputs_binary(client: triton.InferenceServerClient, served: Served) -> None:
    # Without requested outputs, tritonclient requests every output in binary form.
    frame = served.frame.head(3)
    result = client.infer(MODEL, triton_inputs(frame, True), headers=bearer(served.client_key))
    names = [output["name"] for output in result.get_response()["outputs"]]
    assert names == ["label", "probabilities"]
    assert "binary_data_size" in result.get_output("label")["parameters"]
    np.testing.assert_array_equal(result.as_numpy("label"), served.pipeline.predict(frame))


def test_versioned_infer_and_subset(client: triton.InferenceServerClient, served: Served) -> None:
    frame = served.frame.head(4)
    result = client.infer(
        MODEL,
        triton_inputs(frame, False),
        model_version="1",
        outputs=[triton.InferRequestedOutput("probabilities", binary_data=False)],
        headers=bearer(served.client_key),
    )
    assert [o["name"] for o in result.get_response()["outputs"]] == ["probabilities"]
    assert result.as_numpy("label") is None
    np.testing.assert_allclose(
        result.as_numpy("probabilities"), served.pipeline.predict_proba(frame), atol=1e-6
    )


def test_model_metadata(client: triton.InferenceServerClient, served: Served) -> None:
    metadata = client.get_model_metadata(MODEL, headers=bearer(served.client_key))
    assert metadata["name"] == MODEL
    assert metadata["versions"] == ["1"]
    assert metadata["platform"] == "onnxruntime_onnx"
    assert metadata["inputs"] == [
        {"name": "amount", "datatype": "FP64", "shape": [-1]},
        {"name": "visits", "datatype": "INT64", "shape": [-1]},
        {"name": "city", "datatype": "BYTES", "shape": [-1]},
    ]
    assert [o["name"] for o in metadata["outputs"]] == ["label", "probabilities"]
    assert metadata["outputs"][1]["shape"] == [-1, 2]
    versioned = client.get_model_metadata(MODEL, "1", headers=bearer(served.client_key))
    assert versioned == metadata


def test_server_metadata(client: triton.InferenceServerClient, served: Served) -> None:
    metadata = client.get_server_metadata(headers=bearer(served.client_key))
    assert metadata["name"] == "manara"
    assert "binary_tensor_data" in metadata["extensions"]


def test_every_route_needs_token(server_port: int, http: httpx.Client, served: Served) -> None:
    app = served_app(served)
    checked = 0
    for path, methods in app.routes.items():
        for method, route in methods.items():
            if route.public:
                assert path == "/v2/health/live"
                continue
            for headers in ({}, bearer("mnr_000000000000_wrong"), {"Authorization": "Basic x"}):
                response = http.request(method, path, headers=headers, content=b"{}")
                assert response.status_code == 401, (method, path, response.text)
                assert response.headers["www-authenticate"] == "Bearer"
                assert set(response.json()) == {"error"}
                checked += 1
    assert checked >= 3 * 10


def test_unknown_paths_need_token(http: httpx.Client) -> None:
    response = http.get("/v2/models/other")
    assert response.status_code == 401, response.text


def test_viewer_may_read_not_invoke(
    client: triton.InferenceServerClient, http: httpx.Client, served: Served
) -> None:
    headers = bearer(served.viewer_key)
    assert client.get_model_metadata(MODEL, headers=headers)["name"] == MODEL
    with pytest.raises(InferenceServerException, match="model.invoke"):
        client.infer(MODEL, triton_inputs(served.frame.head(1), False), headers=headers)
    response = http.post(
        f"/v2/models/{MODEL}/records",
        json={"records": [{"amount": 1.0, "visits": 1, "city": "Dubai"}]},
        headers=headers,
    )
    assert response.status_code == 403, response.text
    assert "model.invoke" in response.json()["error"]


def request_body(**replace: dict) -> dict:
    inputs = {
        "amount": {"name": "amount", "datatype": "FP64", "shape": [2], "data": [90.0, 120.5]},
        "visits": {"name": "visits", "datatype": "INT64", "shape": [2], "data": [3, 12]},
        "city": {"name": "city", "datatype": "BYTES", "shape": [2], "data": ["Dubai", "Sharjah"]},
    }
    inputs.update(replace)
    return {"inputs": [tensor for tensor in inputs.values() if tensor]}


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        (request_body(city={}), ["Missing input 'city'", "BYTES"]),
        (
            request_body(city={"name": "city", "datatype": "INT64", "shape": [2], "data": [1, 2]}),
            ["'city'", "INT64", "expected BYTES"],
        ),
        (
            request_body(
                visits={"name": "visits", "datatype": "INT64", "shape": [2, 2], "data": [1] * 4}
            ),
            ["'visits'", "[2, 2]"],
        ),
        (
            request_body(
                amount={"name": "amount", "datatype": "FP64", "shape": [3], "data": [1.0, 2.0]}
            ),
            ["'amount'", "shape [3]"],
        ),
        (
            {**request_body(), "inputs": [*request_body()["inputs"], {"name": "x"}]},
            ["Unexpected input 'x'"],
        ),
    ],
)
def test_bad_request_names_input(
    http: httpx.Client, served: Served, body: dict, fragments: list[str]
) -> None:
    response = http.post(f"/v2/models/{MODEL}/infer", json=body, headers=bearer(served.client_key))
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    for fragment in fragments:
        assert fragment in message, message


def test_bad_request_via_tritonclient(client: triton.InferenceServerClient, served: Served) -> None:
    inputs = triton_inputs(served.frame.head(2), False)[:2]
    with pytest.raises(InferenceServerException, match="Missing input 'city'"):
        client.infer(MODEL, inputs, headers=bearer(served.client_key))


def test_invalid_json_is_400(http: httpx.Client, served: Served) -> None:
    response = http.post(
        f"/v2/models/{MODEL}/infer", content=b"{nope", headers=bearer(served.client_key)
    )
    assert response.status_code == 400, response.text
    assert "Invalid JSON" in response.json()["error"]


def test_records_endpoint(http: httpx.Client, served: Served) -> None:
    frame = served.frame.head(5)
    records = frame.to_dict(orient="records")
    response = http.post(
        f"/v2/models/{MODEL}/records", json={"records": records}, headers=bearer(served.client_key)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == MODEL
    assert body["model_version"] == "1"
    labels = [p["label"] for p in body["predictions"]]
    assert labels == served.pipeline.predict(frame).tolist()
    probabilities = np.array([p["probabilities"] for p in body["predictions"]])
    np.testing.assert_allclose(probabilities, served.pipeline.predict_proba(frame), atol=1e-6)


def test_records_missing_field(http: httpx.Client, served: Served) -> None:
    response = http.post(
        f"/v2/models/{MODEL}/records",
        json={"records": [{"amount": 1.0, "city": "Dubai"}]},
        headers=bearer(served.client_key),
    )
    assert response.status_code == 400, response.text
    assert "'visits'" in response.json()["error"]


def test_unknown_model_404(
    client: triton.InferenceServerClient, http: httpx.Client, served: Served
) -> None:
    headers = bearer(served.client_key)
    with pytest.raises(InferenceServerException, match="Model 'nope' not found"):
        client.get_model_metadata("nope", headers=headers)
    for path in ("/v2/models/nope/infer", f"/v2/models/{MODEL}/versions/7/infer"):
        response = http.post(path, json=request_body(), headers=headers)
        assert response.status_code == 404, (path, response.text)
        assert set(response.json()) == {"error"}
    assert http.get("/v2/nothing", headers=headers).status_code == 404


def test_wrong_method_405(http: httpx.Client, served: Served) -> None:
    response = http.get(f"/v2/models/{MODEL}/infer", headers=bearer(served.client_key))
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"
    assert set(response.json()) == {"error"}


def test_native_model_served(served: Served) -> None:
    app = served_app(served, NATIVE_MODEL)
    assert app.model.runtime == "native"
    frame = served.frame.head(8)
    with running(app) as port:
        client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
        inputs = triton_inputs(frame, True)[:2]
        try:
            result = client.infer(NATIVE_MODEL, inputs, headers=bearer(served.client_key))
            metadata = client.get_model_metadata(NATIVE_MODEL, headers=bearer(served.client_key))
        finally:
            client.close()
    numeric = frame[["amount", "visits"]]
    assert metadata["platform"] == "xgboost"
    np.testing.assert_array_equal(result.as_numpy("label"), served.booster.predict(numeric))  # type: ignore[attr-defined]
    np.testing.assert_allclose(
        result.as_numpy("probabilities"),
        served.booster.predict_proba(numeric),  # type: ignore[attr-defined]
        rtol=1e-6,
    )
