"""Engine creation and schema migration under a lock.

``open_engine`` applies the Alembic migrations before it returns, so every
process finds the schema at head. Two processes starting on one database at
once serialise on a lock: a PostgreSQL advisory lock, or on SQLite an
exclusive file lock beside the database file.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from manara.errors import InvalidInputError, UnavailableError

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Arbitrary constant that names Manara's migration lock among PostgreSQL advisory locks.
_PG_MIGRATION_LOCK_ID = 0x6D616E617261


def normalise_url(url: str) -> str:
    """Map ``postgresql://`` and ``postgres://`` to the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_db_engine(url: str) -> Engine:
    try:
        parsed = make_url(normalise_url(url))
    except ArgumentError as exc:
        raise InvalidInputError(
            f"Invalid database URL {url!r}: {exc}. Use sqlite:///PATH or postgresql://HOST/DB."
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # A pooled connection keeps SQLite's write-ahead log open between calls;
        # NullPool reopened the file each time, which cost about 15x on small writes.
        engine = create_engine(parsed, pool_size=5, max_overflow=10)
        event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    if head is None:
        raise RuntimeError("the migration scripts define no head revision")
    return head


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _PG_MIGRATION_LOCK_ID})
            try:
                yield
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:id)"), {"id": _PG_MIGRATION_LOCK_ID}
                )
                connection.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    lock_path = Path(database + ".migrate.lock")
    with lock_path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def migrate(engine: Engine) -> None:
    """Upgrade the schema to head; a no-op when it is already there."""
    head = head_revision()
    with _migration_lock(engine), _quiet_alembic():
        if current_revision(engine) == head:
            return
        logger.info("migrating metadata database to revision %s", head)
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), "head")


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    """Raise alembic's migration logger to WARNING for the block, then restore its level.

    Alembic logs "Context impl SQLiteImpl." and one line per applied revision
    at INFO, which would print at every CLI and server start. The line logged
    by ``migrate`` already records an upgrade.
    """
    alembic_logger = logging.getLogger("alembic.runtime.migration")
    saved_level = alembic_logger.level
    alembic_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        alembic_logger.setLevel(saved_level)


def open_engine(url: str) -> Engine:
    """Create the engine and bring its schema to head."""
    engine = create_db_engine(url)
    try:
        migrate(engine)
    except OperationalError as exc:
        engine.dispose()
        safe_url = make_url(normalise_url(url)).render_as_string(hide_password=True)
        raise UnavailableError(
            f"Cannot reach the metadata database at {safe_url}: {exc.orig}. "
            "Check that the server runs and the URL is right."
        ) from exc
    return engine
