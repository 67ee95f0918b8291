"""Policy decision point: every service call queries it before acting.

Deny by default: an action is allowed only when a role of the principal
grants it. Actions are ``<resource type>.<verb>`` strings such as
``run.create`` or ``model.invoke``. A role grants an exact action, a
``<type>.*`` wildcard, a ``*.<verb>`` wildcard, or everything with ``*``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from manara.errors import InvalidInputError, PermissionDeniedError
from manara.security.principal import Principal

logger = logging.getLogger(__name__)


PROJECT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

CLASSIFICATIONS: tuple[str, ...] = ("public", "internal", "confidential", "restricted")
"""Data classifications from least to most sensitive; a clearance is one of them too."""


DEFAULT_CLASSIFICATION = "internal"


def check_access(
    project: str, classification: str, allowed_regions: Iterable[str] | None
) -> Access:
    """Validate the access attributes given for a new resource."""
    if not isinstance(project, str) or not PROJECT_PATTERN.match(project):
        raise InvalidInputError(
            f"Invalid project {project!r}: use 1 to 100 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit."
        )
    if classification not in CLASSIFICATIONS:
        raise InvalidInputError(
            f"Invalid classification {classification!r}: use one of {', '.join(CLASSIFICATIONS)}."
        )
    if allowed_regions is None:
        return Access(project, classification)
    if isinstance(allowed_regions, str) or not all(
        isinstance(region, str) and region for region in allowed_regions
    ):
        raise InvalidInputError(
            f"Invalid allowed_regions {allowed_regions!r}: pass a list of region names, "
            "such as ['uaenorth'], or None for no restriction."
        )
    return Access(project, classification, frozenset(allowed_regions))


@dataclass(frozen=True)
class Access:
    """Access attributes of a stored resource: its project, classification and allowed regions."""

    project: str
    classification: str = "internal"
    allowed_regions: frozenset[str] | None = None
    """Regions the resource may be used from; ``None`` means no restriction."""


@dataclass(frozen=True)
class Resource:
    """The target of an action: a type, an id when there is one, and its access attributes."""

    type: str
    id: str = ""
    project: str = "default"
    classification: str = "internal"
    allowed_regions: frozenset[str] | None = None

    @classmethod
    def of(cls, resource_type: str, resource_id: str, access: Access) -> Resource:
        return cls(
            resource_type,
            resource_id,
            project=access.project,
            classification=access.classification,
            allowed_regions=access.allowed_regions,
        )


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    """Machine-readable reason code, such as ``role_grant`` or ``no_matching_grant``."""


class PolicyDecisionPoint(Protocol):
    def decide(
        self,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, str] | None = None,
    ) -> Decision:
        """Decide one request; ``context`` contains request attributes such as a workload ``region``."""
        ...


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

    def decide(
        self,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, str] | None = None,
    ) -> Decision:
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
        raise denied_error(principal, action, resource, decision)


def denied_error(
    principal: Principal, action: str, resource: Resource, decision: Decision
) -> PermissionDeniedError:
    """Log a denial and return the error that reports it, with the decision's reason code."""
    logger.info(
        "denied action=%s resource=%s:%s project=%s principal=%s reason=%s",
        action,
        resource.type,
        resource.id,
        resource.project,
        principal.id,
        decision.reason,
    )
    return PermissionDeniedError(
        f"Principal {principal.name!r} may not perform {action!r} on "
        f"{resource.type} {resource.id!r} ({decision.reason}). Ask an admin for a role "
        "that grants it.",
        action=action,
        reason=decision.reason,
    )
