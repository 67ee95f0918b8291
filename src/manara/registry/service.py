"""The registry service: models, versions, aliases and loading, on the workspace's stores.

Actions checked with the policy: ``model.create`` (a new registered model,
also when ``create_version`` creates one implicitly), ``model.update`` (new
versions, aliases), ``model.read`` (reads, ``resolve`` and ``load``) and
``run.update`` (``log_model`` writes into a run).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from manara.context import Context
from manara.errors import (
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    UnsafeArtifactError,
)
from manara.ids import new_id
from manara.registry.approval import ArtifactApproval
from manara.registry.entities import ModelVersion, RegisteredModel, Signature
from manara.registry.flavors.lightgbm import LightGBMFlavor
from manara.registry.flavors.sklearn import load_checked
from manara.registry.flavors.xgboost import XGBoostFlavor
from manara.registry.integrity import (
    INTEGRITY_KEY,
    VersionVerifier,
    seal_version,
    signing_keyring,
)
from manara.registry.loading import RegistryLoadedModel, load_version
from manara.registry.packaging import (
    MANIFEST_FILE,
    ModelPackage,
    build_file_package,
    build_package,
    check_package_files,
    parse_manifest,
)
from manara.registry.pickle_guard import pickle_kind, reject_pickle
from manara.registry.unsafe import APPROVAL_KEY, UnsafeRegistrations, unpickle
from manara.security.envelope import ArtifactContext
from manara.security.policy import check_access
from manara.stores.artifacts.vault import DEFAULT_CLASSIFICATION
from manara.stores.metadata.access import model_access, models_access
from manara.stores.metadata.placement import model_placement
from manara.stores.metadata.registry import NewVersion, RegistryRepository
from manara.tracking.api import TrackingAPI
from manara.tracking.service import run_artifact_context

logger = logging.getLogger(__name__)

MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
LATEST_ALIAS = "latest"


def check_model_name(name: object) -> str:
    if not isinstance(name, str) or not MODEL_NAME_PATTERN.match(name):
        raise InvalidInputError(
            f"Invalid model name {name!r}: use 1 to 128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit.",
            model=str(name),
        )
    return name


def check_alias(alias: object) -> str:
    if not isinstance(alias, str) or not ALIAS_PATTERN.match(alias):
        raise InvalidInputError(
            f"Invalid alias {alias!r}: use 1 to 64 lowercase letters, digits, '_' or '-', "
            "starting with a letter.",
            alias=str(alias),
        )
    if alias == LATEST_ALIAS:
        raise InvalidInputError(
            "The alias 'latest' is reserved: it always names the highest version. "
            "Choose another alias."
        )
    return alias


def parse_ref(ref: object) -> tuple[str, str | None, int | None]:
    """Split ``NAME``, ``NAME@ALIAS`` or ``NAME:VERSION`` into (name, alias, version)."""
    if not isinstance(ref, str) or not ref:
        raise InvalidInputError(
            f"Invalid model reference {ref!r}: use NAME, NAME@ALIAS or NAME:VERSION."
        )
    if "@" in ref:
        name, _, alias = ref.partition("@")
        return check_model_name(name), alias, None
    if ":" in ref:
        name, _, number = ref.partition(":")
        if not number.isdigit() or int(number) < 1:
            raise InvalidInputError(
                f"Invalid version {number!r} in model reference {ref!r}: use a positive integer."
            )
        return check_model_name(name), None, int(number)
    return check_model_name(ref), None, None


def _check_artifact_path(path: object) -> str:
    if not isinstance(path, str) or not path or path.startswith("/") or ".." in path.split("/"):
        raise InvalidInputError(
            f"Invalid artifact path {path!r}: use a relative path such as 'model'."
        )
    return path.strip("/")


class RegistryService:
    """Implements ``manara.registry.api.RegistryAPI`` plus ``load`` and ``register_file``."""

    def __init__(self, ctx: Context, tracking: TrackingAPI | None = None) -> None:
        from manara.tracking.service import TrackingService

        self.ctx = ctx
        self._repository = RegistryRepository(ctx.metadata, ctx.principal.project)
        self._tracking: TrackingAPI = tracking or TrackingService(ctx)

    # Models

    def create_model(
        self,
        name: str,
        description: str = "",
        *,
        classification: str = DEFAULT_CLASSIFICATION,
        allowed_regions: Iterable[str] | None = None,
    ) -> RegisteredModel:
        """Create a model in the principal's project; its versions inherit its attributes."""
        access = check_access(self._repository.project, classification, allowed_regions)
        self.ctx.authorize("model.create", "model", str(name), access=access)
        check_model_name(name)
        model = self._repository.create_model(
            name, description, self.ctx.principal.id, self.ctx.clock.now(), access
        )
        logger.info("model created name=%s principal=%s", name, self.ctx.principal.id)
        return model

    def get_model(self, name: str) -> RegisteredModel:
        self._authorize_model("model.read", name)
        return self._repository.get_model(name)

    def list_models(self) -> list[RegisteredModel]:
        """List the models the principal may read, in every project it belongs to."""
        principal = self.ctx.principal
        readable: list[RegisteredModel] = []
        for project in sorted({principal.project, *principal.memberships}):
            names = self._readable_names(project)
            models = self._repository.list_models([project])
            readable.extend(model for model in models if model.name in names)
        return readable

    def _readable_names(self, project: str) -> set[str]:
        return {
            name
            for name, access in models_access(self.ctx.metadata, project).items()
            if self.ctx.permits("model.read", "model", name, access)
        }

    def _authorize_model(self, action: str, name: str) -> None:
        """Authorise ``action`` on a model of the principal's project, or raise not found.

        A model the principal may not read is reported exactly like a missing
        one, and the names listed in that error are only those it may read.
        """
        check_model_name(name)
        project = self._repository.project
        access = model_access(self.ctx.metadata, project, name)
        if access is None:
            raise self._model_not_found(name)
        self.ctx.authorize(
            action, "model", name, access=access, not_found=lambda: self._model_not_found(name)
        )

    def _model_not_found(self, name: str) -> NotFoundError:
        names = sorted(self._readable_names(self._repository.project))
        listing = f"Existing models: {', '.join(names[:20])}" if names else "No models exist yet"
        more = f" and {len(names) - 20} more" if len(names) > 20 else ""
        return NotFoundError(f"Model {name!r} not found. {listing}{more}.", model=name)

    # Packages and versions

    def log_model(
        self,
        run_id: str,
        model: Any,
        sample_input: pd.DataFrame,
        artifact_path: str = "model",
    ) -> dict[str, Any]:
        self.ctx.authorize("run.update", "run", run_id)
        artifact_path = _check_artifact_path(artifact_path)
        package = build_package(model, sample_input)
        upload_package(self._tracking, run_id, artifact_path, package)
        return package.manifest

    def create_version(
        self,
        model_name: str,
        run_id: str,
        artifact_path: str = "model",
        description: str = "",
    ) -> ModelVersion:
        self._authorize_new_version(model_name)
        artifact_path = _check_artifact_path(artifact_path)
        manifest_path = f"{artifact_path}/{MANIFEST_FILE}"
        try:
            manifest_bytes = self._tracking.get_artifact(run_id, manifest_path)
        except NotFoundError as exc:
            raise NotFoundError(
                f"Run {run_id!r} has no model manifest at {manifest_path!r}: {exc.message} "
                "Log the model with log_model first, or pass the artifact_path it was logged at.",
                run_id=run_id,
                path=manifest_path,
            ) from exc
        manifest = parse_manifest(manifest_bytes, f"run {run_id} {manifest_path}")
        logged = {
            artifact.path: artifact.digest for artifact in self._tracking.get_run(run_id).artifacts
        }
        files, artifacts = self._run_files(run_id, artifact_path, manifest, logged)
        artifacts["manifest"] = logged[manifest_path]
        check_package_files(manifest, files)
        paths = {
            role: f"{artifact_path}/{entry['path']}" for role, entry in manifest["files"].items()
        }
        paths["manifest"] = manifest_path
        contexts = {
            role: run_artifact_context(self.ctx, run_id, path) for role, path in paths.items()
        }
        source = {"source": "run", "artifact_path": artifact_path}
        return self._insert_version(
            model_name, run_id, manifest, (artifacts, contexts), description, source
        )

    def _run_files(
        self,
        run_id: str,
        artifact_path: str,
        manifest: dict[str, Any],
        logged: dict[str, str],
    ) -> tuple[dict[str, bytes], dict[str, str]]:
        files: dict[str, bytes] = {}
        artifacts: dict[str, str] = {}
        for role, entry in manifest["files"].items():
            path = f"{artifact_path}/{entry['path']}"
            if logged.get(path) != entry["digest"]:
                raise IntegrityError(
                    f"Artifact {path!r} of run {run_id!r} does not match the manifest: expected "
                    f"digest {entry['digest']}, found {logged.get(path, 'no such artifact')}. "
                    "Log the model again.",
                    run_id=run_id,
                    path=path,
                )
            files[entry["path"]] = self._tracking.get_artifact(run_id, path)
            artifacts[role] = entry["digest"]
        return files, artifacts

    def _authorize_new_version(self, model_name: str) -> None:
        """Authorise a new version: ``model.update``, plus ``model.create`` for a new model."""
        check_model_name(model_name)
        access = model_access(self.ctx.metadata, self._repository.project, model_name)
        if access is None:
            self.ctx.authorize("model.update", "model", model_name)
            self.ctx.authorize("model.create", "model", model_name)
            return
        self.ctx.authorize("model.update", "model", model_name, access=access)

    def _insert_version(
        self,
        model_name: str,
        run_id: str | None,
        manifest: dict[str, Any],
        placed: tuple[dict[str, str], dict[str, ArtifactContext]],
        description: str,
        source: dict[str, Any],
    ) -> ModelVersion:
        artifacts, contexts = placed
        onnx = manifest["onnx"]
        integrity = seal_version(signing_keyring(self.ctx), model_name, artifacts, contexts)
        new = NewVersion(
            run_id=run_id,
            flavor=manifest["flavor"],
            artifacts=artifacts,
            signature=Signature.from_dict(manifest["signature"]),
            onnx_verified=bool(onnx["verified"]) and "onnx" in artifacts,
            metadata={
                **source,
                "onnx_reason": onnx.get("reason", ""),
                "model_class": manifest.get("model_class", ""),
                "libraries": manifest.get("libraries", {}),
                INTEGRITY_KEY: integrity,
            },
            description=description,
            created_by=self.ctx.principal.id,
        )
        version = self._repository.create_version(
            model_name, new, self.ctx.clock.now(), create_model=True
        )
        logger.info(
            "model version created ref=%s run=%s onnx_verified=%s principal=%s",
            version.ref,
            run_id,
            version.onnx_verified,
            self.ctx.principal.id,
        )
        self.ctx.record(
            "model.register",
            "model_version",
            version.ref,
            details={"run_id": run_id or "", "flavor": version.flavor, **source},
        )
        return version

    def register_file(
        self,
        model_name: str,
        path: str | Path,
        sample_input: pd.DataFrame | None = None,
        description: str = "",
        allow_pickle: bool = False,
    ) -> ModelVersion:
        """Register a saved model file as a new version, without a run.

        Pickle and joblib files are rejected whatever their name, unless
        ``allow_pickle`` is set and another principal approved a request for
        this exact file (``request_unsafe_registration``). Accepted:
        ``.skops`` (scikit-learn, loaded only after its types pass the
        allow-list), ``.json`` (XGBoost JSON) and ``.txt`` (LightGBM text).
        ``sample_input`` (a few rows of the input columns) gives the signature.
        """
        self._authorize_new_version(model_name)
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"Cannot read model file {path}: {exc.strerror}.") from exc
        approval = self._pickle_approval(model_name, data, str(path), allow_pickle)
        if sample_input is None:
            raise InvalidInputError(
                f"Registering {path.name} needs sample_input: a DataFrame with a few rows of "
                "the model's input columns, from which the signature is inferred."
            )
        if approval is None:
            package = _file_package(path, data, sample_input)
        else:
            package = build_package(unpickle(data), sample_input)
        source = {"source": "file", "file_name": path.name}
        if approval is not None:
            source[APPROVAL_KEY] = approval.id
        return self._insert_version(
            model_name,
            None,
            package.manifest,
            self._store_package(model_name, package),
            description,
            source,
        )

    def _store_package(
        self, model_name: str, package: ModelPackage
    ) -> tuple[dict[str, str], dict[str, ArtifactContext]]:
        """Encrypt a package's files into the vault, placed in the model's project."""
        project = self.ctx.principal.project
        placement = model_placement(self.ctx.metadata, project, model_name)
        classification = placement.classification if placement else DEFAULT_CLASSIFICATION
        upload = new_id()
        names = {role: entry["path"] for role, entry in package.manifest["files"].items()}
        names["manifest"] = MANIFEST_FILE
        artifacts: dict[str, str] = {}
        contexts: dict[str, ArtifactContext] = {}
        for role, name in names.items():
            artifact_id = f"models/{model_name}/{upload}/{name}"
            contexts[role] = self.ctx.artifacts.context(project, artifact_id, classification)
            artifacts[role] = self.ctx.artifacts.put_bytes(
                package.files[name], contexts[role]
            ).digest
        return artifacts, contexts

    def _pickle_approval(
        self, model_name: str, data: bytes, source: str, allow_pickle: bool
    ) -> ArtifactApproval | None:
        """Return the approval for pickle content, ``None`` for safe content; reject the rest."""
        if allow_pickle and pickle_kind(data) is not None:
            return UnsafeRegistrations(self.ctx).approved_for(data, model_name, source)
        try:
            reject_pickle(data, source)
        except UnsafeArtifactError as exc:
            self.ctx.record(
                "artifact.register",
                "model",
                model_name,
                decision="deny",
                reason="unsafe_format",
                details={"source": source, "detected": exc.details.get("detected", "")},
            )
            raise
        return None

    # Unsafe formats

    def request_unsafe_registration(
        self, model_name: str, source: str | Path, run_id: str | None = None
    ) -> ArtifactApproval:
        """Scan a pickle or joblib model and ask another principal to approve it.

        ``source`` is a local file, or with ``run_id`` an artifact path in that
        run. See ``manara.registry.unsafe`` for the whole procedure.
        """
        self._authorize_new_version(model_name)
        if run_id is not None:
            data = self._tracking.get_artifact(run_id, str(source))
            where = f"run {run_id} artifact {source}"
        else:
            try:
                data = Path(source).read_bytes()
            except OSError as exc:
                raise InvalidInputError(
                    f"Cannot read model file {source}: {exc.strerror}."
                ) from exc
            where = str(source)
        return UnsafeRegistrations(self.ctx).request(model_name, data, where)

    def list_approvals(self, status: str | None = None) -> list[ArtifactApproval]:
        return UnsafeRegistrations(self.ctx).list(status)

    def approve(self, approval_id: str, reason: str = "") -> ArtifactApproval:
        return UnsafeRegistrations(self.ctx).decide(approval_id, True, reason)

    def reject(self, approval_id: str, reason: str = "") -> ArtifactApproval:
        return UnsafeRegistrations(self.ctx).decide(approval_id, False, reason)

    def get_version(self, model_name: str, version: int) -> ModelVersion:
        self._authorize_model("model.read", model_name)
        return self._repository.get_version(model_name, version)

    def list_versions(self, model_name: str) -> list[ModelVersion]:
        self._authorize_model("model.read", model_name)
        return self._repository.list_versions(model_name)

    def resolve(self, ref: str) -> ModelVersion:
        name, alias, number = parse_ref(ref)
        self._authorize_model("model.read", name)
        if number is not None:
            return self._repository.get_version(name, number)
        if alias is None or alias == LATEST_ALIAS:
            model = self._repository.get_model(name)
            if model.latest_version is None:
                raise NotFoundError(
                    f"Model {name!r} has no versions yet. Register one with create_version.",
                    model=name,
                )
            return self._repository.get_version(name, model.latest_version)
        return self._repository.version_for_alias(name, alias)

    # Aliases

    def set_alias(self, model_name: str, alias: str, version: int) -> ModelVersion:
        self._authorize_model("model.update", model_name)
        check_alias(alias)
        previous = self.get_model(model_name).aliases.get(alias)
        result = self._repository.set_alias(model_name, alias, version, self.ctx.clock.now())
        logger.info("alias set model=%s alias=%s version=%d", model_name, alias, version)
        self.ctx.record(
            "model.alias.set",
            "model",
            model_name,
            details={"alias": alias, "version": version, "previous_version": previous},
        )
        return result

    def delete_alias(self, model_name: str, alias: str) -> None:
        self._authorize_model("model.update", model_name)
        self._repository.delete_alias(model_name, alias)
        logger.info("alias deleted model=%s alias=%s", model_name, alias)
        self.ctx.record("model.alias.delete", "model", model_name, details={"alias": alias})

    # Loading

    def read_artifact(self, model_name: str, version: int, role: str) -> bytes:
        """Read one artifact of a version by role, after its signature and digest verify."""
        found = self.get_version(model_name, version)
        return VersionVerifier(self.ctx).fetch(found, role)

    def load(self, ref: str) -> RegistryLoadedModel:
        """Load the version named by ``ref`` for prediction (see ``manara.registry.api.LoadedModel``)."""
        version = self.resolve(ref)
        UnsafeRegistrations(self.ctx).check_load(version)
        # Every artifact is verified, also those the chosen runtime does not read.
        verifier = VersionVerifier(self.ctx)
        verified = {role: verifier.fetch(version, role) for role in version.artifacts}
        loaded = load_version(version, lambda role, digest: verified[role])
        logger.info("model loaded ref=%s runtime=%s", version.ref, loaded.runtime)
        return loaded


def _file_package(path: Path, data: bytes, sample: pd.DataFrame) -> ModelPackage:
    if path.suffix == ".skops":
        return build_package(load_checked(data, str(path)), sample)
    if path.suffix == ".json":
        files = XGBoostFlavor().files_from_native(data, path.name)
        return build_file_package("xgboost", files, sample, path.name)
    if path.suffix == ".txt":
        files = LightGBMFlavor().files_from_native(data, path.name)
        return build_file_package("lightgbm", files, sample, path.name)
    raise InvalidInputError(
        f"Unsupported model file {path.name!r}: register_file takes .skops (scikit-learn "
        "saved with skops), .json (XGBoost JSON) and .txt (LightGBM text) files."
    )


def upload_package(
    tracking: TrackingAPI, run_id: str, artifact_path: str, package: ModelPackage
) -> None:
    """Log a package's files into a run, the manifest last so it only names stored files."""
    for name, data in package.files.items():
        if name != MANIFEST_FILE:
            tracking.log_artifact(run_id, f"{artifact_path}/{name}", data)
    tracking.log_artifact(run_id, f"{artifact_path}/{MANIFEST_FILE}", package.files[MANIFEST_FILE])
