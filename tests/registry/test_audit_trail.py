"""Registrations and alias moves leave events in the tamper-evident audit log."""

from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline

from manara.context import Context
from manara.registry.service import RegistryService


def _actions(ctx: Context) -> list[tuple[str, str, dict[str, Any]]]:
    assert ctx.audit is not None
    return [(e.action, e.resource_id, dict(e.details)) for e in ctx.audit.events()]


def test_registration_audited(
    ctx: Context, register: Any, logistic: tuple[Pipeline, pd.DataFrame]
) -> None:
    version = register("audited", *logistic)
    events = [e for e in _actions(ctx) if e[0] == "model.register"]
    assert len(events) == 1
    assert events[0][1] == version.ref
    assert events[0][2]["flavor"] == "sklearn"


def test_alias_moves_audited(
    ctx: Context,
    registry: RegistryService,
    register: Any,
    logistic: tuple[Pipeline, pd.DataFrame],
) -> None:
    first = register("moving", *logistic)
    second = register("moving", *logistic)
    registry.set_alias("moving", "champion", first.version)
    registry.set_alias("moving", "champion", second.version)
    registry.delete_alias("moving", "champion")

    moves = [e for e in _actions(ctx) if e[0].startswith("model.alias")]
    assert [e[0] for e in moves] == ["model.alias.set", "model.alias.set", "model.alias.delete"]
    assert moves[0][2]["previous_version"] is None
    assert moves[1][2]["version"] == second.version
    assert moves[1][2]["previous_version"] == first.version
    assert ctx.audit is not None
    assert ctx.audit.verify().ok
