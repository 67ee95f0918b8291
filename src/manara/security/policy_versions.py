"""Versioned Cedar policies: the workspace's active policy, apply, history and check.

Each ``apply`` validates the text, stores it as a new version that becomes
the only active one, and records a ``policy.apply`` audit event. A
workspace decides with the active version, or with the policy shipped in
the package while no version is stored. Other processes pick up a newly
applied version within ``refresh_seconds``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from manara.context import Context
from manara.errors import InvalidInputError, NotFoundError
from manara.security.cedar import CedarPolicy, Explanation
from manara.security.policy import Access, Decision, Resource
from manara.security.principal import Principal
from manara.stores.metadata import MetadataStore
from manara.stores.metadata.access import experiment_access, model_access, run_access
from manara.stores.metadata.identities import IdentityRepository
from manara.stores.metadata.policies import PolicyRepository, PolicyVersion, text_digest

logger = logging.getLogger(__name__)

DEFAULT_REFRESH_SECONDS = 5.0


class ActivePolicy:
    """A ``PolicyDecisionPoint`` that follows the active stored policy version."""

    def __init__(
        self,
        metadata: MetadataStore,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repository = PolicyRepository(metadata)
        self._refresh_seconds = refresh_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._digest: str | None = None
        self._policy = CedarPolicy.default()
        self._checked_at = float("-inf")

    def current(self) -> CedarPolicy:
        """Return the policy in force, reloading it when the stored active version changed."""
        now = self._monotonic()
        if now - self._checked_at < self._refresh_seconds:
            return self._policy
        with self._lock:
            if now - self._checked_at >= self._refresh_seconds:
                self._reload()
                self._checked_at = now
        return self._policy

    def refresh(self) -> None:
        """Reload now, for example right after this process applied a version."""
        with self._lock:
            self._reload()
            self._checked_at = self._monotonic()

    def _reload(self) -> None:
        digest = self._repository.active_digest()
        if digest == self._digest:
            return
        if digest is None:
            self._policy, self._digest = CedarPolicy.default(), None
            return
        active = self._repository.active()
        if active is None:
            return
        # A stored version was validated when applied; if it no longer parses
        # (edited in the database), the error propagates and every call fails closed.
        self._policy = CedarPolicy(active.text, f"policy version {active.version}")
        self._digest = active.sha256
        logger.info("policy loaded version=%d sha256=%s", active.version, active.sha256)

    def decide(
        self,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, str] | None = None,
    ) -> Decision:
        return self.current().decide(principal, action, resource, context)

    def explain(
        self,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, str] | None = None,
    ) -> Explanation:
        return self.current().explain(principal, action, resource, context)


@dataclass(frozen=True)
class CheckResult:
    """Result of ``PolicyService.check``: the request as resolved and its explanation."""

    principal: Principal
    action: str
    resource: Resource
    resource_stored: bool
    """False when no stored resource matched and the attributes are assumed."""
    context: dict[str, str]
    explanation: Explanation
    policy_source: str


class PolicyService:
    """Show, apply, list and check policy versions for one Context."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._repository = PolicyRepository(ctx.metadata)

    def show(self) -> tuple[PolicyVersion | None, str]:
        """Return the active version (``None`` for the shipped default) and the text in force."""
        self.ctx.authorize("policy.read", "policy")
        active = self._repository.active()
        if active is None:
            return None, CedarPolicy.default().text
        return active, active.text

    def history(self) -> list[PolicyVersion]:
        self.ctx.authorize("policy.history", "policy")
        return self._repository.history()

    def apply(self, text: str, source: str = "policy text", comment: str = "") -> PolicyVersion:
        """Validate ``text`` and make it the active version; invalid text changes nothing."""
        self.ctx.authorize("policy.apply", "policy")
        policy = CedarPolicy(text, source)
        active = self._repository.active()
        if active is not None and active.sha256 == text_digest(text):
            logger.info("policy unchanged version=%d", active.version)
            return active
        version = self._repository.add_active(
            text, self.ctx.principal.id, self.ctx.clock.now(), comment
        )
        self.ctx.record(
            "policy.apply",
            "policy",
            str(version.version),
            details={
                "sha256": version.sha256,
                "previous_version": None if active is None else active.version,
                "policies": sorted(policy.policy_ids),
                "comment": comment,
            },
        )
        if isinstance(self.ctx.policy, ActivePolicy):
            self.ctx.policy.refresh()
        logger.info("policy applied version=%d sha256=%s", version.version, version.sha256)
        return version

    def check(
        self,
        principal_name: str,
        action: str,
        resource: str,
        context: Mapping[str, str] | None = None,
        project: str | None = None,
        candidate: CedarPolicy | None = None,
    ) -> CheckResult:
        """Evaluate a request as the named principal and explain the decision.

        ``resource`` is ``TYPE:ID``; stored experiments, runs (and their
        artifacts, ``artifact:RUN_ID/PATH``) and models are looked up for
        their real attributes. ``candidate`` checks a policy not yet applied.
        """
        self.ctx.authorize("policy.check", "policy")
        found = IdentityRepository(self.ctx.metadata).find_principal_by_name(principal_name)
        if found is None:
            raise NotFoundError(
                f"Principal {principal_name!r} not found. Check the name, or create it first.",
                principal=principal_name,
            )
        resource_type, resource_id = _parse_resource(resource)
        stored = self._stored_access(resource_type, resource_id, project or found.project)
        resource_access = stored or Access(project or found.project)
        target = Resource.of(resource_type, resource_id, resource_access)
        policy = candidate or self._policy_in_force()
        explanation = policy.explain(found, action, target, context)
        return CheckResult(
            principal=found,
            action=action,
            resource=target,
            resource_stored=stored is not None,
            context=dict(explanation.request.get("context", {})),
            explanation=explanation,
            policy_source=policy.source,
        )

    def _policy_in_force(self) -> CedarPolicy:
        if isinstance(self.ctx.policy, ActivePolicy):
            return self.ctx.policy.current()
        if isinstance(self.ctx.policy, CedarPolicy):
            return self.ctx.policy
        return CedarPolicy.default()

    def _stored_access(self, resource_type: str, resource_id: str, project: str) -> Access | None:
        store = self.ctx.metadata
        try:
            if resource_type == "experiment":
                return experiment_access(store, resource_id)
            if resource_type == "run":
                return run_access(store, resource_id)
            if resource_type == "artifact":
                return run_access(store, resource_id.split("/", 1)[0])
        except NotFoundError:
            return None
        if resource_type in ("model", "model_version"):
            return model_access(store, project, resource_id.split(":", 1)[0])
        return None


def _parse_resource(spec: str) -> tuple[str, str]:
    resource_type, separator, resource_id = spec.partition(":")
    if not separator or not resource_type or not resource_type.replace("_", "").isalpha():
        raise InvalidInputError(
            f"Invalid resource {spec!r}: use TYPE:ID, such as run:0f3c... or model:churn."
        )
    return resource_type, resource_id


def parse_context(pairs: list[str]) -> dict[str, str]:
    """Parse ``key=value`` items of ``--context`` into the request context."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise InvalidInputError(
                f"Invalid context item {pair!r}: use KEY=VALUE, such as region=uaenorth."
            )
        parsed[key] = value
    return parsed
