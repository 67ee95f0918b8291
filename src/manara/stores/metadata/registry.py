"""Repository of registered models, model versions and aliases.

Version numbers are assigned as ``max(version) + 1`` inside the inserting
transaction. Two concurrent inserts can read the same maximum. The unique
constraint on ``(model_id, version)`` then rejects one of them, and that
insert is retried with a fresh transaction.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.exc import IntegrityError as SQLIntegrityError
from sqlalchemy.exc import OperationalError

from manara.errors import ConflictError, NotFoundError, UnavailableError
from manara.ids import new_id
from manara.registry.entities import ModelVersion, RegisteredModel, Signature
from manara.security.policy import Access
from manara.stores.metadata import tables
from manara.stores.metadata.store import MetadataStore

logger = logging.getLogger(__name__)

_MAX_ATTEMPTS = 8
_LISTED_NAMES = 20
_models = tables.registered_models
_versions = tables.model_versions
_aliases = tables.model_aliases


@dataclass(frozen=True)
class NewVersion:
    """The fields of a version to insert; the repository assigns id and number."""

    run_id: str | None
    flavor: str
    artifacts: dict[str, str]
    signature: Signature
    onnx_verified: bool
    metadata: dict[str, Any]
    description: str
    created_by: str


def _listing(kind: str, names: Sequence[str]) -> str:
    if not names:
        return f"No {kind} exist yet."
    listed = ", ".join(names[:_LISTED_NAMES])
    more = f" and {len(names) - _LISTED_NAMES} more" if len(names) > _LISTED_NAMES else ""
    return f"Existing {kind}: {listed}{more}."


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, SQLIntegrityError):
        return True
    # SQLite reports a writer that lost the race for the write lock as "database is locked".
    return isinstance(exc, OperationalError) and "locked" in str(exc.orig)


class RegistryRepository:
    """Models of one project: names are unique per project, and lookups never cross it."""

    def __init__(self, store: MetadataStore, project: str = "default") -> None:
        self._store = store
        self.project = project

    # Models

    def create_model(
        self,
        name: str,
        description: str,
        created_by: str,
        now: datetime,
        access: Access | None = None,
    ) -> RegisteredModel:
        try:
            with self._store.transaction() as connection:
                self._insert_model(connection, name, description, created_by, now, access)
        except SQLIntegrityError as exc:
            raise ConflictError(
                f"A model named {name!r} already exists. Register a new version of it, or "
                "choose another name.",
                model=name,
            ) from exc
        return self.get_model(name)

    def _insert_model(
        self,
        connection: Connection,
        name: str,
        description: str,
        created_by: str,
        now: datetime,
        access: Access | None = None,
    ) -> str:
        model_id = new_id()
        access = access or Access(self.project)
        regions = access.allowed_regions
        connection.execute(
            _models.insert().values(
                id=model_id,
                name=name,
                description=description,
                created_at=now,
                updated_at=now,
                created_by=created_by,
                project=self.project,
                classification=access.classification,
                allowed_regions=None if regions is None else sorted(regions),
            )
        )
        return model_id

    def find_model(self, name: str) -> RegisteredModel | None:
        with self._store.read() as connection:
            row = connection.execute(
                select(_models).where(_models.c.project == self.project, _models.c.name == name)
            ).one_or_none()
            if row is None:
                return None
            return self._model(connection, row)

    def get_model(self, name: str) -> RegisteredModel:
        model = self.find_model(name)
        if model is None:
            raise NotFoundError(
                f"Model {name!r} not found. {_listing('models', self.model_names())}", model=name
            )
        return model

    def model_names(self) -> list[str]:
        with self._store.read() as connection:
            return list(
                connection.execute(
                    select(_models.c.name)
                    .where(_models.c.project == self.project)
                    .order_by(_models.c.name)
                ).scalars()
            )

    def list_models(self, projects: Collection[str] | None = None) -> list[RegisteredModel]:
        """List the models of ``projects``, or of this repository's project."""
        wanted = sorted(projects) if projects is not None else [self.project]
        query = select(_models).where(_models.c.project.in_(wanted))
        with self._store.read() as connection:
            rows = connection.execute(query.order_by(_models.c.name, _models.c.project)).all()
            return [self._model(connection, row) for row in rows]

    def _model(self, connection: Connection, row: Any) -> RegisteredModel:
        latest = connection.execute(
            select(func.max(_versions.c.version)).where(_versions.c.model_id == row.id)
        ).scalar_one_or_none()
        alias_rows = connection.execute(
            select(_aliases.c.alias, _versions.c.version)
            .join(_versions, _versions.c.id == _aliases.c.version_id)
            .where(_aliases.c.model_id == row.id)
            .order_by(_aliases.c.alias)
        ).all()
        return RegisteredModel(
            id=row.id,
            name=row.name,
            description=row.description,
            created_at=row.created_at,
            updated_at=row.updated_at,
            aliases={alias: version for alias, version in alias_rows},
            latest_version=latest,
            project=row.project,
        )

    # Versions

    def create_version(
        self, model_name: str, new: NewVersion, now: datetime, create_model: bool
    ) -> ModelVersion:
        """Insert the next version of ``model_name``; create the model first if asked to."""
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                with self._store.transaction() as connection:
                    number = self._insert_version(connection, model_name, new, now, create_model)
                return self.get_version(model_name, number)
            except (SQLIntegrityError, OperationalError) as exc:
                if not _retryable(exc) or attempt == _MAX_ATTEMPTS:
                    raise UnavailableError(
                        f"Could not register a version of {model_name!r} after {attempt} "
                        f"attempts because of concurrent writes ({type(exc).__name__}). "
                        "Retry the request."
                    ) from exc
                logger.info("version insert raced model=%s attempt=%d", model_name, attempt)
                time.sleep(random.uniform(0.005, 0.02) * attempt)
        raise AssertionError("unreachable: the loop returns or raises")

    def _insert_version(
        self,
        connection: Connection,
        model_name: str,
        new: NewVersion,
        now: datetime,
        create_model: bool,
    ) -> int:
        model_id = connection.execute(
            select(_models.c.id).where(
                _models.c.project == self.project, _models.c.name == model_name
            )
        ).scalar_one_or_none()
        if model_id is None:
            if not create_model:
                raise NotFoundError(
                    f"Model {model_name!r} not found. {_listing('models', self.model_names())}",
                    model=model_name,
                )
            model_id = self._insert_model(connection, model_name, "", new.created_by, now)
        current = connection.execute(
            select(func.max(_versions.c.version)).where(_versions.c.model_id == model_id)
        ).scalar_one_or_none()
        number = (current or 0) + 1
        connection.execute(
            _versions.insert().values(
                id=new_id(),
                model_id=model_id,
                version=number,
                run_id=new.run_id,
                flavor=new.flavor,
                artifacts=new.artifacts,
                signature=new.signature.to_dict(),
                onnx_verified=new.onnx_verified,
                metadata=new.metadata,
                description=new.description,
                created_at=now,
                created_by=new.created_by,
            )
        )
        connection.execute(update(_models).where(_models.c.id == model_id).values(updated_at=now))
        return number

    def _version_query(self, model_name: str) -> Any:
        return (
            select(_versions, _models.c.name.label("model_name"))
            .join(_models, _models.c.id == _versions.c.model_id)
            .where(_models.c.project == self.project, _models.c.name == model_name)
        )

    def get_version(self, model_name: str, version: int) -> ModelVersion:
        model = self.get_model(model_name)
        with self._store.read() as connection:
            row = connection.execute(
                self._version_query(model_name).where(_versions.c.version == version)
            ).one_or_none()
        if row is None:
            numbers = [str(v.version) for v in self.list_versions(model_name)]
            raise NotFoundError(
                f"Version {version} of model {model_name!r} not found. "
                f"{_listing('versions', numbers)}",
                model=model_name,
                version=version,
            )
        return self._version(row, model.aliases)

    def list_versions(self, model_name: str) -> list[ModelVersion]:
        model = self.get_model(model_name)
        with self._store.read() as connection:
            rows = connection.execute(
                self._version_query(model_name).order_by(_versions.c.version)
            ).all()
        return [self._version(row, model.aliases) for row in rows]

    @staticmethod
    def _version(row: Any, aliases: dict[str, int]) -> ModelVersion:
        return ModelVersion(
            id=row.id,
            model_name=row.model_name,
            version=row.version,
            run_id=row.run_id,
            flavor=row.flavor,
            artifacts=dict(row.artifacts),
            signature=Signature.from_dict(row.signature),
            onnx_verified=bool(row.onnx_verified),
            metadata=dict(row.metadata),
            description=row.description,
            created_at=row.created_at,
            aliases=tuple(sorted(a for a, v in aliases.items() if v == row.version)),
        )

    # Aliases

    def set_alias(self, model_name: str, alias: str, version: int, now: datetime) -> ModelVersion:
        target = self.get_version(model_name, version)
        model = self.get_model(model_name)
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                with self._store.transaction() as connection:
                    self._upsert_alias(connection, model.id, alias, target.id, now)
                break
            except (SQLIntegrityError, OperationalError) as exc:
                # A concurrent set_alias inserted the same alias first; the retry moves it.
                if not _retryable(exc) or attempt == _MAX_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0.005, 0.02) * attempt)
        return self.get_version(model_name, version)

    @staticmethod
    def _upsert_alias(
        connection: Connection, model_id: str, alias: str, version_id: str, now: datetime
    ) -> None:
        moved = connection.execute(
            update(_aliases)
            .where(_aliases.c.model_id == model_id, _aliases.c.alias == alias)
            .values(version_id=version_id, updated_at=now)
        )
        if moved.rowcount == 0:
            connection.execute(
                _aliases.insert().values(
                    model_id=model_id, alias=alias, version_id=version_id, updated_at=now
                )
            )

    def delete_alias(self, model_name: str, alias: str) -> None:
        model = self.get_model(model_name)
        with self._store.transaction() as connection:
            deleted = connection.execute(
                delete(_aliases).where(_aliases.c.model_id == model.id, _aliases.c.alias == alias)
            )
        if deleted.rowcount == 0:
            raise NotFoundError(
                f"Alias {alias!r} of model {model_name!r} not found. "
                f"{_listing('aliases', sorted(model.aliases))}",
                model=model_name,
                alias=alias,
            )

    def version_for_alias(self, model_name: str, alias: str) -> ModelVersion:
        model = self.get_model(model_name)
        if alias not in model.aliases:
            raise NotFoundError(
                f"Alias {alias!r} of model {model_name!r} not found. "
                f"{_listing('aliases', sorted(model.aliases))}",
                model=model_name,
                alias=alias,
            )
        return self.get_version(model_name, model.aliases[alias])
