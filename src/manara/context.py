"""The context of one call: who acts, on which stores, under which settings and clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from manara.clock import Clock
from manara.config import Settings
from manara.errors import NotFoundError
from manara.security.policy import (
    Access,
    Decision,
    PolicyDecisionPoint,
    Resource,
    denied_error,
)
from manara.security.principal import Principal
from manara.stores.artifacts.vault import ArtifactVault
from manara.stores.metadata import MetadataStore

if TYPE_CHECKING:
    from manara.security.audit import AuditLog

PLATFORM_PROJECT = "default"
"""Project whose roles govern workspace-wide resources."""
PLATFORM_TYPES = frozenset(
    {"key", "audit", "audit_log", "policy", "principal", "project", "workspace", "api_key"}
)


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
    workload_region: str | None = None
    """Region the calling workload runs in; policies check it instead of the principal's region."""

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

    def resource(
        self, resource_type: str, resource_id: str = "", access: Access | None = None
    ) -> Resource:
        """Describe a resource to the policy.

        ``access`` gives a stored resource's project, classification and
        allowed regions. Without it, a workspace-wide resource (key, audit
        log, policy, principal, project) belongs to the ``default`` project,
        whose platform admins manage the workspace, and anything else is
        placed in the principal's project, as a resource being created is.
        """
        if access is None:
            project = PLATFORM_PROJECT if resource_type in PLATFORM_TYPES else None
            access = Access(project or self.principal.project)
        return Resource.of(resource_type, resource_id, access)

    def request_attributes(self) -> dict[str, str]:
        """Attributes of the request itself that policies may read, such as ``region``."""
        return {} if self.workload_region is None else {"region": self.workload_region}

    def _decide(self, action: str, resource: Resource) -> Decision:
        attributes = self.request_attributes()
        if not attributes:
            # Policies written before request attributes existed take three arguments.
            return self.policy.decide(self.principal, action, resource)
        return self.policy.decide(self.principal, action, resource, attributes)

    def permits(
        self,
        action: str,
        resource_type: str,
        resource_id: str = "",
        access: Access | None = None,
    ) -> bool:
        """Return whether the policy allows the action; no audit event, no error (for filtering)."""
        resource = self.resource(resource_type, resource_id, access)
        decision = self._decide(action, resource)
        return decision.allowed

    def authorize(
        self,
        action: str,
        resource_type: str,
        resource_id: str = "",
        *,
        access: Access | None = None,
        not_found: NotFoundError | Callable[[], NotFoundError] | None = None,
    ) -> None:
        """Raise unless the policy allows this principal the action; audit every denial.

        With ``not_found``, a principal that may not even read the resource
        gets that error instead of ``PermissionDeniedError``: a resource of
        another project then looks exactly like one that does not exist.
        """
        resource = self.resource(resource_type, resource_id, access)
        decision = self._decide(action, resource)
        if decision.allowed:
            return
        self.record(
            action,
            resource_type,
            resource_id,
            decision="deny",
            reason=decision.reason,
            details={"project": resource.project},
        )
        read = f"{resource_type}.read"
        if not_found is not None and (
            action == read or not self.permits(read, resource_type, resource_id, access)
        ):
            raise not_found if isinstance(not_found, NotFoundError) else not_found()
        raise denied_error(self.principal, action, resource, decision)

    def as_principal(self, principal: Principal) -> Context:
        return replace(self, principal=principal)
