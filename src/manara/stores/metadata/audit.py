"""Repository of audit events, the head counter and signed checkpoints."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from manara.errors import IntegrityError, NotFoundError
from manara.security.audit_events import Checkpoint, RecordedEvent
from manara.stores.metadata import tables
from manara.stores.metadata.store import MetadataStore

_HEAD_ID = 1
_BATCH = 2000


def _event(row: Any) -> RecordedEvent:
    return RecordedEvent(
        seq=row.seq,
        event_id=row.event_id,
        time=row.time,
        principal_id=row.principal_id,
        action=row.action,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        decision=row.decision,
        reason=row.reason,
        request_id=row.request_id,
        details=row.details,
        leaf_hash=row.leaf_hash,
    )


def _checkpoint(row: Any) -> Checkpoint:
    return Checkpoint(
        tree_size=row.tree_size,
        root_hash=row.root_hash,
        time=row.time,
        key_id=row.key_id,
        signature=row.signature,
        frontier=list(row.frontier),
    )


class AuditRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def append(self, build: Callable[[int], dict[str, Any]]) -> RecordedEvent:
        """Insert the event that ``build(seq)`` returns at the next sequence number.

        The head update comes first in the transaction: on PostgreSQL it locks
        the head row, and on SQLite it takes the database write lock (waiting
        up to the busy timeout) before anything is read. Concurrent appends
        therefore run one after another, and the number and the row commit
        together, so sequence numbers have no gaps and no duplicates.
        """
        head = tables.audit_head
        with self._store.transaction() as connection:
            result = connection.execute(
                update(head).where(head.c.id == _HEAD_ID).values(size=head.c.size + 1)
            )
            if result.rowcount != 1:
                raise IntegrityError(
                    "The audit_head row is missing, so no sequence number can be assigned. "
                    "Run `manara audit verify` and restore the database from backup."
                )
            size = connection.execute(select(head.c.size).where(head.c.id == _HEAD_ID)).scalar_one()
            values = build(size - 1)
            values["seq"] = size - 1
            connection.execute(tables.audit_events.insert().values(**values))
        return RecordedEvent(**values)

    def head_size(self) -> int | None:
        head = tables.audit_head
        with self._store.read() as connection:
            size: int | None = connection.execute(
                select(head.c.size).where(head.c.id == _HEAD_ID)
            ).scalar_one_or_none()
        return size

    def event_count(self) -> int:
        with self._store.read() as connection:
            count: int = connection.execute(
                select(func.count()).select_from(tables.audit_events)
            ).scalar_one()
        return count

    def iter_events(self, start: int = 0, stop: int | None = None) -> Iterator[RecordedEvent]:
        """Yield events with ``start <= seq < stop`` in sequence order, reading in batches."""
        events = tables.audit_events
        after = start - 1
        while True:
            statement = select(events).where(events.c.seq > after)
            if stop is not None:
                statement = statement.where(events.c.seq < stop)
            statement = statement.order_by(events.c.seq).limit(_BATCH)
            with self._store.read() as connection:
                rows = connection.execute(statement).all()
            for row in rows:
                yield _event(row)
            if len(rows) < _BATCH:
                return
            after = rows[-1].seq

    def leaf_hashes(self, stop: int) -> list[bytes]:
        """Return the stored leaf hashes of events ``0 <= seq < stop``, in sequence order."""
        events = tables.audit_events
        leaves: list[bytes] = []
        after = -1
        while True:
            statement = (
                select(events.c.seq, events.c.leaf_hash)
                .where(events.c.seq > after, events.c.seq < stop)
                .order_by(events.c.seq)
                .limit(_BATCH * 10)
            )
            with self._store.read() as connection:
                rows = connection.execute(statement).all()
            leaves.extend(bytes.fromhex(row.leaf_hash) for row in rows)
            if len(rows) < _BATCH * 10:
                return leaves
            after = rows[-1].seq

    def get_event(self, event_id: str) -> RecordedEvent:
        events = tables.audit_events
        with self._store.read() as connection:
            row = connection.execute(
                select(events).where(events.c.event_id == event_id)
            ).one_or_none()
        if row is None:
            raise NotFoundError(
                f"Audit event {event_id!r} not found. List events with `manara audit export`."
            )
        return _event(row)

    def query(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        principal_id: str | None = None,
        action: str | None = None,
        after_seq: int = -1,
        limit: int = 1000,
    ) -> list[RecordedEvent]:
        events = tables.audit_events
        statement = select(events).where(events.c.seq > after_seq)
        if start is not None:
            statement = statement.where(events.c.time >= start)
        if end is not None:
            statement = statement.where(events.c.time < end)
        if principal_id is not None:
            statement = statement.where(events.c.principal_id == principal_id)
        if action is not None:
            statement = statement.where(events.c.action == action)
        statement = statement.order_by(events.c.seq).limit(limit)
        with self._store.read() as connection:
            return [_event(row) for row in connection.execute(statement)]

    def checkpoints(self) -> list[Checkpoint]:
        table = tables.audit_checkpoints
        with self._store.read() as connection:
            rows = connection.execute(select(table).order_by(table.c.tree_size)).all()
        return [_checkpoint(row) for row in rows]

    def latest_checkpoint(self) -> Checkpoint | None:
        table = tables.audit_checkpoints
        statement = select(table).order_by(table.c.tree_size.desc()).limit(1)
        with self._store.read() as connection:
            row = connection.execute(statement).one_or_none()
        return None if row is None else _checkpoint(row)

    def add_checkpoint(self, checkpoint: Checkpoint) -> Checkpoint:
        """Store a checkpoint; when one of the same size exists, keep it and return it."""
        table = tables.audit_checkpoints
        insert = pg_insert if self._store.dialect == "postgresql" else sqlite_insert
        statement = (
            insert(table)
            .values(
                tree_size=checkpoint.tree_size,
                root_hash=checkpoint.root_hash,
                time=checkpoint.time,
                key_id=checkpoint.key_id,
                signature=checkpoint.signature,
                frontier=checkpoint.frontier,
            )
            .on_conflict_do_nothing(index_elements=["tree_size"])
        )
        with self._store.transaction() as connection:
            connection.execute(statement)
            row = connection.execute(
                select(table).where(table.c.tree_size == checkpoint.tree_size)
            ).one()
        return _checkpoint(row)
