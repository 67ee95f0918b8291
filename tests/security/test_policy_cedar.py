"""Decisions of the Cedar policy decision point with the shipped default policy."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manara.errors import InvalidInputError
from manara.security.cedar import NO_MATCHING_PERMIT, POLICY_ERROR, CedarPolicy
from manara.security.cedar_entities import ROLES, action_group
from manara.security.policy import CLASSIFICATIONS, Resource
from manara.security.principal import Principal

DEFAULT = CedarPolicy.default()


def member(*roles: str, project: str = "alpha", **attributes: str) -> Principal:
    return Principal(id="p1", name="p1", roles=frozenset(roles), project=project, **attributes)  # type: ignore[arg-type]


def allowed(principal: Principal, action: str, resource: Resource | None = None) -> bool:
    target = resource or Resource(action.partition(".")[0], "x1", project="alpha")
    return DEFAULT.decide(principal, action, target).allowed


ROLE_TABLE: list[tuple[str, str, bool]] = [
    ("viewer", "run.read", True),
    ("viewer", "model.read", True),
    ("viewer", "run.update", False),
    ("viewer", "model.invoke", False),
    ("viewer", "audit.read", False),
    ("ml-engineer", "experiment.create", True),
    ("ml-engineer", "run.update", True),
    ("ml-engineer", "artifact.write", True),
    ("ml-engineer", "model.update", True),
    ("ml-engineer", "model.invoke", True),
    ("ml-engineer", "approval.approve", False),
    ("ml-engineer", "policy.apply", False),
    ("ml-engineer", "key.rotate", False),
    ("approver", "approval.approve", True),
    ("approver", "model.read", True),
    ("approver", "model.update", False),
    ("platform-admin", "policy.apply", True),
    ("platform-admin", "key.rotate", True),
    ("platform-admin", "audit.read", True),
    ("platform-admin", "model.delete", True),
    ("admin", "key.destroy", True),
    ("compliance-officer", "consent.update", True),
    ("compliance-officer", "audit.verify", True),
    ("compliance-officer", "run.read", True),
    ("compliance-officer", "run.update", False),
    ("auditor", "audit.read", True),
    ("auditor", "audit.verify", True),
    ("auditor", "run.read", True),
    ("auditor", "consent.update", False),
    ("auditor", "model.update", False),
    ("inference-client", "model.invoke", True),
    ("inference-client", "model.read", True),
    ("inference-client", "run.read", False),
]


@pytest.mark.parametrize(("role", "action", "expected"), ROLE_TABLE)
def test_role_table(role: str, action: str, expected: bool) -> None:
    assert allowed(member(role), action) is expected, (role, action)


def test_permit_reason_names_policy() -> None:
    decision = DEFAULT.decide(member("ml-engineer"), "run.update", Resource("run", "r", "alpha"))
    assert decision.allowed
    assert decision.reason == "permit:ml-engineer-work"


def test_no_role_no_match() -> None:
    decision = DEFAULT.decide(member(), "run.read", Resource("run", "r", "alpha"))
    assert not decision.allowed
    assert decision.reason == NO_MATCHING_PERMIT


def test_role_in_other_project_denied() -> None:
    admin = member("platform-admin", project="beta")
    decision = DEFAULT.decide(admin, "run.read", Resource("run", "r", "alpha"))
    assert not decision.allowed
    assert decision.reason == NO_MATCHING_PERMIT


def test_membership_grants_other_project() -> None:
    principal = Principal(
        id="p", name="p", project="beta", memberships={"alpha": frozenset({"viewer"})}
    )
    assert allowed(principal, "run.read")
    assert not allowed(principal, "run.update")


@pytest.mark.parametrize("clearance", CLASSIFICATIONS)
@pytest.mark.parametrize("classification", CLASSIFICATIONS)
def test_clearance_vs_classification(clearance: str, classification: str) -> None:
    principal = member("platform-admin", clearance=clearance)
    resource = Resource("run", "r", "alpha", classification=classification)
    decision = DEFAULT.decide(principal, "run.read", resource)
    expected = CLASSIFICATIONS.index(clearance) >= CLASSIFICATIONS.index(classification)
    assert decision.allowed is expected
    if not expected:
        assert decision.reason == "forbid:clearance-below-classification"


def test_unknown_classification_denied() -> None:
    principal = member("viewer", clearance="restricted")
    resource = Resource("run", "r", "alpha", classification="top-secret")
    assert not DEFAULT.decide(principal, "run.read", resource).allowed


@pytest.mark.parametrize(
    ("principal_region", "context", "expected"),
    [
        ("uaenorth", None, True),
        ("eastus", None, False),
        (None, None, False),
        ("eastus", {"region": "uaenorth"}, True),
        ("uaenorth", {"region": "eastus"}, False),
    ],
)
def test_region_vs_allowed_regions(
    principal_region: str | None, context: dict[str, str] | None, expected: bool
) -> None:
    principal = member("viewer", region=principal_region)  # type: ignore[arg-type]
    resource = Resource("run", "r", "alpha", allowed_regions=frozenset({"uaenorth", "uaecentral"}))
    decision = DEFAULT.decide(principal, "run.read", resource, context)
    assert decision.allowed is expected, decision
    if not expected:
        assert decision.reason == "forbid:region-not-allowed"


def test_no_allowed_regions_any_region() -> None:
    assert allowed(member("viewer", region="eastus"), "run.read")


def test_explicit_forbid_wins() -> None:
    text = DEFAULT.text + (
        '\n@id("freeze-models")\nforbid (principal, action == Manara::Action::"model.update", '
        "resource);\n"
    )
    admin = member("platform-admin")
    model = Resource("model", "m", "alpha")
    assert DEFAULT.decide(admin, "model.update", model).allowed
    explanation = CedarPolicy(text, "test").explain(admin, "model.update", model)
    assert not explanation.decision.allowed
    assert explanation.decision.reason == "forbid:freeze-models"
    assert explanation.forbids == ("freeze-models",)


def test_evaluation_error_denies() -> None:
    text = (
        '@id("all")\npermit (principal, action, resource);\n'
        '@id("needs-missing")\nforbid (principal, action, resource) when { resource.owner == "x" };\n'
    )
    decision = CedarPolicy(text, "test").decide(member(), "run.read", Resource("run", "r"))
    assert not decision.allowed
    assert decision.reason == POLICY_ERROR


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("permit (principal, action, resource) when { principal.x ", "Invalid Cedar"),
        ("permit (principal, action, resource);", "no @id"),
        (
            '@id("a") permit (principal, action, resource);\n@id("a") forbid (principal, action, resource);',
            "share",
        ),
        ('@id("t") permit (principal == ?principal, action, resource);', "templates"),
    ],
)
def test_invalid_policy_rejected(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        CedarPolicy(text, "test")


@pytest.mark.parametrize(
    ("action", "group"),
    [
        ("run.read", "read"),
        ("run.search", "read"),
        ("run.update", "write"),
        ("model.invoke", "invoke"),
        ("approval.approve", "approve"),
        ("audit.checkpoint", "audit"),
        ("key.read", "read"),
        ("key.rotate", "admin"),
        ("policy.apply", "admin"),
        ("consent.update", "govern"),
    ],
)
def test_action_groups(action: str, group: str) -> None:
    assert action_group(action) == group


def test_cached_decision_matches() -> None:
    principal = member("viewer")
    resource = Resource("run", "r", "alpha")
    first = DEFAULT.decide(principal, "run.read", resource)
    second = DEFAULT.decide(principal, "run.read", resource)
    assert first == second == DEFAULT.explain(principal, "run.read", resource).decision


names = st.text(alphabet="abcdefghij0123456789-", min_size=1, max_size=8)
resources = st.builds(
    Resource,
    type=st.sampled_from(["run", "experiment", "model", "artifact", "key", "audit", "policy"]),
    id=names,
    project=names,
    classification=st.sampled_from([*CLASSIFICATIONS, "unknown"]),
    allowed_regions=st.none() | st.frozensets(names, max_size=3),
)
actions = st.builds(
    lambda t, v: f"{t}.{v}",
    st.sampled_from(["run", "experiment", "model", "artifact", "key", "audit", "policy"]),
    st.sampled_from(["read", "update", "create", "invoke", "approve", "rotate", "apply"]),
)


@settings(max_examples=60, deadline=None)
@given(
    resource=resources,
    action=actions,
    clearance=st.sampled_from(CLASSIFICATIONS),
    region=st.none() | names,
    home=names,
)
def test_no_role_always_denied(
    resource: Resource, action: str, clearance: str, region: str | None, home: str
) -> None:
    principal = Principal(id="p", name="p", project=home, clearance=clearance, region=region)
    assert not DEFAULT.decide(principal, action, resource).allowed


@settings(max_examples=60, deadline=None)
@given(
    resource=resources,
    action=actions,
    roles=st.frozensets(st.sampled_from([*ROLES, "admin"]), max_size=3),
    forbidden_role=st.sampled_from(ROLES),
    forbidden_action=actions,
)
def test_adding_forbid_never_allows(
    resource: Resource,
    action: str,
    roles: frozenset[str],
    forbidden_role: str,
    forbidden_action: str,
) -> None:
    principal = Principal(id="p", name="p", roles=roles, project=resource.project)
    extra = (
        f'\n@id("extra-forbid")\nforbid (principal, action == Manara::Action::"{forbidden_action}", '
        f'resource) when {{ principal in resource.project["{forbidden_role}"] }};\n'
    )
    stricter = CedarPolicy(DEFAULT.text + extra, "test")
    before = DEFAULT.decide(principal, action, resource).allowed
    after = stricter.decide(principal, action, resource).allowed
    assert not (after and not before)
    holds_role = forbidden_role in {"platform-admin" if r == "admin" else r for r in roles}
    if action == forbidden_action and holds_role:
        assert not after
