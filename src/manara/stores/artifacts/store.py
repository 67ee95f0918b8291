"""Content-addressed artifact store on any fsspec filesystem.

Each object lives at ``sha256/<first two hex digits>/<digest>`` under the
root. Writes go to a temporary name under ``tmp/`` and are renamed into
place, so a failed write leaves no object behind. Every read recomputes the
SHA-256 and raises ``IntegrityError`` when it differs from the address.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from manara.errors import IntegrityError, InvalidInputError, NotFoundError
from manara.files import create_private_file, private_dir, write_private
from manara.security.redaction import mask_url_passwords

logger = logging.getLogger(__name__)

_DIGEST_PATTERN = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ArtifactRef:
    digest: str
    """Hex SHA-256 of the content."""
    size: int
    """Bytes."""


def check_digest(digest: str) -> str:
    if not _DIGEST_PATTERN.match(digest):
        raise InvalidInputError(
            f"Invalid artifact digest {digest!r}: expected 64 lowercase hex characters of SHA-256."
        )
    return digest


class ArtifactStore:
    """Stores immutable blobs by their SHA-256 digest."""

    def __init__(self, root: str, **storage_options: Any) -> None:
        self._fs, self._root = fsspec.core.url_to_fs(root, **storage_options)
        self._root = self._root.rstrip("/")
        self._local = isinstance(self._fs, LocalFileSystem)
        self.url = root

    def _object_path(self, digest: str) -> str:
        check_digest(digest)
        return f"{self._root}/sha256/{digest[:2]}/{digest}"

    def _commit(self, tmp_path: str, digest: str) -> str:
        final = self._object_path(digest)
        if self._fs.exists(final):
            self._fs.rm(tmp_path)
            return final
        self._makedirs(final.rsplit("/", 1)[0])
        self._fs.mv(tmp_path, final)
        return final

    def _makedirs(self, folder: str) -> None:
        if self._local:
            private_dir(Path(folder))
        else:
            self._fs.makedirs(folder, exist_ok=True)

    def _tmp_path(self) -> str:
        self._makedirs(f"{self._root}/tmp")
        path = f"{self._root}/tmp/{uuid.uuid4().hex}"
        if self._local:
            # Created 0600 before fsspec opens it for writing, which keeps the mode.
            create_private_file(Path(path))
        return path

    def put_bytes(self, data: bytes) -> ArtifactRef:
        digest = hashlib.sha256(data).hexdigest()
        if self._fs.exists(self._object_path(digest)):
            return ArtifactRef(digest, len(data))
        tmp_path = self._tmp_path()
        try:
            with self._fs.open(tmp_path, "wb") as out:
                out.write(data)
            self._commit(tmp_path, digest)
        except BaseException:
            self._discard(tmp_path)
            raise
        return ArtifactRef(digest, len(data))

    def put_stream(self, source: IO[bytes]) -> ArtifactRef:
        hasher = hashlib.sha256()
        size = 0
        tmp_path = self._tmp_path()
        try:
            with self._fs.open(tmp_path, "wb") as out:
                while chunk := source.read(_CHUNK):
                    hasher.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            digest = hasher.hexdigest()
            self._commit(tmp_path, digest)
        except BaseException:
            self._discard(tmp_path)
            raise
        return ArtifactRef(digest, size)

    def put_file(self, path: str | Path) -> ArtifactRef:
        with open(path, "rb") as source:
            return self.put_stream(source)

    def _discard(self, tmp_path: str) -> None:
        try:
            if self._fs.exists(tmp_path):
                self._fs.rm(tmp_path)
        except OSError:
            logger.warning("could not remove temporary artifact %s", tmp_path, exc_info=True)

    def exists(self, digest: str) -> bool:
        return bool(self._fs.exists(self._object_path(digest)))

    def get_bytes(self, digest: str) -> bytes:
        """Read an object and check it against its digest."""
        path = self._object_path(digest)
        try:
            with self._fs.open(path, "rb") as source:
                data: bytes = source.read()
        except FileNotFoundError as exc:
            raise NotFoundError(
                f"Artifact {digest} not found in the artifact store {mask_url_passwords(self.url)}.",
                digest=digest,
            ) from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            logger.error("artifact digest mismatch expected=%s actual=%s", digest, actual)
            raise IntegrityError(
                f"Artifact {digest} is corrupt or was modified: its content now hashes to "
                f"{actual}. It was not loaded. Restore it from a backup or register it again.",
                digest=digest,
            )
        return data

    def get_to_file(self, digest: str, destination: str | Path) -> Path:
        """Write a verified copy of an object to a local file (mode 0600), via rename."""
        destination = Path(destination)
        write_private(destination, self.get_bytes(digest))
        return destination
