"""The registry through the SDK, in local mode and over HTTP."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from manara.client import Client
from manara.errors import (
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SignatureError,
)
from manara.workspace import Workspace
from tests.sdk_modes import client_for, running_server


def logged_run(client: Client, model: Any, sample: Any) -> str:
    experiment = client.tracking.create_experiment("sdk-registry")
    run_id = client.tracking.create_run(experiment.id).id
    manifest = client.registry.log_model(run_id, model, sample.head(40))
    assert manifest["flavor"] == "sklearn"
    return run_id


def test_register_and_load(client: Client, logistic: Any) -> None:
    model, frame = logistic
    run_id = logged_run(client, model, frame)
    version = client.registry.create_version("churn", run_id, description="first")
    assert version.ref == "churn:1"
    assert version.onnx_verified is True
    assert client.registry.get_model("churn").latest_version == 1

    loaded = client.registry.load("churn")  # type: ignore[attr-defined]
    assert loaded.runtime == "onnxruntime"
    outputs = loaded.predict_frame(frame)
    np.testing.assert_array_equal(outputs["label"], model.predict(frame))
    np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(frame), atol=1e-5)
    with pytest.raises(SignatureError, match="'plan'"):
        loaded.predict({"amount": np.array([1.0]), "visits": np.array([1])})


def test_predict_accepts_frame(client: Client, logistic: Any) -> None:
    model, frame = logistic
    client.registry.create_version("churn", logged_run(client, model, frame))
    loaded = client.registry.load("churn@latest")  # type: ignore[attr-defined]

    outputs = loaded.predict(frame)
    np.testing.assert_array_equal(outputs["label"], model.predict(frame))
    np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(frame), atol=1e-5)


@pytest.mark.parametrize("inputs", [[1.0, 2.0], np.zeros((3, 3)), "amount"])
def test_predict_rejects_non_mapping(client: Client, logistic: Any, inputs: Any) -> None:
    model, frame = logistic
    client.registry.create_version("churn", logged_run(client, model, frame))
    loaded = client.registry.load("churn@latest")  # type: ignore[attr-defined]

    with pytest.raises(SignatureError, match=type(inputs).__name__) as caught:
        loaded.predict(inputs)
    assert "DataFrame" in str(caught.value)
    assert "amount" in str(caught.value), "the message should list the expected inputs"


def test_aliases_and_errors(client: Client, logistic: Any) -> None:
    model, frame = logistic
    run_id = logged_run(client, model, frame)
    for _ in range(2):
        client.registry.create_version("churn", run_id)

    client.registry.set_alias("churn", "champion", 1)
    assert client.registry.resolve("churn@champion").version == 1
    client.registry.set_alias("churn", "champion", 2)
    assert client.registry.resolve("churn@champion").version == 2
    assert [v.version for v in client.registry.list_versions("churn")] == [1, 2]
    client.registry.delete_alias("churn", "champion")

    with pytest.raises(NotFoundError, match="champion"):
        client.registry.resolve("churn@champion")
    with pytest.raises(NotFoundError, match="'fraud'"):
        client.registry.get_model("fraud")
    with pytest.raises(InvalidInputError, match="reserved"):
        client.registry.set_alias("churn", "latest", 1)


def test_remote_viewer_denied(workspace: Workspace, logistic: Any) -> None:
    model, frame = logistic
    with client_for("local", workspace) as admin:
        run_id = logged_run(admin, model, frame)
    viewer = workspace.create_principal("viewer-remote", {"viewer"})
    token = workspace.issue_key(viewer).token
    with running_server(workspace) as url, Client(url=url, token=token) as remote:
        with pytest.raises(PermissionDeniedError):
            remote.registry.create_version("churn", run_id)
        assert remote.registry.list_models() == []
