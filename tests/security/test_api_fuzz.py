"""schemathesis against the control plane's OpenAPI schema: no input may cause a 500.

Every operation is called with generated inputs, authenticated as the
admin, so that requests get past authentication into validation and the
services. The examples are derandomised so that CI runs are repeatable.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from manara.api.app import create_app
from manara.config import Settings
from manara.workspace import Workspace
from tests.sdk_modes import running_server
from tests.security.test_route_guard import seed_resources

_STATE: dict[str, Any] = {}
# Examples per operation and generation mode; about 30 s for the whole schema.
EXAMPLES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 15}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    workspace = Workspace.open(Settings(home=tmp_path_factory.mktemp("fuzz") / "home"))
    _STATE["ids"] = seed_resources(workspace)
    token = workspace.issue_key(workspace.local_admin()).token
    _STATE["headers"] = {"Authorization": f"Bearer {token}"}
    app = create_app(workspace)
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app, headers=_STATE["headers"])
    finally:
        workspace.close()


def _pinned(operation: Any) -> dict[str, str]:
    """Real ids for the operation's id parameters, so that calls reach existing resources."""
    ids: dict[str, str] = _STATE["ids"]
    names = {parameter.name for parameter in operation.path_parameters}
    pinned = {name: ids[name] for name in ("experiment_id", "run_id") if name in names}
    if "name" in names:
        by_name = "/experiments/by-name/" in operation.path
        pinned["name"] = ids["experiment_name"] if by_name else ids["name"]
    return pinned


def _check_operation(operation: Any, mode: GenerationMode, pinned: dict[str, str]) -> None:
    headers = _STATE["headers"]

    @settings(
        max_examples=EXAMPLES[mode],
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(mode, path_parameters=pinned or None))
    def check(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

    check()


def test_no_server_error(api_schema: Any) -> None:
    failures = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20, "the schema lists too few operations"
    for operation in operations:
        runs = [(GenerationMode.POSITIVE, {}), (GenerationMode.POSITIVE, _pinned(operation))]
        runs.append((GenerationMode.NEGATIVE, _pinned(operation)))
        for mode, pinned in runs:
            try:
                _check_operation(operation, mode, pinned)
            except Unsatisfiable:
                # Negative mode has nothing to break in an operation whose only
                # inputs are pinned or free-form strings.
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as exc:  # noqa: BLE001 - every operation's failure is reported
                failures.append(f"{operation.label} ({mode.value}, pinned {sorted(pinned)}): {exc}")
    assert not failures, "\n\n".join(failures)


def test_validation_error_shape(sqlite_workspace: Workspace) -> None:
    token = sqlite_workspace.issue_key(sqlite_workspace.local_admin()).token
    headers = {"Authorization": f"Bearer {token}"}
    body = {"metrics": [{"key": "auc", "value": "secret-value-123"}]}
    with running_server(sqlite_workspace) as url:
        response = httpx.post(f"{url}/api/v1/runs/r1/metrics", json=body, headers=headers)
        bad_version = httpx.get(f"{url}/api/v1/models/m/versions/one", headers=headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert "body.metrics.0.value" in error["message"]
    fields = [item["field"] for item in error["details"]["errors"]]
    assert all(field.startswith("body.metrics.0.value") for field in fields), fields
    assert "secret-value-123" not in response.text, "the rejected value was echoed"
    assert bad_version.status_code == 422, bad_version.text
    assert "path.version" in bad_version.json()["error"]["message"]
