"""Access attributes of stored resources: the project, classification and allowed regions.

Runs and their artifacts take these from their experiment; model versions
and aliases from their registered model. Lookups of an unknown id raise the
same ``NotFoundError`` as the repositories, so that a service can raise the
identical error for a resource that exists but is hidden from the caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, select

from manara.errors import NotFoundError
from manara.security.policy import Access
from manara.stores.metadata import tables
from manara.stores.metadata.store import MetadataStore


def access_of(row: Any) -> Access:
    regions = row.allowed_regions
    return Access(
        project=row.project,
        classification=row.classification,
        allowed_regions=None if regions is None else frozenset(regions),
    )


def experiment_not_found(experiment_id: str) -> NotFoundError:
    return NotFoundError(f"Experiment {experiment_id!r} not found.", experiment_id=experiment_id)


def run_not_found(run_id: str) -> NotFoundError:
    return NotFoundError(f"Run {run_id!r} not found.", run_id=run_id)


def _columns() -> tuple[Any, ...]:
    experiments = tables.experiments
    return (experiments.c.project, experiments.c.classification, experiments.c.allowed_regions)


def experiment_access(store: MetadataStore, experiment_id: str) -> Access:
    query = select(*_columns()).where(tables.experiments.c.id == experiment_id)
    with store.read() as connection:
        row = connection.execute(query).one_or_none()
    if row is None:
        raise experiment_not_found(experiment_id)
    return access_of(row)


# Built once: every metric logging call checks the run's access, and building
# the expression cost more than running it.
_RUN_ACCESS = (
    select(*_columns())
    .join(tables.runs, tables.runs.c.experiment_id == tables.experiments.c.id)
    .where(tables.runs.c.id == bindparam("run_id"))
)


def run_access(store: MetadataStore, run_id: str) -> Access:
    with store.read() as connection:
        row = connection.execute(_RUN_ACCESS, {"run_id": run_id}).one_or_none()
    if row is None:
        raise run_not_found(run_id)
    return access_of(row)


def experiments_access(
    store: MetadataStore, projects: Iterable[str] | None = None
) -> dict[str, Access]:
    """Access attributes of every experiment, or of those in ``projects``, by experiment id."""
    experiments = tables.experiments
    query = select(experiments.c.id, *_columns())
    if projects is not None:
        query = query.where(experiments.c.project.in_(sorted(set(projects))))
    with store.read() as connection:
        return {row.id: access_of(row) for row in connection.execute(query)}


def model_access(store: MetadataStore, project: str, name: str) -> Access | None:
    """Access attributes of the registered model ``name`` in ``project``, if it exists."""
    models = tables.registered_models
    query = select(models.c.project, models.c.classification, models.c.allowed_regions).where(
        models.c.project == project, models.c.name == name
    )
    with store.read() as connection:
        row = connection.execute(query).one_or_none()
    return None if row is None else access_of(row)


def models_access(store: MetadataStore, project: str) -> dict[str, Access]:
    """Access attributes of every registered model of ``project``, by model name."""
    models = tables.registered_models
    query = select(
        models.c.name, models.c.project, models.c.classification, models.c.allowed_regions
    ).where(models.c.project == project)
    with store.read() as connection:
        return {row.name: access_of(row) for row in connection.execute(query)}
