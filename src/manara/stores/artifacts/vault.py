"""ArtifactVault: the workspace's artifact store, encrypting every object at rest.

Callers name artifacts by the SHA-256 of their plaintext, as before
encryption existed: run rows, model versions, manifests and signatures all
record that digest. Each write is sealed by ``EncryptedArtifactStore``
under a fresh data key, bound to an ``ArtifactContext`` (project, artifact
id, classification, region), and stored under the digest of its
ciphertext. A small index maps (context, plaintext digest) to that
ciphertext digest, so a reader must present the same context to find and
decrypt an object. Every read decrypts, authenticates and checks the
plaintext digest.

The index lives beside the header table, at
``<artifact root>/envelope-index/<first two hex digits>/<key>``, where the
key is the SHA-256 of the context and the plaintext digest. An index entry
is not authenticated. Pointing it at another object makes the read fail,
because the ciphertext is bound to its own context and the plaintext
digest is checked after decryption.

Callers that pass no context (tools and tests that store a loose file)
get ``default_context``: the default project, an artifact id made from
the digest, the default classification and the vault's region.

NOTE: anyone who can list the index and has an object's context can
confirm a guess of its plaintext by hashing it. The metadata database
stores the same plaintext digests, so the index adds no new exposure.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from manara.errors import IntegrityError, NotFoundError
from manara.files import write_private
from manara.security.envelope import ArtifactContext
from manara.security.keyfiles import atomic_write
from manara.security.redaction import mask_url_passwords
from manara.stores.artifacts.encrypted import EncryptedArtifactStore, EncryptedRef
from manara.stores.artifacts.store import ArtifactRef, ArtifactStore, check_digest

logger = logging.getLogger(__name__)

DEFAULT_PROJECT = "default"
DEFAULT_CLASSIFICATION = "internal"
_INDEX_DOMAIN = b"manara-artifact-index-v1\0"


class _IndexTable:
    """Small files that map an index key to ``<ciphertext digest> <plaintext size>``."""

    def __init__(self, root: str, **storage_options: Any) -> None:
        self._fs, path = fsspec.core.url_to_fs(root, **storage_options)
        self._root = path.rstrip("/")
        self._local = isinstance(self._fs, LocalFileSystem)

    def _path(self, key: str) -> str:
        return f"{self._root}/{key[:2]}/{key}"

    def write(self, key: str, ref: EncryptedRef) -> None:
        line = f"{ref.blob_digest} {ref.size}\n".encode("ascii")
        if self._local:
            atomic_write(Path(self._path(key)), line)
            return
        tmp = f"{self._root}/tmp/{uuid.uuid4().hex}"
        self._fs.pipe_file(tmp, line)
        self._fs.mv(tmp, self._path(key))

    def read(self, key: str) -> tuple[str, int] | None:
        try:
            raw: bytes = self._fs.cat_file(self._path(key))
        except FileNotFoundError:
            return None
        try:
            blob, size = raw.decode("ascii").split()
            return check_digest(blob), int(size)
        except (UnicodeDecodeError, ValueError) as exc:
            raise IntegrityError(
                f"Artifact index entry {key} is corrupt ({exc}). Restore the envelope-index "
                "folder of the artifact store from a backup.",
                key=key,
            ) from exc


class ArtifactVault:
    """Encrypts on write, decrypts and verifies on read; addresses are plaintext digests."""

    def __init__(
        self,
        encrypted: EncryptedArtifactStore,
        region: str = "local",
        index_root: str | None = None,
        **storage_options: Any,
    ) -> None:
        self.encrypted = encrypted
        self.region = region
        root = index_root or f"{encrypted.artifacts.url.rstrip('/')}/envelope-index"
        self._index = _IndexTable(root, **storage_options)

    @property
    def blobs(self) -> ArtifactStore:
        """The content-addressed store of ciphertext bodies underneath."""
        return self.encrypted.artifacts

    @property
    def url(self) -> str:
        return self.blobs.url

    def context(self, project: str, artifact_id: str, classification: str) -> ArtifactContext:
        """Build the context of an artifact stored in this vault's region."""
        return ArtifactContext(project, artifact_id, classification, self.region)

    def default_context(self, digest: str) -> ArtifactContext:
        return self.context(DEFAULT_PROJECT, f"sha256:{digest}", DEFAULT_CLASSIFICATION)

    @staticmethod
    def _key(digest: str, context: ArtifactContext) -> str:
        check_digest(digest)
        return hashlib.sha256(_INDEX_DOMAIN + context.encode() + bytes.fromhex(digest)).hexdigest()

    def put_bytes(self, data: bytes, context: ArtifactContext | None = None) -> ArtifactRef:
        """Encrypt and store ``data``; return its plaintext digest and size."""
        digest = hashlib.sha256(data).hexdigest()
        context = context or self.default_context(digest)
        key = self._key(digest, context)
        found = self._index.read(key)
        if found is not None and self.blobs.exists(found[0]):
            return ArtifactRef(digest, len(data))
        ref = self.encrypted.put_bytes(data, context)
        # The index entry is written last, so it only ever names a stored object.
        self._index.write(key, ref)
        return ArtifactRef(digest, len(data))

    def put_file(self, path: str | Path, context: ArtifactContext | None = None) -> ArtifactRef:
        return self.put_bytes(Path(path).read_bytes(), context)

    def locate(self, digest: str, context: ArtifactContext | None = None) -> EncryptedRef:
        """Return the encrypted object that contains ``digest`` in ``context``."""
        context = context or self.default_context(digest)
        found = self._index.read(self._key(digest, context))
        if found is None:
            raise NotFoundError(
                f"Artifact {digest} not found for {context.artifact_id!r} in project "
                f"{context.project!r} of the artifact store {mask_url_passwords(self.url)}.",
                digest=digest,
                artifact_id=context.artifact_id,
            )
        return EncryptedRef(digest, found[0], found[1])

    def exists(self, digest: str, context: ArtifactContext | None = None) -> bool:
        try:
            ref = self.locate(digest, context)
        except NotFoundError:
            return False
        return self.blobs.exists(ref.blob_digest)

    def get_bytes(self, digest: str, context: ArtifactContext | None = None) -> bytes:
        """Decrypt an artifact and check its plaintext SHA-256; ``IntegrityError`` if changed."""
        context = context or self.default_context(digest)
        ref = self.locate(digest, context)
        try:
            return self.encrypted.get_bytes(ref, context)
        except IntegrityError as exc:
            logger.error(
                "artifact failed verification digest=%s artifact_id=%s blob=%s",
                digest,
                context.artifact_id,
                ref.blob_digest,
            )
            raise IntegrityError(
                f"Artifact {digest} ({context.artifact_id!r}) failed verification and was not "
                f"read: {exc.message}",
                digest=digest,
                artifact_id=context.artifact_id,
            ) from exc

    def get_to_file(
        self, digest: str, destination: str | Path, context: ArtifactContext | None = None
    ) -> Path:
        """Write a verified plaintext copy of an artifact to a local file (mode 0600), via rename."""
        destination = Path(destination)
        write_private(destination, self.get_bytes(digest, context))
        return destination
