"""Placement of a run's or model's artifacts: the project and classification they inherit.

Artifacts take these two values from the experiment of their run, or from
their registered model, and bind them into their encryption context.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from manara.errors import NotFoundError
from manara.stores.metadata import tables
from manara.stores.metadata.store import MetadataStore


@dataclass(frozen=True)
class Placement:
    project: str
    classification: str


def run_placement(store: MetadataStore, run_id: str) -> Placement:
    """Return the project and classification of the experiment that ``run_id`` belongs to."""
    runs, experiments = tables.runs, tables.experiments
    query = (
        select(experiments.c.project, experiments.c.classification)
        .join(runs, runs.c.experiment_id == experiments.c.id)
        .where(runs.c.id == run_id)
    )
    with store.read() as connection:
        row = connection.execute(query).one_or_none()
    if row is None:
        raise NotFoundError(f"Run {run_id!r} not found.", run_id=run_id)
    return Placement(row.project, row.classification)


def model_placement(store: MetadataStore, project: str, name: str) -> Placement | None:
    """Return the placement of the registered model ``name`` in ``project``, if it exists."""
    models = tables.registered_models
    query = select(models.c.project, models.c.classification).where(
        models.c.project == project, models.c.name == name
    )
    with store.read() as connection:
        row = connection.execute(query).one_or_none()
    return None if row is None else Placement(row.project, row.classification)
