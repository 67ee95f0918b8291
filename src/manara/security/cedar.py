"""Cedar policy decision point: roles per project plus attribute conditions.

The policy text is parsed once per ``CedarPolicy``. Each decision builds the
request's few entities (see ``manara.security.cedar_entities``) and passes
them to the Cedar engine through cedarpy. Cedar's semantics give deny by default and an
explicit ``forbid`` that wins over every ``permit``. Manara adds one rule:
a policy that fails to evaluate (for example, it reads an attribute the
request lacks) denies the request, because Cedar itself would skip a
failing ``forbid`` and so could allow what the policy meant to refuse.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cedarpy

from manara.errors import InvalidInputError
from manara.security.cedar_entities import action_group, build_request, roles_by_project
from manara.security.policy import Decision, Resource
from manara.security.principal import Principal

logger = logging.getLogger(__name__)

DEFAULT_POLICY_PATH = Path(__file__).with_name("default.cedar")

NO_MATCHING_PERMIT = "no_matching_permit"
POLICY_ERROR = "policy_error"
DECISION_CACHE_SIZE = 4096


@dataclass(frozen=True)
class ParsedPolicies:
    policy_set: cedarpy.PolicySet
    ids: dict[str, str]
    """Cedar's positional policy id (``policy0``...) to the policy's ``@id`` annotation."""
    effects: dict[str, str]
    """``@id`` to ``permit`` or ``forbid``."""


def parse_policies(text: str, source: str) -> ParsedPolicies:
    """Parse Cedar policy text; raise ``InvalidInputError`` with the parser's message."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError(
            f"Policy text from {source} is empty. Write at least one Cedar permit policy."
        )
    try:
        policy_set = cedarpy.PolicySet.from_str(text)
        est = json.loads(cedarpy.policies_to_json_str(text))
    except ValueError as exc:
        raise InvalidInputError(
            f"Invalid Cedar policy text from {source}: {exc}. Fix the policy and apply it again."
        ) from exc
    if est.get("templates"):
        raise InvalidInputError(
            f"Policy text from {source} contains templates (?principal or ?resource slots); "
            "Manara applies only static policies. Write the principal or resource out."
        )
    ids: dict[str, str] = {}
    effects: dict[str, str] = {}
    for cedar_id, policy in est["staticPolicies"].items():
        annotation = policy.get("annotations", {}).get("id")
        if not annotation:
            raise InvalidInputError(
                f"A policy in {source} has no @id annotation ({policy['effect']} policy number "
                f'{cedar_id.removeprefix("policy")}). Add @id("..."): decisions report it.'
            )
        if annotation in effects:
            raise InvalidInputError(
                f"Two policies in {source} share @id({annotation!r}). Give each policy its own id."
            )
        ids[cedar_id] = annotation
        effects[annotation] = policy["effect"]
    return ParsedPolicies(policy_set, ids, effects)


@dataclass(frozen=True)
class Explanation:
    """A decision with what led to it, for ``manara policy check`` and tests."""

    decision: Decision
    action_group: str
    permits: tuple[str, ...]
    """``@id`` of each permit policy that matched."""
    forbids: tuple[str, ...]
    """``@id`` of each forbid policy that matched."""
    errors: tuple[str, ...]
    principal_roles: dict[str, list[str]]
    """Project to the principal's roles there, aliases resolved."""
    request: dict[str, Any] = field(default_factory=dict)
    entities: list[dict[str, Any]] = field(default_factory=list)


class CedarPolicy:
    """A ``PolicyDecisionPoint`` that evaluates one parsed Cedar policy set."""

    def __init__(self, text: str, source: str = "policy text") -> None:
        self.text = text
        self.source = source
        self._parsed = parse_policies(text, source)
        self._decisions: dict[Hashable, Decision] = {}

    @classmethod
    def default(cls) -> CedarPolicy:
        """Load the policy set shipped with Manara (``default.cedar`` beside this module)."""
        return cls(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"), "the default policy")

    @property
    def policy_ids(self) -> dict[str, str]:
        """``@id`` of each policy to its effect, ``permit`` or ``forbid``."""
        return dict(self._parsed.effects)

    def decide(
        self,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, str] | None = None,
    ) -> Decision:
        """Decide one request; a repeated identical request is served from a bounded cache.

        The cache is safe because a decision depends only on its inputs and
        this object's fixed policy set.
        """
        key = _cache_key(principal, action, resource, context)
        cached = self._decisions.get(key)
        if cached is not None:
            return cached
        decision = self.explain(principal, action, resource, context).decision
        if len(self._decisions) >= DECISION_CACHE_SIZE:
            self._decisions.clear()
        self._decisions[key] = decision
        return decision

    def explain(
        self,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, str] | None = None,
    ) -> Explanation:
        request, entities = build_request(principal, action, resource, context)
        result = cedarpy.is_authorized(request, self._parsed.policy_set, entities)
        matched = [
            self._parsed.ids.get(cedar_id, cedar_id) for cedar_id in result.diagnostics.reasons
        ]
        permits = tuple(sorted(m for m in matched if self._parsed.effects.get(m) == "permit"))
        forbids = tuple(sorted(m for m in matched if self._parsed.effects.get(m) == "forbid"))
        errors = tuple(result.diagnostics.errors)
        decision = _decision(result.allowed, permits, forbids, errors)
        return Explanation(
            decision=decision,
            action_group=action_group(action),
            permits=permits,
            forbids=forbids,
            errors=errors,
            principal_roles={p: sorted(r) for p, r in roles_by_project(principal).items()},
            request=request,
            entities=entities,
        )


def _cache_key(
    principal: Principal,
    action: str,
    resource: Resource,
    context: Mapping[str, str] | None,
) -> Hashable:
    memberships = tuple(sorted((p, tuple(sorted(r))) for p, r in principal.memberships.items()))
    return (
        principal.id,
        principal.kind,
        principal.project,
        tuple(sorted(principal.roles)),
        memberships,
        principal.clearance,
        principal.region,
        action,
        resource,
        None if context is None else tuple(sorted(context.items())),
    )


def _decision(
    allowed: bool, permits: tuple[str, ...], forbids: tuple[str, ...], errors: tuple[str, ...]
) -> Decision:
    if errors:
        logger.warning("policy evaluation failed; request denied errors=%s", "; ".join(errors))
        return Decision(False, POLICY_ERROR)
    if forbids:
        return Decision(False, f"forbid:{forbids[0]}")
    if allowed and permits:
        return Decision(True, f"permit:{permits[0]}")
    return Decision(False, NO_MATCHING_PERMIT)
