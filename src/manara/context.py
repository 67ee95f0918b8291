"""The context of one call: who acts, on which stores, under which settings and clock."""

from __future__ import annotations

from dataclasses import dataclass, replace

from manara.clock import Clock
from manara.config import Settings
from manara.security.policy import PolicyDecisionPoint, Resource, authorize
from manara.security.principal import Principal
from manara.stores.artifacts import ArtifactStore
from manara.stores.metadata import MetadataStore


@dataclass(frozen=True)
class Context:
    principal: Principal
    settings: Settings
    metadata: MetadataStore
    artifacts: ArtifactStore
    policy: PolicyDecisionPoint
    clock: Clock

    def authorize(self, action: str, resource_type: str, resource_id: str = "") -> None:
        """Raise ``PermissionDeniedError`` unless the policy allows this principal the action."""
        resource = Resource(resource_type, resource_id, project=self.principal.project)
        authorize(self.policy, self.principal, action, resource)

    def as_principal(self, principal: Principal) -> Context:
        return replace(self, principal=principal)
