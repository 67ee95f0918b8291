"""The registry service on the workspace's stores, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from manara.errors import (
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SignatureError,
    UnsafeArtifactError,
)
from manara.registry.service import RegistryService
from manara.security.envelope import ArtifactContext
from manara.tracking.service import TrackingService
from manara.workspace import Workspace


def test_onnx_version_loads(registry: RegistryService, register: Any, logistic: Any) -> None:
    model, frame = logistic
    version = register("churn", model, frame)
    assert version.version == 1
    assert version.onnx_verified is True, version.metadata
    assert set(version.artifacts) == {"manifest", "model", "onnx"}
    loaded = registry.load("churn:1")
    assert loaded.runtime == "onnxruntime"
    outputs = loaded.predict_frame(frame)
    np.testing.assert_array_equal(outputs["label"], model.predict(frame))
    np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(frame), atol=1e-5)


def test_native_version_loads(registry: RegistryService, register: Any, unexported: Any) -> None:
    model, frame = unexported
    version = register("churn", model, frame)
    loaded = registry.load(version.ref)
    assert version.onnx_verified is False
    assert loaded.runtime == "native"
    assert version.metadata["onnx_reason"]
    outputs = loaded.predict_frame(frame)
    np.testing.assert_array_equal(outputs["label"], model.predict(frame))
    np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(frame), atol=1e-5)


def test_register_skops_file(registry: RegistryService, logistic: Any, tmp_path: Path) -> None:
    import skops.io

    model, frame = logistic
    path = tmp_path / "model.skops"
    skops.io.dump(model, path)
    version = registry.register_file("churn", path, sample_input=frame.head(20))
    assert version.run_id is None
    outputs = registry.load(version.ref).predict_frame(frame)
    np.testing.assert_array_equal(outputs["label"], model.predict(frame))


def test_tampered_artifact_refused(
    registry: RegistryService, register: Any, logistic: Any, workspace: Workspace
) -> None:
    model, frame = logistic
    version = register("churn", model, frame)
    digest = version.artifacts["onnx"]
    placed = version.metadata["integrity"]["artifacts"]["onnx"]["context"]
    blob = workspace.artifacts.locate(digest, ArtifactContext(**placed)).blob_digest
    stored = Path(workspace.settings.artifact_root) / "sha256" / blob[:2] / blob
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as caught:
        registry.load("churn:1")
    assert digest in caught.value.message


def test_signature_enforced(registry: RegistryService, register: Any, logistic: Any) -> None:
    model, frame = logistic
    register("churn", model, frame)
    loaded = registry.load("churn")
    inputs = {
        "amount": np.array([10.0, 20.0]),
        "visits": np.array([1, 2]),
        "plan": np.array(["basic", "pro"], dtype=object),
    }
    assert loaded.predict(inputs)["probabilities"].shape == (2, 2)

    with pytest.raises(SignatureError, match="'visits'"):
        loaded.predict({k: v for k, v in inputs.items() if k != "visits"})
    with pytest.raises(SignatureError, match="'plan'"):
        loaded.predict({**inputs, "plan": np.array([1.0, 2.0])})
    with pytest.raises(SignatureError, match="'amount'"):
        loaded.predict({**inputs, "amount": np.ones((2, 2))})


def test_aliases(registry: RegistryService, register: Any, logistic: Any) -> None:
    model, frame = logistic
    for _ in range(3):
        register("churn", model, frame)

    registry.set_alias("churn", "champion", 1)
    assert registry.resolve("churn@champion").version == 1
    registry.set_alias("churn", "champion", 3)
    assert registry.resolve("churn@champion").version == 3
    assert registry.get_model("churn").aliases == {"champion": 3}
    assert registry.get_version("churn", 3).aliases == ("champion",)

    assert registry.resolve("churn:2").version == 2
    assert registry.resolve("churn").version == 3
    assert registry.resolve("churn@latest").version == 3

    registry.delete_alias("churn", "champion")
    with pytest.raises(NotFoundError):
        registry.resolve("churn@champion")
    assert registry.get_model("churn").aliases == {}


@pytest.mark.parametrize("alias", ["latest", "Champion", "9lives", "a" * 65, "bad alias"])
def test_invalid_alias(registry: RegistryService, register: Any, logistic: Any, alias: str) -> None:
    register("churn", *logistic)
    with pytest.raises(InvalidInputError):
        registry.set_alias("churn", alias, 1)
    assert registry.get_model("churn").aliases == {}


def test_not_found(registry: RegistryService, register: Any, logistic: Any) -> None:
    register("churn", *logistic)
    registry.set_alias("churn", "champion", 1)

    with pytest.raises(NotFoundError) as missing_model:
        registry.resolve("fraud")
    assert "'fraud'" in missing_model.value.message
    assert "churn" in missing_model.value.message

    with pytest.raises(NotFoundError) as missing_version:
        registry.resolve("churn:7")
    assert "Version 7" in missing_version.value.message
    assert "1" in missing_version.value.message

    with pytest.raises(NotFoundError) as missing_alias:
        registry.resolve("churn@challenger")
    assert "'challenger'" in missing_alias.value.message
    assert "champion" in missing_alias.value.message

    with pytest.raises(NotFoundError):
        registry.set_alias("churn", "challenger", 9)


def test_viewer_cannot_create_version(
    workspace: Workspace, registry: RegistryService, new_run: Any, logistic: Any
) -> None:
    model, frame = logistic
    run_id = new_run()
    registry.log_model(run_id, model, frame.head(20))
    viewer = workspace.create_principal("viewer-1", {"viewer"})
    as_viewer = RegistryService(workspace.context(viewer))
    with pytest.raises(PermissionDeniedError):
        as_viewer.create_version("churn", run_id)
    assert registry.list_models() == []
    assert as_viewer.list_models() == []


def test_concurrent_versions_unique(registry: RegistryService, new_run: Any, logistic: Any) -> None:
    model, frame = logistic
    run_id = new_run()
    registry.log_model(run_id, model, frame.head(20))
    registry.create_model("churn")
    errors: list[BaseException] = []

    def create() -> None:
        try:
            for _ in range(3):
                registry.create_version("churn", run_id)
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    numbers = [version.version for version in registry.list_versions("churn")]
    assert numbers == list(range(1, 13))


def test_unsafe_upload_rejected(
    registry: RegistryService, tracking: TrackingService, new_run: Any, logistic: Any
) -> None:
    """A client that uploads a pickle under a skops name is stopped at registration."""
    import pickle

    model, frame = logistic
    run_id = new_run()
    manifest = registry.log_model(run_id, model, frame.head(20))
    bogus = pickle.dumps({"weights": [1, 2]})
    artifact = tracking.log_artifact(run_id, "bad/model.skops", bogus)
    manifest["files"] = {
        "model": {"path": "model.skops", "digest": artifact.digest, "size": artifact.size}
    }
    manifest["onnx"] = {"verified": False, "reason": "none"}
    tracking.log_artifact(run_id, "bad/manifest.json", orjson.dumps(manifest))
    with pytest.raises(UnsafeArtifactError):
        registry.create_version("churn", run_id, artifact_path="bad")
    assert registry.list_models() == []


def test_missing_manifest(registry: RegistryService, new_run: Any) -> None:
    run_id = new_run()
    with pytest.raises(NotFoundError, match="log_model"):
        registry.create_version("churn", run_id)


def add_one(values: Any) -> Any:
    return values + 1


def test_register_untrusted_skops(registry: RegistryService, logistic: Any, tmp_path: Path) -> None:
    import skops.io
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    _model, frame = logistic
    numeric = frame[["amount", "visits"]]
    custom = Pipeline(
        [("custom", FunctionTransformer(add_one)), ("model", LogisticRegression())]
    ).fit(numeric, (numeric["amount"] > 50).astype(int))
    path = tmp_path / "custom.skops"
    skops.io.dump(custom, path)
    with pytest.raises(UnsafeArtifactError) as caught:
        registry.register_file("churn", path, sample_input=numeric.head(5))
    assert "add_one" in caught.value.message
    assert registry.list_models() == []


@pytest.mark.parametrize("package", ["xgboost", "lightgbm"])
def test_register_native_file(registry: RegistryService, tmp_path: Path, package: str) -> None:
    library = pytest.importorskip(package)
    from tests.registry.conftest import make_frame

    frame, target = make_frame()
    numeric = frame[["amount", "visits"]].astype(np.float64)
    if package == "xgboost":
        model = library.XGBClassifier(n_estimators=10).fit(numeric, target)
        path = tmp_path / "model.json"
        model.get_booster().save_model(str(path))
    else:
        model = library.LGBMClassifier(n_estimators=10, verbose=-1).fit(numeric, target)
        path = tmp_path / "model.txt"
        model.booster_.save_model(str(path))

    version = registry.register_file("boosted", path, sample_input=numeric.head(10))
    assert version.flavor == package
    outputs = registry.load(version.ref).predict_frame(numeric)
    np.testing.assert_array_equal(outputs["label"], model.predict(numeric))
    np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(numeric), rtol=1e-6)


def test_register_unknown_format(registry: RegistryService, tmp_path: Path, logistic: Any) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"\x00\x01weights")
    with pytest.raises(InvalidInputError, match="Unsupported model file"):
        registry.register_file("churn", path, sample_input=logistic[1].head(5))
    assert registry.list_models() == []
