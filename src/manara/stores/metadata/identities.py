"""Repository of principals and API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from manara.errors import ConflictError, NotFoundError
from manara.security.principal import Principal
from manara.stores.metadata import tables
from manara.stores.metadata.store import MetadataStore


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    prefix: str
    secret_hash: str
    principal_id: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


def _principal(row: Any) -> Principal:
    return Principal(
        id=row.id,
        name=row.name,
        kind=row.kind,
        roles=frozenset(row.roles),
        project=row.project,
    )


class IdentityRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def create_principal(
        self, principal: Principal, created_at: datetime, connection: Connection | None = None
    ) -> Principal:
        values = {
            "id": principal.id,
            "name": principal.name,
            "kind": principal.kind,
            "roles": sorted(principal.roles),
            "project": principal.project,
            "created_at": created_at,
        }
        if self.find_principal_by_name(principal.name) is not None:
            raise ConflictError(
                f"A principal named {principal.name!r} already exists. Choose another name."
            )
        if connection is not None:
            connection.execute(tables.principals.insert().values(**values))
        else:
            with self._store.transaction() as own:
                own.execute(tables.principals.insert().values(**values))
        return principal

    def get_principal(self, principal_id: str) -> Principal:
        with self._store.read() as connection:
            row = connection.execute(
                select(tables.principals).where(tables.principals.c.id == principal_id)
            ).one_or_none()
        if row is None:
            raise NotFoundError(f"Principal {principal_id!r} not found.")
        return _principal(row)

    def find_principal_by_name(self, name: str) -> Principal | None:
        with self._store.read() as connection:
            row = connection.execute(
                select(tables.principals).where(tables.principals.c.name == name)
            ).one_or_none()
        return None if row is None else _principal(row)

    def add_api_key(self, record: ApiKeyRecord, connection: Connection | None = None) -> None:
        values = {
            "id": record.id,
            "prefix": record.prefix,
            "secret_hash": record.secret_hash,
            "principal_id": record.principal_id,
            "created_at": record.created_at,
            "expires_at": record.expires_at,
            "revoked_at": record.revoked_at,
            "last_used_at": record.last_used_at,
        }
        if connection is not None:
            connection.execute(tables.api_keys.insert().values(**values))
            return
        with self._store.transaction() as own:
            own.execute(tables.api_keys.insert().values(**values))

    def find_api_key(self, prefix: str) -> ApiKeyRecord | None:
        with self._store.read() as connection:
            row = connection.execute(
                select(tables.api_keys).where(tables.api_keys.c.prefix == prefix)
            ).one_or_none()
        if row is None:
            return None
        return ApiKeyRecord(**row._mapping)

    def touch_api_key(self, key_id: str, used_at: datetime) -> None:
        with self._store.transaction() as connection:
            connection.execute(
                update(tables.api_keys)
                .where(tables.api_keys.c.id == key_id)
                .values(last_used_at=used_at)
            )

    def revoke_api_key(self, prefix: str, revoked_at: datetime) -> None:
        with self._store.transaction() as connection:
            result = connection.execute(
                update(tables.api_keys)
                .where(tables.api_keys.c.prefix == prefix)
                .values(revoked_at=revoked_at)
            )
        if result.rowcount == 0:
            raise NotFoundError(f"API key with prefix {prefix!r} not found.")
