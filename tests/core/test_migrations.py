import logging
import subprocess
import sys

import pytest
from sqlalchemy import inspect

from manara.stores.metadata.engine import create_db_engine, current_revision, head_revision
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
