import subprocess
import sys

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
