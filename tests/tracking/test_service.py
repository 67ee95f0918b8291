"""The tracking service on SQLite and PostgreSQL: rules, errors and storage."""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import event

from manara.clock import FixedClock
from manara.errors import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from manara.security.policy import Decision, Resource, RoleBasedPolicy
from manara.security.principal import Principal
from manara.tracking.datasets import dataset_input
from manara.tracking.entities import Metric
from manara.tracking.service import TrackingService
from manara.workspace import Workspace


def _run_id(tracking: TrackingService, experiment: str = "exp") -> str:
    try:
        found = tracking.get_experiment_by_name(experiment)
    except NotFoundError:
        found = tracking.create_experiment(experiment)
    return tracking.create_run(found.id).id


def test_experiment_round_trip(tracking: TrackingService, clock: FixedClock) -> None:
    created = tracking.create_experiment("churn", "predict churn", {"team": "growth"})
    assert tracking.get_experiment(created.id) == created
    assert tracking.get_experiment_by_name("churn") == created
    assert created.created_at == clock.now()
    assert [e.name for e in tracking.list_experiments()] == ["churn"]


def test_duplicate_experiment_conflicts(tracking: TrackingService) -> None:
    tracking.create_experiment("churn")
    with pytest.raises(ConflictError, match="'churn' already exists"):
        tracking.create_experiment("churn")


def test_unknown_ids_not_found(tracking: TrackingService) -> None:
    with pytest.raises(NotFoundError, match="'nope'"):
        tracking.get_experiment("nope")
    with pytest.raises(NotFoundError, match="'nope'"):
        tracking.get_run("nope")
    with pytest.raises(NotFoundError, match="'nope'"):
        tracking.create_run("nope")
    with pytest.raises(NotFoundError, match="'nope'"):
        tracking.log_metrics("nope", [Metric("a", 1.0)])


def test_run_lifecycle(tracking: TrackingService, clock: FixedClock) -> None:
    run_id = _run_id(tracking)
    run = tracking.get_run(run_id)
    assert run.status == "RUNNING"
    assert run.end_time is None
    assert run.start_time == clock.now()
    clock.advance(timedelta(minutes=5))
    ended = tracking.set_run_status(run_id, "FINISHED")
    assert ended.status == "FINISHED"
    assert ended.end_time == clock.now()
    assert tracking.set_run_status(run_id, "FINISHED").end_time == clock.now()
    with pytest.raises(ConflictError, match="already ended as FINISHED"):
        tracking.set_run_status(run_id, "FAILED")


def test_invalid_status_rejected(tracking: TrackingService) -> None:
    run_id = _run_id(tracking)
    with pytest.raises(InvalidInputError, match="'DONE'"):
        tracking.set_run_status(run_id, "DONE")  # type: ignore[arg-type]


def test_terminal_run_rejects_logging(tracking: TrackingService) -> None:
    run_id = _run_id(tracking)
    tracking.set_run_status(run_id, "KILLED")
    with pytest.raises(ConflictError, match="KILLED"):
        tracking.log_metrics(run_id, [Metric("a", 1.0)])
    with pytest.raises(ConflictError, match="KILLED"):
        tracking.log_params(run_id, {"a": 1})
    with pytest.raises(ConflictError, match="KILLED"):
        tracking.log_artifact(run_id, "a.txt", b"x")
    tracking.set_tags(run_id, {"reviewed": "yes"})
    assert tracking.get_run(run_id).tags == {"reviewed": "yes"}


def test_params_immutable(tracking: TrackingService) -> None:
    run_id = _run_id(tracking)
    tracking.log_params(run_id, {"max_depth": 5, "lr": 0.1})
    tracking.log_params(run_id, {"max_depth": "5"})
    with pytest.raises(ConflictError) as caught:
        tracking.log_params(run_id, {"new": "kept?", "max_depth": 6})
    message = caught.value.message
    assert "'max_depth'" in message
    assert "'5'" in message
    assert "'6'" in message
    assert tracking.get_run(run_id).params == {"lr": "0.1", "max_depth": "5"}


def test_param_value_too_long(tracking: TrackingService) -> None:
    run_id = _run_id(tracking)
    tracking.log_params(run_id, {"ok": "x" * 6000})
    with pytest.raises(InvalidInputError, match="6001 characters"):
        tracking.log_params(run_id, {"long": "x" * 6001})


def test_log_ten_thousand_metrics(tracking: TrackingService) -> None:
    run_id = _run_id(tracking)
    batch = [Metric(f"m{i % 10}", i * 0.5, step=i // 10) for i in range(10_000)]
    tracking.log_metrics(run_id, batch)
    run = tracking.get_run(run_id)
    assert run.metrics == {f"m{k}": (9990 + k) * 0.5 for k in range(10)}
    assert len(tracking.get_metric_history(run_id, "m3")) == 1000


def test_retried_metric_batch_stored_once(tracking: TrackingService) -> None:
    run_id = _run_id(tracking)
    batch = [Metric("loss", 1.0 / (i + 1), step=i) for i in range(100)]
    tracking.log_metrics(run_id, batch)
    tracking.log_metrics(run_id, batch)
    history = tracking.get_metric_history(run_id, "loss")
    assert len(history) == 100
    assert [m.step for m in history] == list(range(100))


def test_same_step_new_value_kept(tracking: TrackingService) -> None:
    run_id = _run_id(tracking)
    tracking.log_metrics(run_id, [Metric("acc", 0.5, step=1)])
    tracking.log_metrics(run_id, [Metric("acc", 0.6, step=1)])
    assert len(tracking.get_metric_history(run_id, "acc")) == 2


def test_huge_finite_metrics_accepted(tracking: TrackingService) -> None:
    run_id = _run_id(tracking)
    # Their sum overflows to infinity, although each value is finite.
    tracking.log_metrics(run_id, [Metric("big", 1e308, step=0), Metric("big", 1e308, step=1)])
    assert len(tracking.get_metric_history(run_id, "big")) == 2


@pytest.mark.parametrize("step", [2**63, -(2**63)])
def test_out_of_range_step_rejected(tracking: TrackingService, step: int) -> None:
    run_id = _run_id(tracking)
    batch = [Metric("loss", 0.5, step=i) for i in range(20)] + [Metric("loss", 0.5, step)]
    with pytest.raises(InvalidInputError, match=f"step {step} .* does not fit in 64 bits"):
        tracking.log_metrics(run_id, batch)
    assert tracking.get_metric_history(run_id, "loss") == []


def test_infinite_metric_named(tracking: TrackingService) -> None:
    run_id = _run_id(tracking)
    batch = [Metric("loss", 0.5, step=i) for i in range(50)]
    batch.append(Metric("loss", float("inf"), step=50))
    with pytest.raises(InvalidInputError, match="'loss' at step 50"):
        tracking.log_metrics(run_id, batch)
    assert tracking.get_metric_history(run_id, "loss") == []


def test_metrics_one_chunk_per_key(tracking: TrackingService, clocked_workspace: Workspace) -> None:
    run_id = _run_id(tracking)
    inserts: list[tuple[str, int]] = []

    def record(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        words = statement.split()
        if words[0].upper() == "INSERT":
            inserts.append((words[2], len(params) if many else 1))

    engine = clocked_workspace.metadata.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        keys = ("loss", "accuracy", "lr")
        tracking.log_metrics(run_id, [Metric(keys[i % 3], float(i), i) for i in range(2000)])
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert inserts == [("metric_chunks", 3), ("latest_metrics", 3)]
    history = tracking.get_metric_history(run_id, "accuracy")
    assert [metric.step for metric in history] == list(range(1, 2000, 3))
    assert tracking.get_run(run_id).metrics == {"loss": 1998.0, "accuracy": 1999.0, "lr": 1997.0}


def test_latest_metric_by_step_then_time(tracking: TrackingService, clock: FixedClock) -> None:
    run_id = _run_id(tracking)
    t0 = clock.now()
    tracking.log_metrics(
        run_id,
        [
            Metric("loss", 3.0, step=2, timestamp=t0),
            Metric("loss", 1.0, step=5, timestamp=t0),
            Metric("loss", 2.0, step=5, timestamp=t0 + timedelta(seconds=1)),
            Metric("loss", 9.0, step=1, timestamp=t0 + timedelta(hours=1)),
        ],
    )
    assert tracking.get_run(run_id).metrics == {"loss": 2.0}
    history = tracking.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(1, 9.0), (2, 3.0), (5, 1.0), (5, 2.0)]
    assert history[0].timestamp == t0 + timedelta(hours=1)


def test_metric_default_timestamp_is_clock(tracking: TrackingService, clock: FixedClock) -> None:
    run_id = _run_id(tracking)
    tracking.log_metrics(run_id, [Metric("acc", 0.5)])
    (stored,) = tracking.get_metric_history(run_id, "acc")
    assert stored.timestamp == clock.now()
    assert stored.timestamp is not None and stored.timestamp.tzinfo is not None


@pytest.mark.parametrize(
    ("metric", "fragment"),
    [
        (Metric("acc", "high"), "'high' is not a number"),  # type: ignore[arg-type]
        (Metric("acc", True), "True is not a number"),
        (Metric("acc", math.nan), "nan is not finite"),
        (Metric("acc", math.inf), "inf is not finite"),
        (Metric("", 1.0), "Invalid metric key ''"),
        (Metric("a..b", 1.0), "'a..b'"),
        (Metric("/abs", 1.0), "'/abs'"),
        (Metric("k" * 251, 1.0), "251 characters"),
        (Metric("acc", 1.0, step=1.5), "Invalid step 1.5"),  # type: ignore[arg-type]
        (Metric("acc", 1.0, timestamp=datetime(2026, 1, 1)), "no time zone"),
    ],
)
def test_bad_metric_inserts_nothing(
    tracking: TrackingService, metric: Metric, fragment: str
) -> None:
    run_id = _run_id(tracking)
    batch = [Metric("acc", 0.1, 0), Metric("acc", 0.2, 1), metric]
    with pytest.raises(InvalidInputError) as caught:
        tracking.log_metrics(run_id, batch)
    assert fragment in caught.value.message
    assert tracking.get_metric_history(run_id, "acc") == []


def test_numpy_metric_values(tracking: TrackingService) -> None:
    run_id = _run_id(tracking)
    tracking.log_metrics(run_id, [Metric("a", np.float32(0.5)), Metric("b", np.int64(3))])  # type: ignore[arg-type]
    assert tracking.get_run(run_id).metrics == {"a": 0.5, "b": 3.0}


def test_tags_replace(tracking: TrackingService) -> None:
    experiment = tracking.create_experiment("exp")
    run = tracking.create_run(experiment.id, "named", {"team": "a"})
    assert run.name == "named"
    tracking.set_tags(run.id, {"team": "b", "stage": "dev"})
    assert tracking.get_run(run.id).tags == {"stage": "dev", "team": "b"}


def test_artifact_round_trip(tracking: TrackingService) -> None:
    run_id = _run_id(tracking)
    data = b"\x00binary\xff" * 100
    stored = tracking.log_artifact(run_id, "model/weights.bin", data)
    assert stored.digest == hashlib.sha256(data).hexdigest()
    assert stored.size == len(data)
    assert tracking.get_artifact(run_id, "model/weights.bin") == data
    assert tracking.log_artifact(run_id, "model/weights.bin", data) == stored
    assert tracking.get_run(run_id).artifacts == [stored]


def test_artifact_other_content_conflicts(tracking: TrackingService) -> None:
    run_id = _run_id(tracking)
    tracking.log_artifact(run_id, "a.txt", b"one")
    with pytest.raises(ConflictError, match="'a.txt'"):
        tracking.log_artifact(run_id, "a.txt", b"two")
    assert tracking.get_artifact(run_id, "a.txt") == b"one"


@pytest.mark.parametrize(
    "path", ["", "/etc/passwd", "../up", "a/../../b", "a\\b", "a//b", "./a", "c:/x", "a/"]
)
def test_unsafe_artifact_path_rejected(tracking: TrackingService, path: str) -> None:
    run_id = _run_id(tracking)
    with pytest.raises(InvalidInputError, match="Invalid artifact path"):
        tracking.log_artifact(run_id, path, b"x")
    assert tracking.get_run(run_id).artifacts == []


def test_unknown_artifact_not_found(tracking: TrackingService) -> None:
    run_id = _run_id(tracking)
    with pytest.raises(NotFoundError, match="'missing.txt'"):
        tracking.get_artifact(run_id, "missing.txt")


def test_corrupt_artifact_detected(tracking: TrackingService, clocked_workspace: Workspace) -> None:
    run_id = _run_id(tracking)
    stored = tracking.log_artifact(run_id, "a.txt", b"original")
    # The store keeps the ciphertext under its own digest; the run records the plaintext's.
    blobs = list((Path(clocked_workspace.settings.artifact_root) / "sha256").rglob("*"))
    for blob in (path for path in blobs if path.is_file()):
        blob.write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match=stored.digest):
        tracking.get_artifact(run_id, "a.txt")


def test_log_input_once(tracking: TrackingService) -> None:
    run_id = _run_id(tracking)
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]})
    dataset = dataset_input(frame, "train", source="file://train.csv")
    tracking.log_input(run_id, dataset)
    tracking.log_input(run_id, dataset)
    assert tracking.get_run(run_id).inputs == [dataset]


def test_log_input_missing_copy(tracking: TrackingService) -> None:
    run_id = _run_id(tracking)
    frame = pd.DataFrame({"x": [1.0]})
    dataset = dataset_input(frame, "train", artifact_digest="0" * 64)
    with pytest.raises(NotFoundError, match="Stored copy"):
        tracking.log_input(run_id, dataset)


def _seed_search(tracking: TrackingService, clock: FixedClock) -> dict[str, str]:
    experiment = tracking.create_experiment("search")
    runs: dict[str, str] = {}
    specs = [
        ("a", {"depth": "5"}, {"team": "Core"}, {"auc": 0.91}, "FINISHED"),
        ("b", {"depth": "7"}, {"team": "core"}, {"auc": 0.85}, "FINISHED"),
        ("c", {"depth": "5"}, {"team": "edge"}, {"auc": 0.70}, "FAILED"),
        ("d", {}, {}, {}, "RUNNING"),
    ]
    for name, params, tags, metrics, status in specs:
        clock.advance(timedelta(minutes=1))
        run = tracking.create_run(experiment.id, name, tags)
        tracking.log_params(run.id, params)
        tracking.log_metrics(run.id, [Metric(k, v) for k, v in metrics.items()])
        if status != "RUNNING":
            tracking.set_run_status(run.id, status)  # type: ignore[arg-type]
        runs[name] = run.id
    return runs


def _names(
    tracking: TrackingService, filter_string: str, order: list[str] | None = None
) -> list[str]:
    return [run.name for run in tracking.search_runs(None, filter_string, order)]


def test_search_filters(tracking: TrackingService, clock: FixedClock) -> None:
    _seed_search(tracking, clock)
    assert _names(tracking, "metrics.auc > 0.8", ["metrics.auc DESC"]) == ["a", "b"]
    assert _names(tracking, "params.depth = '5'", ["run_name"]) == ["a", "c"]
    assert _names(tracking, "params.depth != '5'") == ["b"]
    assert _names(tracking, "status = 'FAILED'") == ["c"]
    assert _names(tracking, "status IN ('FAILED', 'RUNNING')", ["name"]) == ["c", "d"]
    assert _names(tracking, "metrics.auc > 0.8 and params.depth = '5' and status = 'FINISHED'") == [
        "a"
    ]


def test_search_like_is_case_sensitive(tracking: TrackingService, clock: FixedClock) -> None:
    _seed_search(tracking, clock)
    assert _names(tracking, "tags.team LIKE 'c%'") == ["b"]
    assert _names(tracking, "tags.team ILIKE 'c%'", ["name"]) == ["a", "b"]


def test_search_order_missing_last(tracking: TrackingService, clock: FixedClock) -> None:
    _seed_search(tracking, clock)
    assert _names(tracking, "", ["metrics.auc ASC"]) == ["c", "b", "a", "d"]
    assert _names(tracking, "", ["metrics.auc DESC"]) == ["a", "b", "c", "d"]
    assert _names(tracking, "") == ["d", "c", "b", "a"]


def test_search_by_start_time(tracking: TrackingService, clock: FixedClock) -> None:
    start = clock.now()
    _seed_search(tracking, clock)
    cutoff = int((start + timedelta(minutes=2, seconds=30)).timestamp() * 1000)
    assert _names(tracking, f"start_time > {cutoff}", ["start_time"]) == ["c", "d"]


def test_search_scope_and_limit(tracking: TrackingService, clock: FixedClock) -> None:
    runs = _seed_search(tracking, clock)
    other = tracking.create_experiment("other")
    tracking.create_run(other.id, "elsewhere")
    experiment_id = tracking.get_run(runs["a"]).experiment_id
    found = tracking.search_runs([experiment_id], max_results=2)
    assert [run.name for run in found] == ["d", "c"]
    assert [run.name for run in tracking.search_runs([other.id])] == ["elsewhere"]


def test_search_invalid_input(tracking: TrackingService) -> None:
    with pytest.raises(InvalidInputError, match="position 12"):
        tracking.search_runs(None, "metrics.auc ! 1")
    with pytest.raises(InvalidInputError, match="max_results"):
        tracking.search_runs(None, None, None, 0)


def test_viewer_reads_but_cannot_log(clocked_workspace: Workspace) -> None:
    admin = TrackingService(clocked_workspace.context())
    run_id = _run_id(admin)
    admin.log_params(run_id, {"depth": 5})
    bob = clocked_workspace.create_principal("bob", {"viewer"})
    viewer = TrackingService(clocked_workspace.context(bob))
    assert viewer.get_run(run_id).params == {"depth": "5"}
    assert viewer.search_runs()[0].id == run_id
    with pytest.raises(PermissionDeniedError, match="'bob' may not perform 'run.update'"):
        viewer.log_metrics(run_id, [Metric("a", 1.0)])
    with pytest.raises(PermissionDeniedError):
        viewer.log_params(run_id, {"other": 1})
    with pytest.raises(PermissionDeniedError):
        viewer.create_experiment("bobs")
    with pytest.raises(PermissionDeniedError):
        viewer.log_artifact(run_id, "a.txt", b"x")
    assert admin.get_metric_history(run_id, "a") == []


class RecordingPolicy:
    """Allows everything and records each action asked for."""

    def __init__(self) -> None:
        self.actions: list[str] = []
        self._inner = RoleBasedPolicy()

    def decide(self, principal: Principal, action: str, resource: Resource) -> Decision:
        self.actions.append(action)
        return self._inner.decide(principal, action, resource)


def test_every_method_authorizes(clocked_workspace: Workspace) -> None:
    policy = RecordingPolicy()
    workspace = Workspace(
        clocked_workspace.settings,
        clocked_workspace.metadata,
        clocked_workspace.artifacts,
        clocked_workspace.clock,
        policy,
    )
    tracking = TrackingService(workspace.context())
    calls = [
        ("experiment.create", lambda: tracking.create_experiment("e")),
        ("experiment.read", lambda: tracking.get_experiment_by_name("e")),
        ("experiment.read", lambda: tracking.list_experiments()),
        ("run.create", lambda: tracking.create_run(tracking.get_experiment_by_name("e").id)),
    ]
    for action, call in calls:
        policy.actions.clear()
        call()
        assert action in policy.actions, (action, policy.actions)
    run_id = tracking.search_runs()[0].id
    experiment_id = tracking.get_run(run_id).experiment_id
    frame = pd.DataFrame({"x": [1]})
    run_calls = [
        ("run.read", lambda: tracking.get_run(run_id)),
        ("run.update", lambda: tracking.log_params(run_id, {"a": 1})),
        ("run.update", lambda: tracking.set_tags(run_id, {"a": "1"})),
        ("run.update", lambda: tracking.log_metrics(run_id, [Metric("m", 1.0)])),
        ("run.update", lambda: tracking.log_metric_series(run_id, "s", [1.0, 2.0])),
        ("run.read", lambda: tracking.get_metric_history(run_id, "m")),
        ("run.update", lambda: tracking.log_input(run_id, dataset_input(frame, "d"))),
        ("artifact.write", lambda: tracking.log_artifact(run_id, "a", b"a")),
        ("artifact.read", lambda: tracking.get_artifact(run_id, "a")),
        ("run.read", lambda: tracking.search_runs()),
        ("experiment.read", lambda: tracking.get_experiment(experiment_id)),
        ("run.update", lambda: tracking.set_run_status(run_id, "FINISHED")),
    ]
    for action, call in run_calls:
        policy.actions.clear()
        call()
        assert policy.actions[0] == action, (action, policy.actions)


def test_timestamps_are_utc(tracking: TrackingService) -> None:
    run_id = _run_id(tracking)
    dubai = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).astimezone(ZoneInfo("Asia/Dubai"))
    tracking.log_metrics(run_id, [Metric("x", 1.0, timestamp=dubai)])
    (stored,) = tracking.get_metric_history(run_id, "x")
    assert stored.timestamp == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
