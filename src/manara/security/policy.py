"""Policy decision point: every service call asks it before acting.

Deny by default: an action is allowed only when a role of the principal
grants it. Actions are ``<resource type>.<verb>`` strings such as
``run.create`` or ``model.invoke``. A role grants an exact action, a
``<type>.*`` wildcard, a ``*.<verb>`` wildcard, or everything with ``*``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from manara.errors import PermissionDeniedError
from manara.security.principal import Principal

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resource:
    """What an action targets: a type and, when there is one, an id."""

    type: str
    id: str = ""
    project: str = "default"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    """Machine-readable reason code, such as ``role_grant`` or ``no_matching_grant``."""


class PolicyDecisionPoint(Protocol):
    def decide(self, principal: Principal, action: str, resource: Resource) -> Decision: ...


DEFAULT_ROLE_GRANTS: Mapping[str, frozenset[str]] = {
    "admin": frozenset({"*"}),
    "ml-engineer": frozenset(
        {"experiment.*", "run.*", "artifact.*", "model.*", "dataset.*", "drift.*"}
    ),
    "viewer": frozenset({"*.read"}),
    "inference-client": frozenset({"model.invoke", "model.read"}),
}


def _grant_matches(grant: str, action: str) -> bool:
    if grant in ("*", action):
        return True
    resource_type, _, verb = action.partition(".")
    return grant in (f"{resource_type}.*", f"*.{verb}")


class RoleBasedPolicy:
    """Role grants within the principal's project; no matching grant means deny."""

    def __init__(self, role_grants: Mapping[str, frozenset[str]] = DEFAULT_ROLE_GRANTS) -> None:
        self._role_grants = role_grants

    def decide(self, principal: Principal, action: str, resource: Resource) -> Decision:
        if resource.project != principal.project:
            return Decision(False, "other_project")
        for role in principal.roles:
            grants = self._role_grants.get(role, frozenset())
            if any(_grant_matches(grant, action) for grant in grants):
                return Decision(True, "role_grant")
        return Decision(False, "no_matching_grant")


def authorize(
    policy: PolicyDecisionPoint, principal: Principal, action: str, resource: Resource
) -> None:
    """Raise ``PermissionDeniedError`` unless the policy allows the action."""
    decision = policy.decide(principal, action, resource)
    if not decision.allowed:
        logger.info(
            "denied action=%s resource=%s:%s principal=%s reason=%s",
            action,
            resource.type,
            resource.id,
            principal.id,
            decision.reason,
        )
        raise PermissionDeniedError(
            f"Principal {principal.name!r} may not perform {action!r} on "
            f"{resource.type} {resource.id!r} ({decision.reason}). Ask an admin for a role "
            "that grants it.",
            action=action,
            reason=decision.reason,
        )
