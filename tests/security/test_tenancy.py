"""Tenant isolation: a principal of project beta probing project alpha's resources.

Every probe must look exactly like a probe of an id that does not exist,
through the services and through the REST API, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import httpx
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from manara.errors import NotFoundError, PermissionDeniedError
from manara.ids import new_id
from manara.registry.service import RegistryService
from manara.security.principal import Principal
from manara.tracking.entities import Metric
from manara.tracking.service import TrackingService
from manara.workspace import Workspace
from tests.sdk_modes import running_server


@dataclass(frozen=True)
class Alpha:
    """What the owner in project alpha created."""

    owner: Principal
    experiment_id: str
    run_id: str
    model: str


def _principal(
    workspace: Workspace, name: str, project: str, *roles: str, **extra: str
) -> Principal:
    principal = Principal(id=new_id(), name=name, roles=frozenset(roles), project=project, **extra)  # type: ignore[arg-type]
    return workspace.identities.create_principal(principal, workspace.clock.now())


def _seed_alpha(workspace: Workspace) -> Alpha:
    owner = _principal(workspace, "alice", "alpha", "ml-engineer", clearance="restricted")
    ctx = workspace.context(owner)
    tracking = TrackingService(ctx)
    experiment = tracking.create_experiment("churn")
    run = tracking.create_run(experiment.id)
    tracking.log_metrics(run.id, [Metric("auc", 0.9, step=1)])
    tracking.log_artifact(run.id, "notes.txt", b"alpha secret")
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [1.0, 0.0, 1.0, 0.0]})
    model = LogisticRegression().fit(frame, [0, 0, 1, 1])
    registry = RegistryService(ctx, tracking)
    registry.log_model(run.id, model, frame)
    registry.create_version("churn-model", run.id)
    registry.set_alias("churn-model", "champion", 1)
    return Alpha(owner, experiment.id, run.id, "churn-model")


@pytest.fixture
def alpha(workspace: Workspace) -> Alpha:
    return _seed_alpha(workspace)


@pytest.fixture
def intruder(workspace: Workspace) -> Principal:
    """An engineer and platform admin of project beta, with the highest clearance."""
    return _principal(
        workspace, "mallory", "beta", "ml-engineer", "platform-admin", clearance="restricted"
    )


def _message(call: object) -> tuple[str, dict[str, object]]:
    assert callable(call)
    with pytest.raises(NotFoundError) as caught:
        call()
    return caught.value.message, caught.value.details


def test_run_reads_hidden(workspace: Workspace, alpha: Alpha, intruder: Principal) -> None:
    tracking = TrackingService(workspace.context(intruder))
    unknown = new_id()
    probes = {
        "get_run": lambda run_id: tracking.get_run(run_id),
        "metrics": lambda run_id: tracking.get_metric_history(run_id, "auc"),
        "artifact": lambda run_id: tracking.get_artifact(run_id, "notes.txt"),
        "log_params": lambda run_id: tracking.log_params(run_id, {"a": 1}),
        "set_status": lambda run_id: tracking.set_run_status(run_id, "KILLED"),
    }
    for name, probe in probes.items():
        hidden, hidden_details = _message(lambda probe=probe: probe(alpha.run_id))
        missing, _ = _message(lambda probe=probe: probe(unknown))
        assert hidden == missing.replace(unknown, alpha.run_id), name
        assert hidden_details == {"run_id": alpha.run_id}, name


def test_experiment_reads_hidden(workspace: Workspace, alpha: Alpha, intruder: Principal) -> None:
    tracking = TrackingService(workspace.context(intruder))
    unknown = new_id()
    hidden, _ = _message(lambda: tracking.get_experiment(alpha.experiment_id))
    missing, _ = _message(lambda: tracking.get_experiment(unknown))
    assert hidden == missing.replace(unknown, alpha.experiment_id)
    create_hidden, _ = _message(lambda: tracking.create_run(alpha.experiment_id))
    create_missing, _ = _message(lambda: tracking.create_run(unknown))
    assert create_hidden == create_missing.replace(unknown, alpha.experiment_id)
    with pytest.raises(NotFoundError):
        tracking.get_experiment_by_name("churn")


def test_lists_and_search_empty(workspace: Workspace, alpha: Alpha, intruder: Principal) -> None:
    tracking = TrackingService(workspace.context(intruder))
    registry = RegistryService(workspace.context(intruder))
    assert tracking.list_experiments() == []
    assert tracking.search_runs() == []
    assert tracking.search_runs([alpha.experiment_id]) == []
    assert tracking.search_runs(filter_string="metrics.auc > 0") == []
    assert registry.list_models() == []
    owner_tracking = TrackingService(workspace.context(alpha.owner))
    assert [run.id for run in owner_tracking.search_runs()] == [alpha.run_id]


def test_model_reads_hidden(workspace: Workspace, alpha: Alpha, intruder: Principal) -> None:
    registry = RegistryService(workspace.context(intruder))
    probes = {
        "get_model": lambda name: registry.get_model(name),
        "versions": lambda name: registry.list_versions(name),
        "version": lambda name: registry.get_version(name, 1),
        "alias": lambda name: registry.resolve(f"{name}@champion"),
        "latest": lambda name: registry.resolve(name),
        "artifact": lambda name: registry.read_artifact(name, 1, "model"),
        "set_alias": lambda name: registry.set_alias(name, "stolen", 1),
        "delete_alias": lambda name: registry.delete_alias(name, "champion"),
    }
    for name, probe in probes.items():
        hidden, _ = _message(lambda probe=probe: probe(alpha.model))
        missing, _ = _message(lambda probe=probe: probe("no-such-model"))
        assert hidden == missing.replace("no-such-model", alpha.model), name
    owner = RegistryService(workspace.context(alpha.owner))
    assert owner.resolve(f"{alpha.model}@champion").version == 1


def test_same_name_other_project(workspace: Workspace, alpha: Alpha, intruder: Principal) -> None:
    tracking = TrackingService(workspace.context(intruder))
    mine = tracking.create_experiment("churn")
    assert mine.project == "beta"
    assert tracking.get_experiment_by_name("churn").id == mine.id
    assert [item.id for item in tracking.list_experiments()] == [mine.id]


def test_denials_audited(workspace: Workspace, alpha: Alpha, intruder: Principal) -> None:
    tracking = TrackingService(workspace.context(intruder))
    with pytest.raises(NotFoundError):
        tracking.get_run(alpha.run_id)
    denials = [
        event
        for event in workspace.audit.events(principal_id=intruder.id)
        if event.decision == "deny"
    ]
    assert [event.action for event in denials] == ["run.read"]
    assert denials[0].resource_id == alpha.run_id
    assert denials[0].reason == "no_matching_permit"
    assert denials[0].details["project"] == "alpha"


def test_reader_gets_denied_not_hidden(workspace: Workspace, alpha: Alpha) -> None:
    viewer = _principal(workspace, "victor", "alpha", "viewer")
    tracking = TrackingService(workspace.context(viewer))
    assert tracking.get_run(alpha.run_id).id == alpha.run_id
    with pytest.raises(PermissionDeniedError, match="run.update"):
        tracking.log_params(alpha.run_id, {"a": 1})


def test_membership_reads_other_project(workspace: Workspace, alpha: Alpha) -> None:
    guest = replace(
        _principal(workspace, "gina", "beta", "ml-engineer"),
        memberships={"alpha": frozenset({"viewer"})},
    )
    tracking = TrackingService(workspace.context(guest))
    assert tracking.get_run(alpha.run_id).id == alpha.run_id
    assert [item.id for item in tracking.list_experiments()] == [alpha.experiment_id]
    with pytest.raises(PermissionDeniedError):
        tracking.log_params(alpha.run_id, {"a": 1})


def test_clearance_hides_restricted(workspace: Workspace, alpha: Alpha) -> None:
    owner = TrackingService(workspace.context(alpha.owner))
    secret = owner.create_experiment("secret", classification="restricted")
    run = owner.create_run(secret.id)
    low = _principal(workspace, "lee", "alpha", "ml-engineer", clearance="confidential")
    tracking = TrackingService(workspace.context(low))
    with pytest.raises(NotFoundError):
        tracking.get_run(run.id)
    assert [item.id for item in tracking.list_experiments()] == [alpha.experiment_id]
    assert {item.id for item in tracking.search_runs()} == {alpha.run_id}


def test_region_restricts_workload(workspace: Workspace, alpha: Alpha) -> None:
    with pytest.raises(PermissionDeniedError, match="region-not-allowed"):
        TrackingService(workspace.context(alpha.owner)).create_experiment(
            "uae-only", allowed_regions=["uaenorth"]
        )
    engineer = _principal(workspace, "rana", "alpha", "ml-engineer", region="uaenorth")
    ctx = workspace.context(engineer)
    local = TrackingService(ctx).create_experiment("uae-only", allowed_regions=["uaenorth"])
    assert TrackingService(ctx).get_experiment(local.id).id == local.id
    abroad = replace(ctx, workload_region="eastus")
    with pytest.raises(NotFoundError):
        TrackingService(abroad).get_experiment(local.id)
    assert [item.id for item in TrackingService(abroad).list_experiments()] == [alpha.experiment_id]


@pytest.fixture
def http(workspace: Workspace) -> Iterator[httpx.Client]:
    with running_server(workspace) as url, httpx.Client(base_url=url) as session:
        yield session


def test_rest_probes_404(
    http: httpx.Client, workspace: Workspace, alpha: Alpha, intruder: Principal
) -> None:
    headers = {"Authorization": f"Bearer {workspace.issue_key(intruder).token}"}
    run, model = alpha.run_id, alpha.model
    probes = [
        ("GET", f"/api/v1/runs/{run}", None),
        ("GET", f"/api/v1/runs/{run}/metrics/auc", None),
        ("GET", f"/api/v1/runs/{run}/artifacts/notes.txt", None),
        ("POST", f"/api/v1/runs/{run}/params", {"params": {"a": "1"}}),
        ("GET", f"/api/v1/experiments/{alpha.experiment_id}", None),
        ("GET", f"/api/v1/models/{model}", None),
        ("GET", f"/api/v1/models/{model}/versions", None),
        ("GET", f"/api/v1/models/{model}/versions/1", None),
        ("GET", f"/api/v1/models/{model}/versions/1/artifacts/model", None),
        ("GET", f"/api/v1/resolve?ref={model}@champion", None),
        ("PUT", f"/api/v1/models/{model}/aliases/stolen", {"version": 1}),
    ]
    for method, path, body in probes:
        response = http.request(method, path, json=body, headers=headers)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "not_found", path
        assert b"alpha secret" not in response.content
    listed = http.get("/api/v1/experiments", headers=headers)
    assert listed.status_code == 200, listed.text
    assert listed.json() == []
    searched = http.post("/api/v1/runs/search", json={}, headers=headers)
    assert searched.status_code == 200, searched.text
    assert searched.json() == {"runs": []}
    models = http.get("/api/v1/models", headers=headers)
    assert models.status_code == 200, models.text
    assert models.json() == []


def test_rest_hidden_equals_missing(
    http: httpx.Client, workspace: Workspace, alpha: Alpha, intruder: Principal
) -> None:
    headers = {"Authorization": f"Bearer {workspace.issue_key(intruder).token}"}
    unknown = new_id()
    hidden = http.get(f"/api/v1/runs/{alpha.run_id}", headers=headers)
    missing = http.get(f"/api/v1/runs/{unknown}", headers=headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.text == missing.text.replace(unknown, alpha.run_id)
    owner_headers = {"Authorization": f"Bearer {workspace.issue_key(alpha.owner).token}"}
    own = http.get(f"/api/v1/runs/{alpha.run_id}", headers=owner_headers)
    assert own.status_code == 200, own.text
