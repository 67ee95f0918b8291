"""Model packages: the flavor's files, an optional verified ONNX export and a manifest.

The SDK builds a package on the client side in both local and remote mode,
so the server only ever receives files in safe formats. The manifest
(``<artifact path>/manifest.json``) lists every file by role with its
SHA-256 digest; registering a version reads it back and checks each file.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

from manara.errors import InvalidInputError
from manara.registry.entities import Signature
from manara.registry.flavors.base import flavor_by_name, flavor_for, is_classifier
from manara.registry.onnx import ONNX_FILE, export_verified
from manara.registry.pickle_guard import reject_pickle
from manara.registry.signature import infer_signature

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
_LIBRARIES = (
    "manara",
    "scikit-learn",
    "skops",
    "numpy",
    "pandas",
    "onnx",
    "onnxruntime",
    "skl2onnx",
    "xgboost",
    "lightgbm",
)
# Role of each file a flavor or the exporter writes; the flavor's model file is "model".
_ROLES = {
    "model.skops": "model",
    "model.json": "model",
    "model.txt": "model",
    ONNX_FILE: "onnx",
    "meta.json": "meta",
    "preprocessor.skops": "preprocessor",
}


@dataclass(frozen=True)
class ModelPackage:
    files: dict[str, bytes]
    """File name (relative to the artifact path) to content, manifest included."""
    manifest: dict[str, Any]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _classes(model: Any) -> Any:
    if not is_classifier(model):
        return None
    return np.asarray(getattr(model, "classes_", None))


def build_package(model: Any, sample: pd.DataFrame) -> ModelPackage:
    """Serialise ``model`` safely, export and verify ONNX, and write the manifest."""
    if isinstance(model, bytes | bytearray | memoryview):
        reject_pickle(bytes(model), "the model bytes")
        raise InvalidInputError(
            "log_model needs a fitted model object, not bytes. To register a saved file, "
            "use RegistryService.register_file."
        )
    if not isinstance(sample, pd.DataFrame) or len(sample) == 0:
        raise InvalidInputError("The sample input must be a non-empty pandas DataFrame.")
    flavor = flavor_for(model)
    signature = infer_signature(sample, _classes(model))
    files = flavor.save(model, sample)
    native = flavor.load(files)

    export = None
    if flavor.name == "sklearn":
        export = export_verified(model, native, sample, signature)
        if export.data is not None:
            files[ONNX_FILE] = export.data
    model_class = f"{type(model).__module__}.{type(model).__qualname__}"
    manifest = _manifest(flavor.name, model_class, signature, files, export)
    if export is None:
        manifest["onnx"]["reason"] = _native_only(flavor.name)
    files[MANIFEST_FILE] = orjson.dumps(manifest, option=orjson.OPT_INDENT_2)
    return ModelPackage(files, manifest)


def _native_only(flavor: str) -> str:
    return f"ONNX export is only made for scikit-learn models; {flavor} is served natively."


def build_file_package(
    flavor_name: str, files: dict[str, bytes], sample: pd.DataFrame, source: str
) -> ModelPackage:
    """Package native files (an XGBoost or LightGBM model file and its meta.json).

    The model is loaded and run on ``sample`` once, so a file that does not
    fit the sample's columns fails here rather than at serving time.
    """
    if not isinstance(sample, pd.DataFrame) or len(sample) == 0:
        raise InvalidInputError("The sample input must be a non-empty pandas DataFrame.")
    flavor = flavor_by_name(flavor_name)
    native = flavor.load(files)
    signature = infer_signature(sample, native.classes)
    try:
        native.predict(sample)
    except Exception as exc:  # noqa: BLE001 - frameworks raise many types on a bad input
        raise InvalidInputError(
            f"{source} cannot predict on the sample input ({type(exc).__name__}: {exc}). "
            "Pass a sample with the columns, in order, that the model was trained on."
        ) from exc
    manifest = _manifest(flavor_name, f"{flavor_name} model file {source}", signature, files, None)
    manifest["onnx"]["reason"] = _native_only(flavor_name)
    files[MANIFEST_FILE] = orjson.dumps(manifest, option=orjson.OPT_INDENT_2)
    return ModelPackage(files, manifest)


def _manifest(
    flavor: str,
    model_class: str,
    signature: Signature,
    files: Mapping[str, bytes],
    export: Any,
) -> dict[str, Any]:
    return {
        "format_version": MANIFEST_VERSION,
        "flavor": flavor,
        "model_class": model_class,
        "signature": signature.to_dict(),
        "files": {
            _ROLES.get(name, name): {"path": name, "digest": sha256(data), "size": len(data)}
            for name, data in files.items()
        },
        "onnx": {
            "verified": bool(export and export.verified),
            "reason": export.reason if export is not None else "",
        },
        "libraries": library_versions(),
    }


def parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    """Read a manifest and check its shape; raise ``InvalidInputError`` naming ``where``."""
    try:
        manifest = orjson.loads(data)
        flavor_by_name(manifest["flavor"])
        Signature.from_dict(manifest["signature"])
        for role, entry in manifest["files"].items():
            if not isinstance(role, str) or not {"path", "digest"} <= set(entry):
                raise KeyError(role)
        bool(manifest["onnx"]["verified"])
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInputError(
            f"The model manifest at {where} is invalid ({type(exc).__name__}: {exc}). "
            "Log the model again with log_model."
        ) from exc
    if manifest.get("format_version") != MANIFEST_VERSION:
        raise InvalidInputError(
            f"The model manifest at {where} has format version "
            f"{manifest.get('format_version')!r}; this Manara reads version {MANIFEST_VERSION}."
        )
    return dict(manifest)


def check_package_files(manifest: Mapping[str, Any], files: Mapping[str, bytes]) -> None:
    """Reject pickles and untrusted types in a package's files before they are registered."""
    for name, data in files.items():
        reject_pickle(data, name)
    flavor_by_name(manifest["flavor"]).check_files(files)
    if ONNX_FILE in files:
        _check_onnx(files[ONNX_FILE])


def _check_onnx(data: bytes) -> None:
    import onnx

    try:
        onnx.checker.check_model(onnx.load_from_string(data))
    except Exception as exc:  # noqa: BLE001 - the checker and parser raise several types
        raise InvalidInputError(f"{ONNX_FILE} is not a valid ONNX model: {exc}.") from exc
