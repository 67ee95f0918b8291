"""Repository of projects, principals, project memberships and API keys.

A principal holds ``roles`` in its home project (``principals.project``);
rows of ``project_members`` give it roles in other projects. Both are
returned on the ``Principal``: ``roles`` and ``memberships``, and
``Principal.roles_in(project)`` reads either.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
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


@dataclass(frozen=True)
class Project:
    """A tenant: principals, experiments and models belong to one project."""

    name: str
    description: str
    created_at: datetime


@dataclass(frozen=True)
class PrincipalRecord:
    """A stored principal with the attributes that are not part of its identity."""

    principal: Principal
    created_at: datetime
    disabled_at: datetime | None
    clearance: str
    region: str | None


def _principal(row: Any, memberships: dict[str, frozenset[str]]) -> Principal:
    return Principal(
        id=row.id,
        name=row.name,
        kind=row.kind,
        roles=frozenset(row.roles),
        project=row.project,
        memberships=MappingProxyType(memberships),
        clearance=row.clearance,
        region=row.region,
    )


def _record(row: Any, memberships: dict[str, frozenset[str]]) -> PrincipalRecord:
    return PrincipalRecord(
        principal=_principal(row, memberships),
        created_at=row.created_at,
        disabled_at=row.disabled_at,
        clearance=row.clearance,
        region=row.region,
    )


def _memberships(
    connection: Connection, principal_ids: Iterable[str]
) -> dict[str, dict[str, frozenset[str]]]:
    members = tables.project_members
    rows = connection.execute(
        select(members.c.principal_id, members.c.project, members.c.roles).where(
            members.c.principal_id.in_(list(principal_ids))
        )
    ).all()
    found: dict[str, dict[str, frozenset[str]]] = {}
    for row in rows:
        found.setdefault(row.principal_id, {})[row.project] = frozenset(row.roles)
    return found


class IdentityRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # Projects

    def create_project(self, project: Project, connection: Connection | None = None) -> Project:
        if self.find_project(project.name) is not None:
            raise ConflictError(
                f"A project named {project.name!r} already exists. Choose another name."
            )
        statement = tables.projects.insert().values(
            name=project.name, description=project.description, created_at=project.created_at
        )
        if connection is not None:
            connection.execute(statement)
        else:
            with self._store.transaction() as own:
                own.execute(statement)
        return project

    def find_project(self, name: str) -> Project | None:
        with self._store.read() as connection:
            row = connection.execute(
                select(tables.projects).where(tables.projects.c.name == name)
            ).one_or_none()
        return None if row is None else Project(row.name, row.description, row.created_at)

    def list_projects(self) -> list[Project]:
        with self._store.read() as connection:
            rows = connection.execute(
                select(tables.projects).order_by(tables.projects.c.name)
            ).all()
        return [Project(row.name, row.description, row.created_at) for row in rows]

    # Principals

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
            "clearance": principal.clearance,
            "region": principal.region,
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
        return self.get_principal_record(principal_id).principal

    def get_principal_record(self, principal_id: str) -> PrincipalRecord:
        """Return the principal with its memberships and whether it is disabled."""
        with self._store.read() as connection:
            row = connection.execute(
                select(tables.principals).where(tables.principals.c.id == principal_id)
            ).one_or_none()
            if row is None:
                raise NotFoundError(f"Principal {principal_id!r} not found.")
            memberships = _memberships(connection, [row.id]).get(row.id, {})
        return _record(row, memberships)

    def find_principal_by_name(self, name: str) -> Principal | None:
        record = self.find_principal_record(name)
        return None if record is None else record.principal

    def find_principal_record(self, name: str) -> PrincipalRecord | None:
        with self._store.read() as connection:
            row = connection.execute(
                select(tables.principals).where(tables.principals.c.name == name)
            ).one_or_none()
            if row is None:
                return None
            memberships = _memberships(connection, [row.id]).get(row.id, {})
        return _record(row, memberships)

    def list_principals(self, project: str | None = None) -> list[PrincipalRecord]:
        """List principals by name; with ``project``, those at home in it or members of it."""
        principals = tables.principals
        statement = select(principals).order_by(principals.c.name)
        if project is not None:
            member_ids = select(tables.project_members.c.principal_id).where(
                tables.project_members.c.project == project
            )
            statement = statement.where(
                (principals.c.project == project) | principals.c.id.in_(member_ids)
            )
        with self._store.read() as connection:
            rows = connection.execute(statement).all()
            memberships = _memberships(connection, [row.id for row in rows])
        return [_record(row, memberships.get(row.id, {})) for row in rows]

    def disable_principal(self, principal_id: str, disabled_at: datetime) -> None:
        """Mark a principal disabled; a principal already disabled keeps its first time."""
        with self._store.transaction() as connection:
            result = connection.execute(
                update(tables.principals)
                .where(tables.principals.c.id == principal_id)
                .where(tables.principals.c.disabled_at.is_(None))
                .values(disabled_at=disabled_at)
            )
        if result.rowcount == 0 and self.get_principal_record(principal_id).disabled_at is None:
            raise NotFoundError(f"Principal {principal_id!r} not found.")

    def memberships(self, principal_id: str) -> dict[str, frozenset[str]]:
        """Return the principal's roles in projects other than its home project.

        The policy decision point reads the same data through
        ``Principal.memberships`` and ``Principal.roles_in(project)``.
        """
        with self._store.read() as connection:
            found = _memberships(connection, [principal_id]).get(principal_id, {})
        return dict(found)

    def set_membership(
        self, principal_id: str, project: str, roles: frozenset[str], created_at: datetime
    ) -> None:
        """Give a principal ``roles`` in another project, replacing the roles it had there."""
        members = tables.project_members
        with self._store.transaction() as connection:
            exists = connection.execute(
                select(members.c.principal_id).where(
                    (members.c.principal_id == principal_id) & (members.c.project == project)
                )
            ).one_or_none()
            if exists is None:
                connection.execute(
                    members.insert().values(
                        principal_id=principal_id,
                        project=project,
                        roles=sorted(roles),
                        created_at=created_at,
                    )
                )
            else:
                connection.execute(
                    update(members)
                    .where(
                        (members.c.principal_id == principal_id) & (members.c.project == project)
                    )
                    .values(roles=sorted(roles))
                )

    # API keys

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

    def list_api_keys(self, principal_id: str | None = None) -> list[ApiKeyRecord]:
        """List keys by creation time, optionally of one principal."""
        keys = tables.api_keys
        statement = select(keys).order_by(keys.c.created_at, keys.c.prefix)
        if principal_id is not None:
            statement = statement.where(keys.c.principal_id == principal_id)
        with self._store.read() as connection:
            rows = connection.execute(statement).all()
        return [ApiKeyRecord(**row._mapping) for row in rows]

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
