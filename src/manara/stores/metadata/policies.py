"""Repository of policy versions: the text of each Cedar policy set ever applied."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.exc import IntegrityError as SQLIntegrityError

from manara.errors import ConflictError, NotFoundError
from manara.stores.metadata import tables
from manara.stores.metadata.store import MetadataStore

_versions = tables.policy_versions


@dataclass(frozen=True)
class PolicyVersion:
    version: int
    text: str
    sha256: str
    """SHA-256 of the UTF-8 policy text, hex."""
    created_by: str
    created_at: datetime
    active: bool
    comment: str = ""


def _version(row: Any) -> PolicyVersion:
    return PolicyVersion(
        version=row.version,
        text=row.text,
        sha256=row.sha256,
        created_by=row.created_by,
        created_at=row.created_at,
        active=bool(row.active),
        comment=row.comment,
    )


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class PolicyRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def add_active(
        self,
        text: str,
        created_by: str,
        now: datetime,
        comment: str = "",
        connection: Connection | None = None,
    ) -> PolicyVersion:
        """Store ``text`` as the next version and make it the only active one."""
        if connection is None:
            try:
                with self._store.transaction() as own:
                    return self._insert(own, text, created_by, now, comment)
            except SQLIntegrityError as exc:
                raise ConflictError(
                    "Another policy version was applied at the same time; nothing was changed. "
                    "Check `manara policy history` and apply again."
                ) from exc
        return self._insert(connection, text, created_by, now, comment)

    def _insert(
        self, connection: Connection, text: str, created_by: str, now: datetime, comment: str
    ) -> PolicyVersion:
        current = connection.execute(select(func.max(_versions.c.version))).scalar_one_or_none()
        version = PolicyVersion(
            version=(current or 0) + 1,
            text=text,
            sha256=text_digest(text),
            created_by=created_by,
            created_at=now,
            active=True,
            comment=comment,
        )
        connection.execute(update(_versions).where(_versions.c.active).values(active=False))
        connection.execute(
            _versions.insert().values(
                version=version.version,
                text=version.text,
                sha256=version.sha256,
                created_by=version.created_by,
                created_at=version.created_at,
                active=True,
                comment=comment,
            )
        )
        return version

    def active(self) -> PolicyVersion | None:
        with self._store.read() as connection:
            row = connection.execute(
                select(_versions).where(_versions.c.active).order_by(_versions.c.version.desc())
            ).first()
        return None if row is None else _version(row)

    def active_digest(self) -> str | None:
        """SHA-256 of the active version's text: a cheap check for a change by another process."""
        with self._store.read() as connection:
            digest: str | None = connection.execute(
                select(_versions.c.sha256)
                .where(_versions.c.active)
                .order_by(_versions.c.version.desc())
                .limit(1)
            ).scalar_one_or_none()
        return digest

    def get(self, version: int) -> PolicyVersion:
        with self._store.read() as connection:
            row = connection.execute(
                select(_versions).where(_versions.c.version == version)
            ).one_or_none()
        if row is None:
            raise NotFoundError(
                f"Policy version {version} not found. List versions with `manara policy history`.",
                version=version,
            )
        return _version(row)

    def history(self) -> list[PolicyVersion]:
        with self._store.read() as connection:
            rows = connection.execute(select(_versions).order_by(_versions.c.version)).all()
        return [_version(row) for row in rows]
