"""Versioned policies: apply, history, audit of changes, the active policy, check and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from manara.cli.main import build_app
from manara.config import Settings
from manara.errors import InvalidInputError, PermissionDeniedError
from manara.ids import new_id
from manara.security.cedar import DEFAULT_POLICY_PATH
from manara.security.policy import Resource
from manara.security.policy_versions import ActivePolicy, PolicyService
from manara.security.principal import Principal
from manara.tracking.service import TrackingService
from manara.workspace import Workspace

DEFAULT_TEXT = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
FREEZE = (
    DEFAULT_TEXT
    + '\n@id("no-new-runs")\nforbid (principal, action == Manara::Action::"run.create", resource);\n'
)


def _engineer(workspace: Workspace) -> Principal:
    principal = Principal(id=new_id(), name="eve", roles=frozenset({"ml-engineer"}))
    return workspace.identities.create_principal(principal, workspace.clock.now())


def test_default_in_force_without_versions(workspace: Workspace) -> None:
    service = PolicyService(workspace.context())
    version, text = service.show()
    assert version is None
    assert text == DEFAULT_TEXT
    assert service.history() == []


def test_apply_versions_and_audits(workspace: Workspace) -> None:
    service = PolicyService(workspace.context())
    first = service.apply(DEFAULT_TEXT, "default.cedar", comment="baseline")
    second = service.apply(FREEZE, "freeze.cedar")
    assert (first.version, second.version) == (1, 2)
    history = service.history()
    assert [item.active for item in history] == [False, True]
    assert history[0].comment == "baseline"
    assert service.show()[1] == FREEZE
    events = workspace.audit.events(action="policy.apply")
    assert [event.resource_id for event in events] == ["1", "2"]
    assert events[1].details["previous_version"] == 1
    assert events[1].details["sha256"] == second.sha256
    assert "no-new-runs" in events[1].details["policies"]


def test_same_text_is_no_new_version(workspace: Workspace) -> None:
    service = PolicyService(workspace.context())
    first = service.apply(DEFAULT_TEXT)
    again = service.apply(DEFAULT_TEXT)
    assert again.version == first.version
    assert len(service.history()) == 1
    assert len(workspace.audit.events(action="policy.apply")) == 1


@pytest.mark.parametrize(
    "text",
    [
        "permit (principal, action, resource) when { principal.x ",
        "permit (principal, action, resource);",
    ],
)
def test_invalid_policy_changes_nothing(workspace: Workspace, text: str) -> None:
    service = PolicyService(workspace.context())
    service.apply(DEFAULT_TEXT)
    with pytest.raises(InvalidInputError, match="bad.cedar"):
        service.apply(text, "bad.cedar")
    assert [item.version for item in service.history()] == [1]
    assert service.show()[1] == DEFAULT_TEXT
    assert len(workspace.audit.events(action="policy.apply")) == 1


def test_apply_needs_admin(workspace: Workspace) -> None:
    service = PolicyService(workspace.context(_engineer(workspace)))
    with pytest.raises(PermissionDeniedError, match="policy.apply"):
        service.apply(FREEZE)
    assert service.history() == []
    denied = workspace.audit.events(action="policy.apply")
    assert [event.decision for event in denied] == ["deny"]


def test_applied_policy_enforced(workspace: Workspace) -> None:
    engineer = workspace.context(_engineer(workspace))
    experiment = TrackingService(engineer).create_experiment("e")
    PolicyService(workspace.context()).apply(FREEZE)
    with pytest.raises(PermissionDeniedError, match="no-new-runs"):
        TrackingService(engineer).create_run(experiment.id)


def test_other_process_picks_up_version(workspace: Workspace) -> None:
    now = [0.0]
    follower = ActivePolicy(workspace.metadata, refresh_seconds=5.0, monotonic=lambda: now[0])
    admin = workspace.local_admin()
    resource = Resource("run", "r", "default")
    assert follower.decide(admin, "run.create", resource).allowed
    PolicyService(workspace.context()).apply(FREEZE)
    now[0] = 1.0
    assert follower.decide(admin, "run.create", resource).allowed, "refreshed too early"
    now[0] = 6.0
    decision = follower.decide(admin, "run.create", resource)
    assert not decision.allowed
    assert decision.reason == "forbid:no-new-runs"


def test_check_explains(workspace: Workspace) -> None:
    _engineer(workspace)
    experiment = TrackingService(workspace.context()).create_experiment(
        "e", classification="confidential"
    )
    service = PolicyService(workspace.context())
    result = service.check("eve", "experiment.read", f"experiment:{experiment.id}")
    assert result.resource_stored
    assert result.resource.classification == "confidential"
    assert not result.explanation.decision.allowed
    assert result.explanation.forbids == ("clearance-below-classification",)
    assert result.explanation.principal_roles == {"default": ["ml-engineer"]}
    allowed = service.check("eve", "run.read", "run:unknown", {"region": "uaenorth"})
    assert allowed.explanation.decision.reason == "permit:ml-engineer-work"
    assert not allowed.resource_stored
    assert allowed.context == {"region": "uaenorth"}


def test_cli_apply_history_check(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MANARA_HOME", str(settings.home))
    monkeypatch.setenv("MANARA_DATABASE_URL", settings.database_url)
    runner = CliRunner()
    app = build_app()
    bad = tmp_path / "bad.cedar"
    bad.write_text("permit (principal, action, resource) when {", encoding="utf-8")
    rejected = runner.invoke(app, ["policy", "apply", str(bad)])
    assert rejected.exit_code == 2, rejected.output
    assert "Invalid Cedar policy" in rejected.output
    good = tmp_path / "freeze.cedar"
    good.write_text(FREEZE, encoding="utf-8")
    applied = runner.invoke(app, ["policy", "apply", str(good), "--comment", "freeze"])
    assert applied.exit_code == 0, applied.output
    assert "version 1" in applied.output
    history = runner.invoke(app, ["policy", "history"])
    assert "freeze" in history.output
    check = runner.invoke(
        app,
        [
            "policy",
            "check",
            "--principal",
            "local-admin",
            "--action",
            "run.create",
            "--resource",
            "run:x",
            "--context",
            "region=uaenorth",
        ],
    )
    assert check.exit_code == 1, check.output
    assert "DENY" in check.output
    assert "forbid:no-new-runs" in check.output
    assert "region=uaenorth" in check.output
    allowed = runner.invoke(
        app,
        [
            "policy",
            "check",
            "--principal",
            "local-admin",
            "--action",
            "run.read",
            "--resource",
            "run:x",
        ],
    )
    assert allowed.exit_code == 0, allowed.output
    assert "permit:platform-admin-all" in allowed.output
