"""The metadata store: one engine, migrated on open, shared by the repositories."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from manara.stores.metadata import tables
from manara.stores.metadata.engine import open_engine


class MetadataStore:
    """Owns the engine; repositories borrow connections from it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> MetadataStore:
        return cls(open_engine(url))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Yield a connection inside one transaction, committed on success."""
        with self.engine.begin() as connection:
            yield connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as connection:
            yield connection

    def get_meta(self, key: str) -> str | None:
        with self.read() as connection:
            return connection.execute(
                select(tables.workspace_meta.c.value).where(tables.workspace_meta.c.key == key)
            ).scalar_one_or_none()

    def set_meta(self, key: str, value: str, connection: Connection | None = None) -> None:
        insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        statement = insert(tables.workspace_meta).values(key=key, value=value)
        statement = statement.on_conflict_do_update(
            index_elements=["key"], set_={"value": statement.excluded.value}
        )
        if connection is not None:
            connection.execute(statement)
            return
        with self.transaction() as own:
            own.execute(statement)

    def close(self) -> None:
        self.engine.dispose()
