import logging
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text

from manara.stores.metadata.engine import (
    _alembic_config,
    create_db_engine,
    current_revision,
    head_revision,
)
from manara.stores.metadata.metric_series import decode_history
from manara.stores.metadata.tables import metadata

_MIGRATE = (
    "import sys; from manara.stores.metadata.engine import open_engine; "
    "open_engine(sys.argv[1]).dispose(); print('migrated')"
)


def test_concurrent_migrations_both_succeed(database_url: str) -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _MIGRATE, database_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "migrated" in out

    engine = create_db_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_migrated_schema_matches_tables(database_url: str) -> None:
    from manara.stores.metadata.engine import open_engine

    engine = open_engine(database_url)
    try:
        inspector = inspect(engine)
        for table in metadata.sorted_tables:
            columns = {column["name"] for column in inspector.get_columns(table.name)}
            assert columns == set(table.columns.keys()), table.name
    finally:
        engine.dispose()


def test_reopen_is_noop(database_url: str) -> None:
    from manara.stores.metadata.engine import open_engine

    open_engine(database_url).dispose()
    engine = open_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_migrate_logs_once(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    from manara.stores.metadata.engine import open_engine

    alembic_logger = logging.getLogger("alembic.runtime.migration")
    level_before = alembic_logger.level
    with caplog.at_level(logging.INFO):
        open_engine(database_url).dispose()
        open_engine(database_url).dispose()

    alembic_lines = [r.getMessage() for r in caplog.records if r.name.startswith("alembic")]
    migrating = [r for r in caplog.records if r.getMessage().startswith("migrating")]
    assert alembic_lines == [], "alembic's INFO lines reach the log"
    assert len(migrating) == 1, "the upgrade is logged once, and the no-op reopen not at all"
    assert alembic_logger.level == level_before, "migrate left alembic's level changed"


def _upgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), revision)


def _downgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        command.downgrade(_alembic_config(connection), revision)


def test_metric_rows_move_into_chunks_and_back(database_url: str) -> None:
    """Revision 0006 turns a row per value into chunks; the history and latest values survive."""
    engine = create_db_engine(database_url)
    try:
        _upgrade(engine, "0005")
        now = datetime(2026, 1, 2, tzinfo=UTC)
        stored = [
            ("r1", "loss", step, 1000 + step % 3, 1.0 / (step + 1)) for step in range(250)
        ] + [
            ("r1", "acc", 5, 2000, 0.5),
            ("r1", "acc", 5, 2000, 0.75),
            ("r1", "acc", 5, 1999, 0.9),
            ("r2", "loss", 0, 3000, 2.5),
        ]
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO experiments (id, name, description, tags, created_at, "
                    "created_by, project, classification, allowed_regions) VALUES "
                    "('e1', 'e', '', '{}', :now, 'p', 'default', 'internal', '[]')"
                ),
                {"now": now},
            )
            for run_id in ("r1", "r2"):
                connection.execute(
                    text(
                        "INSERT INTO runs (id, experiment_id, name, status, start_time, "
                        "created_by) VALUES (:id, 'e1', :id, 'RUNNING', :now, 'p')"
                    ),
                    {"id": run_id, "now": now},
                )
            connection.execute(
                text(
                    "INSERT INTO run_metrics (run_id, key, step, timestamp_ms, value) "
                    "VALUES (:run_id, :key, :step, :stamp, :value)"
                ),
                [
                    {"run_id": r, "key": k, "step": s, "stamp": t, "value": v}
                    for r, k, s, t, v in stored
                ],
            )

        _upgrade(engine, "head")
        with engine.connect() as connection:
            latest = connection.execute(
                text("SELECT run_id, key, step, timestamp_ms, value FROM latest_metrics")
            ).all()
            chunks = connection.execute(
                text(
                    "SELECT run_id, key, count, step_data, time_data, value_data "
                    "FROM metric_chunks ORDER BY run_id, key"
                )
            ).all()
        assert sorted(tuple(row) for row in latest) == [
            ("r1", "acc", 5, 2000, 0.75),
            ("r1", "loss", 249, 1000 + 249 % 3, 1.0 / 250),
            ("r2", "loss", 0, 3000, 2.5),
        ]
        assert [(row.run_id, row.key, row.count) for row in chunks] == [
            ("r1", "acc", 3),
            ("r1", "loss", 250),
            ("r2", "loss", 1),
        ]
        history = decode_history([tuple(chunks[1])[2:]])
        assert history.steps.tolist() == list(range(250))
        assert history.values.tolist() == [1.0 / (step + 1) for step in range(250)]

        _downgrade(engine, "0005")
        with engine.connect() as connection:
            back = connection.execute(
                text("SELECT run_id, key, step, timestamp_ms, value FROM run_metrics")
            ).all()
        assert sorted(tuple(row) for row in back) == sorted(stored)
    finally:
        engine.dispose()
