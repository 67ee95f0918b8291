"""Attacks on stored artifacts: tampering, moved ciphertexts, forged signatures, pickles, paths."""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sklearn.linear_model import LogisticRegression
from sqlalchemy import update

from manara.errors import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    UnsafeArtifactError,
)
from manara.registry.entities import ModelVersion
from manara.registry.packaging import MANIFEST_FILE, build_package
from manara.registry.service import RegistryService, upload_package
from manara.security.envelope import ArtifactContext
from manara.security.keyops import KeyService
from manara.security.signing import Signature, key_id_of, signed_message
from manara.stores.artifacts.encrypted import EncryptedRef
from manara.stores.metadata import tables
from manara.tracking.service import TrackingService
from manara.workspace import Workspace
from tests.sdk_modes import running_server

TRAVERSALS = ["../../etc/passwd", "/etc/passwd", "..\\..\\windows\\win.ini", "a/../../b"]


class RunsCommand:
    """Pickles to a call of ``os.system``: loading it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def model() -> tuple[LogisticRegression, pd.DataFrame]:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"amount": rng.normal(size=200), "visits": rng.normal(size=200)})
    labels = (frame["amount"] + frame["visits"] > 0).astype(int)
    return LogisticRegression().fit(frame, labels), frame


@pytest.fixture
def registry(workspace: Workspace) -> RegistryService:
    return RegistryService(workspace.context())


def _skops_file(model: Any, tmp_path: Path) -> Path:
    import skops.io

    path = tmp_path / "model.skops"
    skops.io.dump(model, path)
    return path


def _register(registry: RegistryService, name: str, model: Any, tmp_path: Path) -> ModelVersion:
    estimator, frame = model
    return registry.register_file(name, _skops_file(estimator, tmp_path), frame.head(10))


def _context(version: ModelVersion, role: str) -> ArtifactContext:
    return ArtifactContext(**version.metadata["integrity"]["artifacts"][role]["context"])


def _blob_path(workspace: Workspace, version: ModelVersion, role: str) -> Path:
    digest = version.artifacts[role]
    blob = workspace.artifacts.locate(digest, _context(version, role)).blob_digest
    return Path(workspace.settings.artifact_root) / "sha256" / blob[:2] / blob


def _point_index(workspace: Workspace, digest: str, context: ArtifactContext, blob: str) -> None:
    """Make the index entry of (context, digest) name another stored ciphertext."""
    vault = workspace.artifacts
    vault._index.write(vault._key(digest, context), EncryptedRef(digest, blob, 0))


def _set_metadata(workspace: Workspace, version: ModelVersion, metadata: dict[str, Any]) -> None:
    with workspace.metadata.transaction() as connection:
        connection.execute(
            update(tables.model_versions)
            .where(tables.model_versions.c.id == version.id)
            .values(metadata=metadata)
        )


def _denials(workspace: Workspace, action: str) -> list[str]:
    events = workspace.audit.events(action=action)
    return [event.reason for event in events if event.decision == "deny"]


def test_flipped_byte_refused(
    workspace: Workspace, registry: RegistryService, model: Any, tmp_path: Path
) -> None:
    version = _register(registry, "churn", model, tmp_path)
    stored = _blob_path(workspace, version, "model")
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="tampered"):
        registry.load(version.ref)
    assert _denials(workspace, "artifact.verify") == ["tampered"]


def test_rehashed_tamper_fails_tag(
    workspace: Workspace, registry: RegistryService, model: Any, tmp_path: Path
) -> None:
    # The attacker stores the changed ciphertext at its own address, with a copied
    # header and a redirected index entry, so only AES-GCM authentication can catch it.
    version = _register(registry, "churn", model, tmp_path)
    vault, context = workspace.artifacts, _context(version, "model")
    digest = version.artifacts["model"]
    original = vault.locate(digest, context).blob_digest
    body = bytearray(vault.blobs.get_bytes(original))
    body[-20] ^= 0x01
    forged = vault.blobs.put_bytes(bytes(body)).digest
    vault.encrypted.headers.write(forged, vault.encrypted.headers.read(original))
    _point_index(workspace, digest, context, forged)
    with pytest.raises(IntegrityError, match="failed authentication"):
        registry.load(version.ref)
    assert _denials(workspace, "artifact.verify") == ["tampered"]


def test_ciphertext_moved_between_models(
    workspace: Workspace, registry: RegistryService, model: Any, tmp_path: Path
) -> None:
    first = _register(registry, "churn", model, tmp_path)
    second = _register(registry, "fraud", model, tmp_path)
    source = workspace.artifacts.locate(first.artifacts["model"], _context(first, "model"))
    _point_index(
        workspace, second.artifacts["model"], _context(second, "model"), source.blob_digest
    )
    with pytest.raises(IntegrityError, match="moved from another context"):
        registry.load(second.ref)
    assert registry.load(first.ref).runtime in {"onnxruntime", "native"}


def test_ciphertext_moved_between_projects(workspace: Workspace) -> None:
    vault = workspace.artifacts
    mine = vault.context("team-a", "run-1/data.parquet", "confidential")
    theirs = vault.context("team-b", "run-1/data.parquet", "confidential")
    stored = vault.put_bytes(b"team a rows", mine)
    _point_index(workspace, stored.digest, theirs, vault.locate(stored.digest, mine).blob_digest)
    with pytest.raises(IntegrityError, match="project"):
        vault.get_bytes(stored.digest, theirs)
    assert vault.get_bytes(stored.digest, mine) == b"team a rows"


def test_resigned_with_other_key_refused(
    workspace: Workspace, registry: RegistryService, model: Any, tmp_path: Path
) -> None:
    version = _register(registry, "churn", model, tmp_path)
    entry = version.metadata["integrity"]["artifacts"]["model"]
    fields = {"model": "churn", "role": "model", **entry["context"]}
    attacker = Ed25519PrivateKey.generate()
    forged = Signature(
        key_id_of(attacker.public_key()),
        attacker.sign(signed_message(version.artifacts["model"], fields)),
    )
    metadata = dict(version.metadata)
    metadata["integrity"]["artifacts"]["model"]["signature"] = forged.to_dict()
    _set_metadata(workspace, version, metadata)
    with pytest.raises(IntegrityError, match="bad_signature"):
        registry.load(version.ref)
    assert _denials(workspace, "artifact.verify") == ["bad_signature"]


def test_signature_stripped_refused(
    workspace: Workspace, registry: RegistryService, model: Any, tmp_path: Path
) -> None:
    version = _register(registry, "churn", model, tmp_path)
    metadata = {k: v for k, v in version.metadata.items() if k != "integrity"}
    _set_metadata(workspace, version, metadata)
    with pytest.raises(IntegrityError, match="unsigned"):
        registry.load(version.ref)
    with pytest.raises(IntegrityError, match="unsigned"):
        registry.read_artifact("churn", version.version, "manifest")
    assert _denials(workspace, "artifact.verify") == ["unsigned", "unsigned"]


def test_signed_digest_swapped_refused(
    workspace: Workspace, registry: RegistryService, model: Any, tmp_path: Path
) -> None:
    version = _register(registry, "churn", model, tmp_path)
    other = workspace.artifacts.put_bytes(b"not the model", _context(version, "model"))
    artifacts = {**version.artifacts, "model": other.digest}
    with workspace.metadata.transaction() as connection:
        connection.execute(
            update(tables.model_versions)
            .where(tables.model_versions.c.id == version.id)
            .values(artifacts=artifacts)
        )
    with pytest.raises(IntegrityError):
        registry.read_artifact("churn", version.version, "model")
    assert _denials(workspace, "artifact.verify") == ["bad_signature"]


def test_pickle_file_rejected(
    workspace: Workspace, registry: RegistryService, model: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.skops"
    path.write_bytes(pickle.dumps(RunsCommand(marker)))
    frame = model[1].head(5)
    with pytest.raises(UnsafeArtifactError, match="pickle"):
        registry.register_file("churn", path, frame)
    with pytest.raises(UnsafeArtifactError, match="no approved request"):
        registry.register_file("churn", path, frame, allow_pickle=True)
    assert not marker.exists(), "the pickle's code ran"
    assert _denials(workspace, "artifact.register") == ["unsafe_format", "unapproved_pickle"]


def test_pickle_in_logged_model_rejected(
    workspace: Workspace, registry: RegistryService, model: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    estimator, frame = model
    package = build_package(estimator, frame.head(10))
    evil = pickle.dumps(RunsCommand(marker))
    entry = package.manifest["files"]["model"]
    package.files[entry["path"]] = evil
    entry.update(digest=hashlib.sha256(evil).hexdigest(), size=len(evil))
    package.files[MANIFEST_FILE] = _manifest_bytes(package.manifest)
    tracking = TrackingService(workspace.context())
    run = tracking.create_run(tracking.create_experiment("attack").id)
    upload_package(tracking, run.id, "model", package)
    with pytest.raises(UnsafeArtifactError, match="pickle"):
        registry.create_version("churn", run.id)
    assert not marker.exists(), "the pickle's code ran"


def _manifest_bytes(manifest: dict[str, Any]) -> bytes:
    import orjson

    return orjson.dumps(manifest, option=orjson.OPT_INDENT_2)


@pytest.fixture
def people(workspace: Workspace) -> dict[str, RegistryService]:
    roles = {"alice": {"admin"}, "bob": {"admin"}, "victor": {"viewer"}}
    return {
        name: RegistryService(workspace.context(workspace.create_principal(name, role)))
        for name, role in roles.items()
    }


def test_flagged_pickle_never_approvable(
    workspace: Workspace, people: dict[str, RegistryService], model: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(RunsCommand(marker)))
    request = people["alice"].request_unsafe_registration("churn", path)
    assert request.status == "rejected"
    assert "posix.system" in request.scan["dangerous"]
    with pytest.raises(ConflictError):
        people["bob"].approve(request.id)
    with pytest.raises(UnsafeArtifactError):
        people["alice"].register_file("churn", path, model[1].head(5), allow_pickle=True)
    assert not marker.exists(), "the pickle's code ran"
    assert "scan_flagged" in _denials(workspace, "artifact.request_approval")


def test_pickle_approval_flow(
    workspace: Workspace, people: dict[str, RegistryService], model: Any, tmp_path: Path
) -> None:
    estimator, frame = model
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(estimator))
    alice, bob = people["alice"], people["bob"]
    request = alice.request_unsafe_registration("churn", path)
    assert request.status == "pending", request.scan
    assert request.scan["dangerous"] == []
    with pytest.raises(PermissionDeniedError, match="someone else"):
        alice.approve(request.id)
    with pytest.raises(PermissionDeniedError):
        people["victor"].approve(request.id)
    assert _denials(workspace, "artifact.approve").count("self_approval") == 1
    assert [a.id for a in bob.list_approvals("pending")] == [request.id]
    approved = bob.approve(request.id, "reviewed the training code")
    assert approved.decided_by != approved.requested_by
    with pytest.raises(ConflictError):
        bob.reject(request.id)
    version = alice.register_file("churn", path, frame.head(10), allow_pickle=True)
    assert version.metadata["approval_id"] == request.id
    labels = alice.load(version.ref).predict_frame(frame)["label"]
    np.testing.assert_array_equal(labels, estimator.predict(frame))


def test_pickle_approval_checked_at_load(
    workspace: Workspace, people: dict[str, RegistryService], model: Any, tmp_path: Path
) -> None:
    estimator, frame = model
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(estimator))
    request = people["alice"].request_unsafe_registration("churn", path)
    people["bob"].approve(request.id)
    version = people["alice"].register_file("churn", path, frame.head(10), allow_pickle=True)
    with workspace.metadata.transaction() as connection:
        connection.execute(
            update(tables.artifact_approvals)
            .where(tables.artifact_approvals.c.id == request.id)
            .values(status="rejected")
        )
    with pytest.raises(UnsafeArtifactError, match="rejected"):
        people["alice"].load(version.ref)


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_rejected_by_service(workspace: Workspace, path: str) -> None:
    tracking = TrackingService(workspace.context())
    run = tracking.create_run(tracking.create_experiment("paths").id)
    with pytest.raises(InvalidInputError, match="Invalid artifact path"):
        tracking.log_artifact(run.id, path, b"x")
    with pytest.raises(InvalidInputError, match="Invalid artifact path"):
        tracking.get_artifact(run.id, path)
    assert tracking.get_run(run.id).artifacts == []


@pytest.fixture
def http(sqlite_workspace: Workspace) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    token = sqlite_workspace.issue_key(sqlite_workspace.local_admin()).token
    with running_server(sqlite_workspace) as url, httpx.Client(base_url=url) as session:
        yield session, {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "encoded", ["..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "..%5C..%5Cwin.ini", "a%2F..%2F..%2Fb"]
)
def test_traversal_rejected_by_rest(
    http: tuple[httpx.Client, dict[str, str]], sqlite_workspace: Workspace, encoded: str
) -> None:
    session, headers = http
    tracking = TrackingService(sqlite_workspace.context())
    run = tracking.create_run(tracking.create_experiment("paths").id)
    url = f"/api/v1/runs/{run.id}/artifacts/{encoded}"
    put = session.put(url, content=b"x", headers=headers)
    assert put.status_code in (400, 404, 422), put.text
    got = session.get(url, headers=headers)
    assert got.status_code in (400, 404, 422), got.text
    assert tracking.get_run(run.id).artifacts == []


def test_destroyed_key_shreds_artifacts(workspace: Workspace) -> None:
    ctx = workspace.context()
    tracking = TrackingService(ctx)
    run = tracking.create_run(tracking.create_experiment("shred").id)
    tracking.log_artifact(run.id, "old.txt", b"written under version 1")
    keys = KeyService(ctx, workspace.artifacts.encrypted)
    workspace.artifacts.encrypted.provider.rotate()
    tracking.log_artifact(run.id, "new.txt", b"written under version 2")
    assert keys.destroy(1, confirmed=True) == 1
    with pytest.raises(NotFoundError, match="crypto-shredded"):
        tracking.get_artifact(run.id, "old.txt")
    assert tracking.get_artifact(run.id, "new.txt") == b"written under version 2"


def test_rotation_rewraps_every_artifact(
    workspace: Workspace, registry: RegistryService, model: Any, tmp_path: Path
) -> None:
    version = _register(registry, "churn", model, tmp_path)
    tracking = TrackingService(workspace.context())
    run = tracking.create_run(tracking.create_experiment("rotate").id)
    tracking.log_artifact(run.id, "notes.txt", b"kept")
    keys = KeyService(workspace.context(), workspace.artifacts.encrypted)
    rotation = keys.rotate()
    assert rotation.rewrap.failed == {}
    usage = {item.version.version: item.objects for item in keys.list_versions()}
    assert usage[1] == 0, usage
    assert usage[2] == len(rotation.rewrap.rewrapped) + len(rotation.rewrap.already_current)
    keys.retire(1)
    assert tracking.get_artifact(run.id, "notes.txt") == b"kept"
    assert registry.load(version.ref).predict_frame(model[1].head(3))["label"].shape == (3,)
