"""Registering pickle and joblib files: a scan, then a decision by a second principal.

The registry rejects pickle content by default (``pickle_guard``). For a
model that exists only as a pickle, the path is:

1. ``request`` scans the exact bytes with picklescan and records a pending
   approval bound to their SHA-256 and the model name. A scan that finds a
   dangerous global (``os.system``, ``builtins.eval`` ...) or fails to parse
   rejects the request at once.
2. A different principal allowed ``artifact.approve`` approves or rejects it.
   The requester cannot decide its own request.
3. ``register_file(..., allow_pickle=True)`` unpickles only content whose
   digest has an approved, clean request for that model. The model is then
   stored in the registry's safe formats (skops, ONNX), and the version
   records the approval id, which every load checks again.

Scanners such as picklescan have had documented bypasses, so the scan is
defence in depth and the human approval is the control. Unpickling in
step 3 runs the file's code in the registering process.

Manara loads no PyTorch weights today. Any future loader must call
``torch.load(weights_only=True)``, which refuses arbitrary globals.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import logging
import lzma
import pickle
import zlib
from dataclasses import replace
from importlib.metadata import version as package_version
from typing import Any

from picklescan.scanner import (  # type: ignore[import-untyped]
    SafetyLevel,
    ScanResult,
    scan_pickle_bytes,
    scan_zip_bytes,
)

from manara.context import Context
from manara.errors import (
    ConflictError,
    InvalidInputError,
    PermissionDeniedError,
    UnsafeArtifactError,
)
from manara.ids import new_id
from manara.registry.approval import ApprovalStatus, ArtifactApproval
from manara.registry.entities import ModelVersion
from manara.registry.pickle_guard import pickle_kind
from manara.stores.metadata.approvals import ApprovalRepository

logger = logging.getLogger(__name__)

APPROVE_ACTION = "artifact.approve"
APPROVAL_KEY = "approval_id"
MAX_DECOMPRESSED_BYTES = 4 << 30
"""Decompressed size above which a compressed pickle is rejected, against decompression bombs."""


def _decompress(data: bytes) -> bytes:
    """Return the pickle inside a joblib file compressed with gzip, bz2, xz or zlib."""
    if data[:2] == b"\x1f\x8b":
        stream: Any = gzip.GzipFile(fileobj=io.BytesIO(data))
        out: bytes = stream.read(MAX_DECOMPRESSED_BYTES + 1)
    elif data[:3] == b"BZh":
        out = bz2.BZ2Decompressor().decompress(data, MAX_DECOMPRESSED_BYTES + 1)
    elif data[:6] == b"\xfd7zXZ\x00":
        out = lzma.LZMADecompressor().decompress(data, MAX_DECOMPRESSED_BYTES + 1)
    else:
        out = zlib.decompressobj().decompress(data, MAX_DECOMPRESSED_BYTES + 1)
    if len(out) > MAX_DECOMPRESSED_BYTES:
        raise InvalidInputError(
            f"The compressed pickle expands to more than {MAX_DECOMPRESSED_BYTES} bytes; "
            "it was not scanned."
        )
    return out


def scan(data: bytes, name: str) -> dict[str, Any]:
    """Scan pickle content with picklescan; return a JSON-ready summary."""
    kind = pickle_kind(data) or ""
    try:
        if kind.startswith("a zip archive"):
            result: ScanResult = scan_zip_bytes(io.BytesIO(data), name)
        elif kind.startswith("a compressed pickle"):
            result = scan_pickle_bytes(io.BytesIO(_decompress(data)), name)
        else:
            result = scan_pickle_bytes(io.BytesIO(data), name)
    except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error) as exc:
        return {"scanner": _scanner(), "globals": [], "dangerous": [], "error": repr(exc)}
    found = [{"module": g.module, "name": g.name, "safety": g.safety.value} for g in result.globals]
    dangerous = [
        f"{g.module}.{g.name}" for g in result.globals if g.safety is SafetyLevel.Dangerous
    ]
    return {
        "scanner": _scanner(),
        "globals": found,
        "dangerous": dangerous,
        "error": "the scanner could not parse the file" if result.scan_err else "",
    }


def _scanner() -> str:
    return f"picklescan {package_version('picklescan')}"


def unpickle(data: bytes) -> Any:
    """Load approved pickle or joblib content; this runs the code it contains."""
    if pickle_kind(data) == "a compressed pickle (joblib)":
        import joblib  # type: ignore[import-untyped]

        return joblib.load(io.BytesIO(data))
    return pickle.loads(data)  # noqa: S301 - only after scan and approval by another principal


class UnsafeRegistrations:
    """Requests, decisions and checks for pickle and joblib model files."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._repository = ApprovalRepository(ctx.metadata)

    def request(self, model_name: str, data: bytes, source: str) -> ArtifactApproval:
        kind = pickle_kind(data)
        if kind is None:
            raise InvalidInputError(
                f"{source} contains no pickle content, so it needs no approval. Register it "
                "with register_file.",
                source=source,
            )
        result = scan(data, source)
        approval = ArtifactApproval(
            id=new_id(),
            digest=hashlib.sha256(data).hexdigest(),
            project=self.ctx.principal.project,
            kind=kind,
            scan={"model": model_name, "source": source, **result},
            status="pending",
            requested_by=self.ctx.principal.id,
            requested_at=self.ctx.clock.now(),
        )
        if not approval.scan_clean:
            reason = result["error"] or f"dangerous globals: {', '.join(result['dangerous'])}"
            approval = _rejected_by_scanner(approval, f"scan flagged {reason}")
        self._repository.create(approval)
        self.ctx.record(
            "artifact.request_approval",
            "artifact_approval",
            approval.id,
            decision="deny" if approval.status == "rejected" else "allow",
            reason="scan_flagged" if approval.status == "rejected" else "",
            details={"model": model_name, "digest": approval.digest, "kind": kind},
        )
        logger.info(
            "unsafe registration requested id=%s model=%s status=%s",
            approval.id,
            model_name,
            approval.status,
        )
        return approval

    def list(self, status: str | None = None) -> list[ArtifactApproval]:
        self.ctx.authorize("model.read", "artifact_approval")
        return self._repository.list_for(self.ctx.principal.project, status)

    def decide(self, approval_id: str, approve: bool, reason: str = "") -> ArtifactApproval:
        """Approve or reject a pending request; the requester may only reject its own."""
        self.ctx.authorize(APPROVE_ACTION, "artifact_approval", approval_id)
        current = self._repository.get(approval_id)
        if current.project != self.ctx.principal.project:
            raise PermissionDeniedError(
                f"Approval {approval_id!r} belongs to another project.", approval_id=approval_id
            )
        if approve:
            self._check_can_approve(current)
        status: ApprovalStatus = "approved" if approve else "rejected"
        decided = self._repository.decide(
            approval_id, status, self.ctx.principal.id, self.ctx.clock.now(), reason
        )
        self.ctx.record(
            APPROVE_ACTION,
            "artifact_approval",
            approval_id,
            reason="approved" if approve else "rejected",
            details={"model": decided.model_name, "digest": decided.digest},
        )
        return decided

    def _check_can_approve(self, approval: ArtifactApproval) -> None:
        if approval.requested_by == self.ctx.principal.id:
            self.ctx.record(
                APPROVE_ACTION,
                "artifact_approval",
                approval.id,
                decision="deny",
                reason="self_approval",
                details={"model": approval.model_name, "digest": approval.digest},
            )
            raise PermissionDeniedError(
                f"Approval {approval.id!r} was requested by this principal, and a request "
                "must be approved by someone else. Ask another approver.",
                approval_id=approval.id,
                reason="self_approval",
            )
        if not approval.scan_clean:
            raise ConflictError(
                f"Approval {approval.id!r} cannot be approved: its scan found "
                f"{approval.scan.get('dangerous') or approval.scan.get('error')}. Save the "
                "model in a safe format (skops, ONNX) instead.",
                approval_id=approval.id,
            )

    def approved_for(self, data: bytes, model_name: str, source: str) -> ArtifactApproval:
        """Return the approval that lets ``data`` be registered as ``model_name``."""
        digest = hashlib.sha256(data).hexdigest()
        for approval in self._repository.approved(digest, self.ctx.principal.project):
            if approval.model_name == model_name and approval.scan_clean:
                return approval
        self.ctx.record(
            "artifact.register",
            "model",
            model_name,
            decision="deny",
            reason="unapproved_pickle",
            details={"digest": digest, "source": source},
        )
        raise UnsafeArtifactError(
            f"Rejected {source}: it is {pickle_kind(data)}, and no approved request with a "
            f"clean scan covers its SHA-256 {digest} for model {model_name!r}. Request one "
            "with request_unsafe_registration and have another principal approve it.",
            artifact=source,
            digest=digest,
        )

    def check_load(self, version: ModelVersion) -> None:
        """Raise ``UnsafeArtifactError`` unless a version built from a pickle is still approved."""
        approval_id = version.metadata.get(APPROVAL_KEY)
        if approval_id is None:
            return
        approval = self._repository.get(str(approval_id))
        if approval.status == "approved" and approval.scan_clean:
            return
        self.ctx.record(
            "artifact.verify",
            "model_version",
            version.ref,
            decision="deny",
            reason="approval_revoked",
            details={"approval_id": approval.id, "status": approval.status},
        )
        raise UnsafeArtifactError(
            f"{version.ref} was built from a pickle whose approval {approval.id!r} is "
            f"{approval.status}; it was not loaded.",
            ref=version.ref,
            approval_id=approval.id,
        )


def _rejected_by_scanner(approval: ArtifactApproval, reason: str) -> ArtifactApproval:
    return replace(
        approval,
        status="rejected",
        decided_by="scanner",
        decided_at=approval.requested_at,
        reason=reason,
    )
