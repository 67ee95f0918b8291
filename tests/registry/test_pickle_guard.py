"""Pickle and joblib content is recognised from bytes and never loaded."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import joblib
import pytest

from manara.errors import UnsafeArtifactError
from manara.registry.packaging import build_package
from manara.registry.pickle_guard import pickle_kind
from manara.registry.service import RegistryService


class Exploit:
    """Pickles to a call of os.system that would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_every_protocol_detected(protocol: int, tmp_path: Path) -> None:
    data = pickle.dumps(Exploit(tmp_path / "marker"), protocol=protocol)
    assert pickle_kind(data) is not None


def test_joblib_compressed_detected(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump({"weights": [1, 2, 3]}, path, compress=3)
    assert pickle_kind(path.read_bytes()) is not None


def test_gzip_and_zip_detected() -> None:
    payload = pickle.dumps({"a": 1})
    assert pickle_kind(gzip.compress(payload)) is not None
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
    assert pickle_kind(buffer.getvalue()) is not None


def test_safe_formats_not_flagged(logistic: Any) -> None:
    model, frame = logistic
    package = build_package(model, frame.head(20))
    for name, data in package.files.items():
        assert pickle_kind(data) is None, name
    assert pickle_kind(b"tree\nversion=v4\nnum_class=1\n") is None
    assert pickle_kind(b'{"learner": {}}') is None


def test_register_pickle_file_rejected(
    registry: RegistryService, tmp_path: Path, logistic: Any
) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "model.skops"
    path.write_bytes(pickle.dumps(Exploit(marker)))
    with pytest.raises(UnsafeArtifactError) as caught:
        registry.register_file("churn", path, sample_input=logistic[1].head(5))
    assert "pickle" in caught.value.message
    assert not marker.exists(), "the pickle was executed"
    assert registry.list_models() == []


def test_log_model_bytes_rejected(registry: RegistryService, new_run: Any, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    run_id = new_run()
    with pytest.raises(UnsafeArtifactError):
        registry.log_model(run_id, pickle.dumps(Exploit(marker)), sample_input=None)  # type: ignore[arg-type]
    assert not marker.exists(), "the pickle was executed"
    assert registry._tracking.get_run(run_id).artifacts == []
