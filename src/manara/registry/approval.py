"""A request to register a model file in a format that can run code when loaded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

ApprovalStatus = Literal["pending", "approved", "rejected"]


@dataclass(frozen=True)
class ArtifactApproval:
    id: str
    digest: str
    """Hex SHA-256 of the exact file that was scanned; only that content may be registered."""
    project: str
    kind: str
    """Kind of pickle content, such as ``a pickle`` or ``a compressed pickle (joblib)``."""
    scan: dict[str, Any]
    """Scanner output: model name, globals imported, the dangerous ones, errors."""
    status: ApprovalStatus
    requested_by: str
    requested_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str = ""

    @property
    def model_name(self) -> str:
        return str(self.scan.get("model", ""))

    @property
    def scan_clean(self) -> bool:
        """True when the scan finished and found no dangerous global."""
        return not self.scan.get("error") and not self.scan.get("dangerous")
