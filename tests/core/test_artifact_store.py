import hashlib
from pathlib import Path

import pytest

from manara.errors import IntegrityError, InvalidInputError, NotFoundError
from manara.stores.artifacts import ArtifactStore


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "artifacts"))


def test_round_trip_by_digest(store: ArtifactStore) -> None:
    ref = store.put_bytes(b"hello model")
    assert ref.digest == hashlib.sha256(b"hello model").hexdigest()
    assert ref.size == len(b"hello model")
    assert store.get_bytes(ref.digest) == b"hello model"


def test_same_content_stored_once(store: ArtifactStore, tmp_path: Path) -> None:
    first = store.put_bytes(b"x" * 100)
    second = store.put_bytes(b"x" * 100)
    assert first == second
    objects = list((tmp_path / "artifacts" / "sha256").rglob("*"))
    assert len([p for p in objects if p.is_file()]) == 1


def test_put_file_streams(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    data = bytes(range(256)) * 10_000
    source.write_bytes(data)
    ref = store.put_file(source)
    assert ref.digest == hashlib.sha256(data).hexdigest()
    assert store.get_bytes(ref.digest) == data


def test_tampered_object_rejected(store: ArtifactStore, tmp_path: Path) -> None:
    ref = store.put_bytes(b"original weights")
    path = tmp_path / "artifacts" / "sha256" / ref.digest[:2] / ref.digest
    path.write_bytes(b"evil weights")
    with pytest.raises(IntegrityError, match=ref.digest):
        store.get_bytes(ref.digest)


def test_unknown_digest_not_found(store: ArtifactStore) -> None:
    with pytest.raises(NotFoundError):
        store.get_bytes("0" * 64)


@pytest.mark.parametrize("digest", ["../../etc/passwd", "ABC", "0" * 63, "g" * 64])
def test_malformed_digest_rejected(store: ArtifactStore, digest: str) -> None:
    with pytest.raises(InvalidInputError):
        store.get_bytes(digest)


class _FailingReader:
    def __init__(self) -> None:
        self.calls = 0

    def read(self, size: int = -1) -> bytes:
        self.calls += 1
        if self.calls > 2:
            raise OSError("disk went away")
        return b"a" * 1024


def test_failed_write_leaves_nothing(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(OSError, match="disk went away"):
        store.put_stream(_FailingReader())  # type: ignore[arg-type]
    files = [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()]
    assert files == []


def test_get_to_file_verifies(store: ArtifactStore, tmp_path: Path) -> None:
    ref = store.put_bytes(b"payload")
    out = store.get_to_file(ref.digest, tmp_path / "out" / "model.bin")
    assert out.read_bytes() == b"payload"
