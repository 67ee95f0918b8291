"""The context of one call: who acts, on which stores, under which settings and clock."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from manara.clock import Clock
from manara.config import Settings
from manara.security.policy import PolicyDecisionPoint, Resource, authorize
from manara.security.principal import Principal
from manara.stores.artifacts.vault import ArtifactVault
from manara.stores.metadata import MetadataStore

if TYPE_CHECKING:
    from manara.security.audit import AuditLog


@dataclass(frozen=True)
class Context:
    principal: Principal
    settings: Settings
    metadata: MetadataStore
    artifacts: ArtifactVault
    """Encrypts every artifact at rest; reads decrypt and check the plaintext SHA-256."""
    policy: PolicyDecisionPoint
    clock: Clock
    audit: AuditLog | None = field(default=None, compare=False)
    """The workspace's tamper-evident audit log; ``None`` only in narrow unit tests."""
    request_id: str = ""

    def record(
        self,
        action: str,
        resource_type: str,
        resource_id: str = "",
        *,
        decision: str = "allow",
        reason: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Append a security-relevant event (registration, alias move, denial...) to the audit log."""
        if self.audit is None:
            return
        from manara.security.audit_events import AuditEvent

        self.audit.record(
            AuditEvent(
                principal_id=self.principal.id,
                action=action,
                resource_type=resource_type,
                resource_id=resource_id,
                decision="deny" if decision == "deny" else "allow",
                reason=reason,
                request_id=self.request_id,
                details=details or {},
            )
        )

    def authorize(self, action: str, resource_type: str, resource_id: str = "") -> None:
        """Raise ``PermissionDeniedError`` unless the policy allows this principal the action."""
        resource = Resource(resource_type, resource_id, project=self.principal.project)
        authorize(self.policy, self.principal, action, resource)

    def as_principal(self, principal: Principal) -> Context:
        return replace(self, principal=principal)
