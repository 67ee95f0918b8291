"""Inference is judged against the served model's own classification, and audited."""

from __future__ import annotations

import httpx

from manara.registry.service import RegistryService
from manara.tracking.service import TrackingService
from tests.serving.conftest import Served, running, served_app

RESTRICTED = "churn-restricted"


def _register_restricted(served: Served) -> None:
    ctx = served.workspace.context()
    registry = RegistryService(ctx)
    if RESTRICTED in {model.name for model in registry.list_models()}:
        return
    registry.create_model(RESTRICTED, classification="restricted")
    tracking = TrackingService(ctx)
    run = tracking.create_run(tracking.create_experiment("train-restricted").id)
    registry = RegistryService(ctx, tracking)
    registry.log_model(run.id, served.pipeline, served.frame.head(20))
    registry.create_version(RESTRICTED, run.id)


def _records(served: Served) -> dict[str, object]:
    return {"records": served.frame.head(2).to_dict(orient="records")}


def test_restricted_model_denied(served: Served) -> None:
    _register_restricted(served)
    with running(served_app(served, RESTRICTED)) as port:
        url = f"http://127.0.0.1:{port}/v2/models/{RESTRICTED}/records"
        denied = httpx.post(
            url,
            json=_records(served),
            headers={"Authorization": f"Bearer {served.client_key}"},
        )
        allowed = httpx.post(
            url,
            json=_records(served),
            headers={"Authorization": f"Bearer {served.admin_key}"},
        )

    assert denied.status_code == 403, denied.text
    assert allowed.status_code == 200, allowed.text


def test_denial_and_deploy_audited(served: Served) -> None:
    _register_restricted(served)
    with running(served_app(served, RESTRICTED)) as port:
        for _ in range(3):
            httpx.post(
                f"http://127.0.0.1:{port}/v2/models/{RESTRICTED}/records",
                json=_records(served),
                headers={"Authorization": f"Bearer {served.client_key}"},
            )

    events = list(served.workspace.audit.events())
    deploys = [e for e in events if e.action == "model.deploy"]
    denials = [e for e in events if e.decision == "deny" and e.resource_id == RESTRICTED]
    assert any(e.resource_id == f"{RESTRICTED}:1" for e in deploys)
    assert len(denials) >= 1
    # Repeated refusals inside the cache window are recorded once.
    assert len(denials) <= 2
    assert denials[0].action == "model.invoke"
