"""Translate Manara principals, actions and resources into a Cedar request.

A principal's roles become its parents (``Manara::Role::"<project>/<role>"``)
and each project entity names its role entities in attributes, so a policy
checks "has role R in the resource's project" as
``principal in resource.project["R"]``. Clearance and classification become
integers so that Cedar can compare them with ``>=``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from manara.security.policy import CLASSIFICATIONS, Resource
from manara.security.principal import Principal

NAMESPACE = "Manara"

ROLES: tuple[str, ...] = (
    "viewer",
    "ml-engineer",
    "approver",
    "platform-admin",
    "compliance-officer",
    "auditor",
    "inference-client",
)
ROLE_ALIASES: Mapping[str, str] = {"admin": "platform-admin"}
"""Older role names and the role they stand for."""

ACTION_GROUPS: tuple[str, ...] = ("read", "write", "invoke", "approve", "govern", "audit", "admin")

READ_VERBS = frozenset({"read", "list", "search", "get", "show", "history", "check", "verify"})
APPROVE_VERBS = frozenset({"approve", "reject", "decide"})
ADMIN_TYPES = frozenset({"key", "principal", "project", "workspace", "api_key", "token"})
AUDIT_TYPES = frozenset({"audit", "audit_log"})
GOVERN_TYPES = frozenset(
    {"classification", "consent", "subject_request", "transfer", "retention", "processing_record"}
)

_TYPE_NAMES: Mapping[str, str] = {"audit": "AuditLog", "audit_log": "AuditLog"}

# Levels for an unknown clearance or classification: below and above every real one,
# so that a misspelt value denies instead of granting.
_UNKNOWN_CLEARANCE = -1
_UNKNOWN_CLASSIFICATION = len(CLASSIFICATIONS)


def action_group(action: str) -> str:
    """Return the action group (see ``ACTION_GROUPS``) that ``<type>.<verb>`` belongs to.

    Reads of workspace-wide metadata (key versions, principals, the policy
    text) are ``read``; changing them is ``admin``.
    """
    resource_type, _, verb = action.partition(".")
    if resource_type in AUDIT_TYPES:
        return "audit"
    if verb == "invoke":
        return "invoke"
    if verb in APPROVE_VERBS:
        return "approve"
    if verb in READ_VERBS:
        return "read"
    if resource_type in ADMIN_TYPES or resource_type == "policy":
        return "admin"
    return "govern" if resource_type in GOVERN_TYPES else "write"


def entity_type(resource_type: str) -> str:
    """Cedar type of a Manara resource type: ``model_version`` -> ``Manara::ModelVersion``."""
    name = _TYPE_NAMES.get(resource_type)
    if name is None:
        name = "".join(part.capitalize() for part in resource_type.split("_") if part)
    return f"{NAMESPACE}::{name or 'Resource'}"


def level(value: str, unknown: int) -> int:
    return CLASSIFICATIONS.index(value) if value in CLASSIFICATIONS else unknown


def roles_by_project(principal: Principal) -> dict[str, frozenset[str]]:
    """Return the principal's roles in each project, with aliases resolved.

    The home project's roles are ``principal.roles``. Roles in other
    projects come from ``principal.memberships``.
    """
    raw: dict[str, set[str]] = {principal.project: set(principal.roles)}
    for project, roles in principal.memberships.items():
        raw.setdefault(project, set()).update(roles)
    return {
        project: frozenset(ROLE_ALIASES.get(role, role) for role in roles)
        for project, roles in raw.items()
        if roles
    }


def _uid(entity: str, entity_id: str) -> dict[str, str]:
    return {"type": entity, "id": entity_id}


def _ref(entity: str, entity_id: str) -> dict[str, dict[str, str]]:
    return {"__entity": _uid(entity, entity_id)}


def principal_uid(principal: Principal) -> dict[str, str]:
    kind = "ServiceAccount" if principal.kind == "service" else "User"
    return _uid(f"{NAMESPACE}::{kind}", principal.id)


def action_uid(action: str) -> dict[str, str]:
    return _uid(f"{NAMESPACE}::Action", action)


def resource_uid(resource: Resource) -> dict[str, str]:
    return _uid(entity_type(resource.type), resource.id or "*")


def _principal_entity(principal: Principal) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "name": principal.name,
        "clearance": level(principal.clearance, _UNKNOWN_CLEARANCE),
    }
    if principal.region:
        attrs["region"] = principal.region
    parents = [
        _uid(f"{NAMESPACE}::Role", f"{project}/{role}")
        for project, roles in sorted(roles_by_project(principal).items())
        for role in sorted(roles)
    ]
    return {"uid": principal_uid(principal), "attrs": attrs, "parents": parents}


def _project_attrs(project: str) -> dict[str, Any]:
    return {role: _ref(f"{NAMESPACE}::Role", f"{project}/{role}") for role in ROLES}


def _resource_entities(resource: Resource) -> list[dict[str, Any]]:
    project_uid = _uid(f"{NAMESPACE}::Project", resource.project)
    attrs: dict[str, Any] = {
        "project": {"__entity": project_uid},
        "classification": level(resource.classification, _UNKNOWN_CLASSIFICATION),
    }
    if resource.allowed_regions is not None:
        attrs["allowed_regions"] = sorted(resource.allowed_regions)
    uid = resource_uid(resource)
    if uid == project_uid:
        # The resource is the project itself: one entity carries both sets of attributes.
        return [{"uid": uid, "attrs": {**_project_attrs(resource.project), **attrs}, "parents": []}]
    return [
        {"uid": project_uid, "attrs": _project_attrs(resource.project), "parents": []},
        {"uid": uid, "attrs": attrs, "parents": [project_uid]},
    ]


def build_request(
    principal: Principal,
    action: str,
    resource: Resource,
    context: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return the Cedar request and its entities for one authorisation question."""
    request_context = dict(context or {})
    request_context.setdefault("region", principal.region or "")
    entities = [
        _principal_entity(principal),
        {
            "uid": action_uid(action),
            "attrs": {},
            "parents": [action_uid(action_group(action))],
        },
        *_resource_entities(resource),
    ]
    request = {
        "principal": principal_uid(principal),
        "action": action_uid(action),
        "resource": resource_uid(resource),
        "context": request_context,
    }
    return request, entities
