"""EncryptedArtifactStore: envelope-encrypted artifacts on a content-addressed store.

An envelope (``manara.security.envelope``) is split in two. The body
(ciphertext and tag) goes to the ``ArtifactStore`` under its SHA-256, and
the header (wrapped data key, nonce, context) goes to a side table of
small files, ``<header root>/<first two hex digits>/<body digest>.hdr``,
by default ``<artifact root>/envelope-headers``.

Why a side table rather than the whole envelope in the content-addressed
store: re-wrapping for a key rotation changes only the header. With the
header inside the blob, every rotation would give every object a new
digest, every reference held by the registry or by runs would have to be
rewritten, and the old blobs would stay behind under the old key (the
store has no delete). With the side table the body digest, and so every
``EncryptedRef``, stays the same across rotations, and ``rewrap_all`` can
find every encrypted object by listing the table. The cost is a second
place to back up: an object whose header is lost cannot be decrypted,
just as if its KEK were destroyed. ``export_envelope`` returns the whole
self-contained envelope for backups and transfers.

Header files are replaced atomically (fsync and rename on a local folder,
a single object write elsewhere), so a crash during a re-wrap leaves the
old or the new header, both valid while the old KEK version is enabled.
The header does not contain the plaintext digest, so the side table
cannot confirm a guess of the plaintext.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from manara.errors import IntegrityError, ManaraError, NotFoundError
from manara.security import envelope
from manara.security.envelope import ArtifactContext, EnvelopeHeader
from manara.security.keyfiles import atomic_write
from manara.security.keys.base import KeyProvider
from manara.security.redaction import mask_url_passwords
from manara.stores.artifacts.store import ArtifactStore, check_digest

logger = logging.getLogger(__name__)

HEADER_SUFFIX = ".hdr"


@dataclass(frozen=True)
class EncryptedRef:
    """A reference to an encrypted artifact; stable across key rotations."""

    plaintext_digest: str
    """Hex SHA-256 of the plaintext, checked after every decryption."""
    blob_digest: str
    """Hex SHA-256 of the stored ciphertext body, its address in the artifact store."""
    size: int
    """Plaintext size in bytes."""


@dataclass
class RewrapReport:
    """Result of ``rewrap_all``; the blob digests of all objects are unchanged."""

    rewrapped: list[str] = field(default_factory=list)
    already_current: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    """Blob digest to the error message of each object that could not be re-wrapped."""


class HeaderTable:
    """Envelope headers keyed by body digest, on a local folder or any fsspec URL."""

    def __init__(self, root: str, **storage_options: Any) -> None:
        self._fs, path = fsspec.core.url_to_fs(root, **storage_options)
        self._root = path.rstrip("/")
        self._local = isinstance(self._fs, LocalFileSystem)
        self.url = root

    def _path(self, digest: str) -> str:
        check_digest(digest)
        return f"{self._root}/{digest[:2]}/{digest}{HEADER_SUFFIX}"

    def write(self, digest: str, header: bytes) -> None:
        path = self._path(digest)
        if self._local:
            atomic_write(Path(path), header)
            return
        tmp = f"{self._root}/tmp/{uuid.uuid4().hex}"
        self._fs.pipe_file(tmp, header)
        self._fs.mv(tmp, path)

    def read(self, digest: str) -> bytes:
        try:
            data: bytes = self._fs.cat_file(self._path(digest))
        except FileNotFoundError as exc:
            raise NotFoundError(
                f"No envelope header for encrypted artifact {digest} in {mask_url_passwords(self.url)}; the "
                "object cannot be decrypted without it. Restore the header table from a "
                "backup.",
                digest=digest,
            ) from exc
        return data

    def digests(self) -> Iterator[str]:
        """Yield the body digest of every stored header."""
        if not self._fs.exists(self._root):
            return
        for path in sorted(self._fs.find(self._root)):
            name = str(path).rsplit("/", 1)[-1]
            if name.endswith(HEADER_SUFFIX) and not str(path).startswith(f"{self._root}/tmp/"):
                yield name[: -len(HEADER_SUFFIX)]


class EncryptedArtifactStore:
    """Encrypts artifacts on write and decrypts and verifies them on read."""

    def __init__(
        self,
        artifacts: ArtifactStore,
        provider: KeyProvider,
        header_root: str | None = None,
        **storage_options: Any,
    ) -> None:
        self.artifacts = artifacts
        self.provider = provider
        root = header_root or f"{artifacts.url.rstrip('/')}/envelope-headers"
        self.headers = HeaderTable(root, **storage_options)

    def put_bytes(self, data: bytes, context: ArtifactContext) -> EncryptedRef:
        header, body = envelope.split(envelope.encrypt(data, context, self.provider))
        stored = self.artifacts.put_bytes(body)
        # The body goes first: a crash before the header is written leaves an
        # unreadable orphan body, never a header that points at nothing.
        self.headers.write(stored.digest, header)
        plaintext_digest = hashlib.sha256(data).hexdigest()
        logger.info(
            "encrypted artifact stored artifact_id=%s blob=%s kek_version=%d",
            context.artifact_id,
            stored.digest,
            EnvelopeHeader.decode(header)[0].wrapped.version,
        )
        return EncryptedRef(plaintext_digest, stored.digest, len(data))

    def get_bytes(self, ref: EncryptedRef, context: ArtifactContext) -> bytes:
        blob = self.export_envelope(ref)
        data = envelope.decrypt(blob, context, self.provider)
        actual = hashlib.sha256(data).hexdigest()
        if actual != ref.plaintext_digest:
            raise IntegrityError(
                f"Encrypted artifact {ref.blob_digest} decrypted to content with SHA-256 "
                f"{actual}, but the reference expects {ref.plaintext_digest}. It was not "
                "returned; check that the reference points at the right object.",
                digest=ref.blob_digest,
            )
        return data

    def export_envelope(self, ref: EncryptedRef | str) -> bytes:
        """Return the whole envelope (header and body) of one object, for backups."""
        digest = ref if isinstance(ref, str) else ref.blob_digest
        header = self.headers.read(digest)
        return header + self.artifacts.get_bytes(digest)

    def header(self, ref: EncryptedRef | str) -> EnvelopeHeader:
        digest = ref if isinstance(ref, str) else ref.blob_digest
        return EnvelopeHeader.decode(self.headers.read(digest))[0]

    def rewrap(self, ref: EncryptedRef | str, target: KeyProvider | None = None) -> bool:
        """Re-wrap one object's data key under the active KEK version.

        Returns ``False`` when it already is wrapped there. The body is not
        re-encrypted and its digest does not change.
        """
        digest = ref if isinstance(ref, str) else ref.blob_digest
        header_bytes = self.headers.read(digest)
        current = EnvelopeHeader.decode(header_bytes)[0].wrapped
        destination = target or self.provider
        if (
            current.provider == destination.provider
            and current.key_id == destination.key_id
            and current.version == destination.active_version()
        ):
            return False
        self.headers.write(digest, envelope.rewrap_header(header_bytes, self.provider, target))
        return True

    def rewrap_all(
        self, refs: Iterable[EncryptedRef | str] | None = None, target: KeyProvider | None = None
    ) -> RewrapReport:
        """Re-wrap ``refs`` (default: every object in the header table).

        The reference of each object stays valid, because only its header
        changes. An object that fails is recorded in the report and the
        others go on.
        """
        report = RewrapReport()
        digests = (
            self.headers.digests()
            if refs is None
            else (r if isinstance(r, str) else r.blob_digest for r in refs)
        )
        for digest in digests:
            try:
                changed = self.rewrap(digest, target)
            except ManaraError as error:
                logger.error("rewrap failed blob=%s error=%s", digest, error.message)
                report.failed[digest] = error.message
                continue
            (report.rewrapped if changed else report.already_current).append(digest)
        logger.info(
            "rewrap finished rewrapped=%d current=%d failed=%d",
            len(report.rewrapped),
            len(report.already_current),
            len(report.failed),
        )
        return report

    def count_by_version(self) -> Counter[int]:
        """Count the objects whose data key is wrapped under each version of this KEK."""
        counts: Counter[int] = Counter()
        provider, key_id = self.provider.provider, self.provider.key_id
        for digest in self.headers.digests():
            wrapped = self.header(digest).wrapped
            if wrapped.provider == provider and wrapped.key_id == key_id:
                counts[wrapped.version] += 1
        return counts
