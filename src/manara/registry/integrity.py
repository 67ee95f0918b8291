"""Signed, encrypted model artifacts: what registration records and every load checks.

At registration each artifact of a version (model files, ONNX export,
manifest) is signed with the platform's Ed25519 key (``SigningKeyring``
under ``MANARA_HOME/keys``). The signature covers the plaintext SHA-256
and these fields: the model name, the artifact's role, and its encryption
context (project, artifact id, classification, region). The version's
``metadata["integrity"]`` stores, per role, the context and the signature,
which names its key id.

Every read for a load, a download or a serving start goes through
``VersionVerifier.fetch``. It checks the signature against the trusted
public keys, then decrypts in the signed context and checks the plaintext
digest. A failure raises ``IntegrityError`` and appends an audit event
``artifact.verify`` with decision ``deny``. Its reason is one of these:

* ``unsigned``: no signature is recorded;
* ``bad_signature``: the signature is invalid or made by an untrusted key;
* ``tampered``: the stored bytes, their envelope or their placement changed;
* ``missing``: the object is not in the artifact store.

NOTE: the signature does not cover the version number, which the database
assigns only when the row is inserted. Swapping the artifacts of two
versions of the same model in the database is not detected.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from manara.context import Context
from manara.errors import IntegrityError, InvalidInputError, ManaraError, NotFoundError
from manara.registry.entities import ModelVersion
from manara.security.envelope import ArtifactContext
from manara.security.signing import Signature, SigningKeyring

logger = logging.getLogger(__name__)

INTEGRITY_KEY = "integrity"
FORMAT = 1
VERIFY_ACTION = "artifact.verify"


def signing_keyring(ctx: Context) -> SigningKeyring:
    """Return the workspace's artifact signing keyring (``home/keys/signing.key``)."""
    return SigningKeyring(ctx.settings.home / "keys", ctx.clock)


def signed_fields(model_name: str, role: str, context: ArtifactContext) -> dict[str, str]:
    """Return the metadata that an artifact's signature covers beside its digest."""
    return {"model": model_name, "role": role, **asdict(context)}


def seal_version(
    keyring: SigningKeyring,
    model_name: str,
    artifacts: dict[str, str],
    contexts: dict[str, ArtifactContext],
) -> dict[str, Any]:
    """Sign every artifact of a new version; return the block for ``metadata["integrity"]``."""
    entries: dict[str, Any] = {}
    for role, digest in artifacts.items():
        context = contexts[role]
        signature = keyring.sign_digest(digest, signed_fields(model_name, role, context))
        entries[role] = {"context": asdict(context), "signature": signature.to_dict()}
    return {"format": FORMAT, "key_id": keyring.key_id, "artifacts": entries}


class VersionVerifier:
    """Reads a version's artifacts only after their signature and envelope verify."""

    def __init__(self, ctx: Context, keyring: SigningKeyring | None = None) -> None:
        self._ctx = ctx
        self._keyring = keyring or signing_keyring(ctx)

    def fetch(self, version: ModelVersion, role: str) -> bytes:
        digest = version.artifacts.get(role)
        if digest is None:
            raise NotFoundError(
                f"{version.ref} has no artifact {role!r}. Its artifacts: "
                f"{', '.join(sorted(version.artifacts))}.",
                ref=version.ref,
                role=role,
            )
        context, signature = self._signed_entry(version, role, digest)
        try:
            self._keyring.verify(
                digest, signed_fields(version.model_name, role, context), signature
            )
        except IntegrityError as exc:
            raise self._deny(version, role, digest, "bad_signature", exc.message) from exc
        try:
            return self._ctx.artifacts.get_bytes(digest, context)
        except IntegrityError as exc:
            raise self._deny(version, role, digest, "tampered", exc.message) from exc
        except NotFoundError as exc:
            self._record(version, role, digest, "missing", exc.message)
            raise

    def _signed_entry(
        self, version: ModelVersion, role: str, digest: str
    ) -> tuple[ArtifactContext, Signature]:
        block = version.metadata.get(INTEGRITY_KEY)
        entry = block.get("artifacts", {}).get(role) if isinstance(block, dict) else None
        if not isinstance(entry, dict) or "signature" not in entry:
            raise self._deny(
                version,
                role,
                digest,
                "unsigned",
                f"Artifact {role!r} of {version.ref} has no signature, so its origin cannot be "
                "checked.",
            )
        try:
            context = ArtifactContext(**entry["context"])
            signature = Signature.from_dict(entry["signature"])
        except (TypeError, KeyError, InvalidInputError, IntegrityError) as exc:
            message = exc.message if isinstance(exc, ManaraError) else repr(exc)
            raise self._deny(version, role, digest, "bad_signature", message) from exc
        return context, signature

    def _record(
        self, version: ModelVersion, role: str, digest: str, reason: str, message: str
    ) -> None:
        logger.error(
            "artifact verification failed ref=%s role=%s digest=%s reason=%s",
            version.ref,
            role,
            digest,
            reason,
        )
        self._ctx.record(
            VERIFY_ACTION,
            "model_version",
            version.ref,
            decision="deny",
            reason=reason,
            details={"role": role, "digest": digest, "message": message},
        )

    def _deny(
        self, version: ModelVersion, role: str, digest: str, reason: str, message: str
    ) -> IntegrityError:
        self._record(version, role, digest, reason, message)
        return IntegrityError(
            f"Refused to load artifact {role!r} of {version.ref} ({reason}): {message} "
            "Register the model again from a trusted source, or restore the artifact "
            "store from a backup.",
            ref=version.ref,
            role=role,
            reason=reason,
        )
