"""Repository of experiments and runs: params, tags, metrics, inputs and artifacts.

Each write is one transaction that first checks the run still accepts
writes, so a rejected write changes nothing. Rows stay inside this module;
callers get the dataclasses of ``manara.tracking.entities``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError as SQLIntegrityError

from manara.errors import ConflictError, NotFoundError
from manara.security.policy import Access
from manara.stores.metadata import tables
from manara.stores.metadata.metric_series import decode_history, encode_chunks
from manara.stores.metadata.store import MetadataStore
from manara.stores.metadata.tracking_search import latest_metrics, search_statement
from manara.tracking.entities import (
    TERMINAL_STATUSES,
    DatasetInput,
    Experiment,
    Metric,
    Run,
    RunArtifact,
    RunStatus,
)
from manara.tracking.search import Comparison, OrderBy
from manara.tracking.validation import MetricBatch, from_timestamp_ms


def _experiment(row: Row[Any]) -> Experiment:
    return Experiment(
        id=row.id,
        name=row.name,
        description=row.description,
        tags=dict(row.tags),
        created_at=row.created_at,
        project=row.project,
    )


def _dataset(row: Row[Any]) -> DatasetInput:
    return DatasetInput(
        name=row.name,
        digest=row.digest,
        schema=dict(row.schema),
        row_count=row.row_count,
        source=row.source,
        context=row.context,
        artifact_digest=row.artifact_digest,
    )


_RUN_STATUS = select(tables.runs.c.status).where(tables.runs.c.id == bindparam("run_id"))
_RUN_STATUS_FOR_UPDATE = _RUN_STATUS.with_for_update()


def _metric_statements(paramstyle: str) -> tuple[str, str]:
    """SQL text of the chunk insert and the latest-value upsert, for the driver's paramstyle."""
    if paramstyle not in ("qmark", "format", "pyformat"):
        raise NotImplementedError(
            f"Logging metrics needs a driver with the qmark or format parameter style; "
            f"this one uses {paramstyle!r}. Use SQLite (sqlite3) or PostgreSQL (psycopg)."
        )
    mark = "?" if paramstyle == "qmark" else "%s"
    chunks, latest = tables.metric_chunks.name, tables.latest_metrics.name
    insert_chunk = (
        f"INSERT INTO {chunks} (run_id, key, digest, count, min_step, max_step, step_data, "
        f"time_data, value_data) VALUES ({', '.join([mark] * 9)}) ON CONFLICT DO NOTHING"
    )
    # The stored value is replaced only by a later one: a higher step, then a
    # later timestamp, then a higher value (row values compare in that order).
    upsert_latest = (
        f"INSERT INTO {latest} (run_id, key, step, timestamp_ms, value) "
        f"VALUES ({', '.join([mark] * 5)}) "
        "ON CONFLICT (run_id, key) DO UPDATE SET step = excluded.step, "
        "timestamp_ms = excluded.timestamp_ms, value = excluded.value "
        f"WHERE (excluded.step, excluded.timestamp_ms, excluded.value) > "
        f"({latest}.step, {latest}.timestamp_ms, {latest}.value)"
    )
    return insert_chunk, upsert_latest


class TrackingRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # Experiments

    def create_experiment(
        self, experiment: Experiment, created_by: str, access: Access | None = None
    ) -> Experiment:
        """Insert an experiment; its name must be new in its project (``experiment.project``)."""
        table = tables.experiments
        access = access or Access(experiment.project)
        regions = access.allowed_regions
        try:
            with self._store.transaction() as connection:
                exists = connection.execute(
                    select(table.c.id).where(
                        table.c.project == experiment.project, table.c.name == experiment.name
                    )
                ).first()
                if exists is not None:
                    raise self._duplicate_experiment(experiment.name)
                connection.execute(
                    table.insert().values(
                        id=experiment.id,
                        name=experiment.name,
                        description=experiment.description,
                        tags=experiment.tags,
                        created_at=experiment.created_at,
                        created_by=created_by,
                        project=experiment.project,
                        classification=access.classification,
                        allowed_regions=None if regions is None else sorted(regions),
                    )
                )
        except SQLIntegrityError as exc:
            # Another caller created the same name between the check and the insert.
            raise self._duplicate_experiment(experiment.name) from exc
        return experiment

    @staticmethod
    def _duplicate_experiment(name: str) -> ConflictError:
        return ConflictError(
            f"An experiment named {name!r} already exists. Use it, or choose another name.",
            name=name,
        )

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self._store.read() as connection:
            row = connection.execute(
                select(tables.experiments).where(tables.experiments.c.id == experiment_id)
            ).one_or_none()
        if row is None:
            raise NotFoundError(
                f"Experiment {experiment_id!r} not found.", experiment_id=experiment_id
            )
        return _experiment(row)

    def get_experiment_by_name(self, name: str, project: str) -> Experiment:
        table = tables.experiments
        with self._store.read() as connection:
            row = connection.execute(
                select(table).where(table.c.project == project, table.c.name == name)
            ).one_or_none()
        if row is None:
            raise NotFoundError(f"Experiment named {name!r} not found. Create it first.", name=name)
        return _experiment(row)

    def list_experiments(self, projects: Collection[str] | None = None) -> list[Experiment]:
        """List experiments, all of them or those of ``projects``, oldest first."""
        table = tables.experiments
        query = select(table).order_by(table.c.created_at, table.c.name)
        if projects is not None:
            query = query.where(table.c.project.in_(sorted(projects)))
        with self._store.read() as connection:
            return [_experiment(row) for row in connection.execute(query)]

    # Runs

    def create_run(self, run: Run, created_by: str) -> Run:
        with self._store.transaction() as connection:
            experiment = connection.execute(
                select(tables.experiments.c.id).where(tables.experiments.c.id == run.experiment_id)
            ).first()
            if experiment is None:
                raise NotFoundError(
                    f"Experiment {run.experiment_id!r} not found; cannot create a run in it.",
                    experiment_id=run.experiment_id,
                )
            connection.execute(
                tables.runs.insert().values(
                    id=run.id,
                    experiment_id=run.experiment_id,
                    name=run.name,
                    status=run.status,
                    start_time=run.start_time,
                    end_time=run.end_time,
                    created_by=created_by,
                )
            )
            if run.tags:
                connection.execute(
                    tables.run_tags.insert(),
                    [{"run_id": run.id, "key": k, "value": v} for k, v in run.tags.items()],
                )
        return run

    def get_run(self, run_id: str) -> Run:
        with self._store.read() as connection:
            row = connection.execute(
                select(tables.runs).where(tables.runs.c.id == run_id)
            ).one_or_none()
            if row is None:
                raise self._run_not_found(run_id)
            return self._load_runs(connection, [row])[0]

    @staticmethod
    def _run_not_found(run_id: str) -> NotFoundError:
        return NotFoundError(f"Run {run_id!r} not found.", run_id=run_id)

    def _load_runs(self, connection: Connection, rows: Sequence[Row[Any]]) -> list[Run]:
        """Build runs with their params, tags, latest metrics, inputs and artifacts."""
        ids = [row.id for row in rows]
        params: dict[str, dict[str, str]] = defaultdict(dict)
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        metrics: dict[str, dict[str, float]] = defaultdict(dict)
        inputs: dict[str, list[DatasetInput]] = defaultdict(list)
        artifacts: dict[str, list[RunArtifact]] = defaultdict(list)
        for table, target in ((tables.run_params, params), (tables.run_tags, tags)):
            query = select(table).where(table.c.run_id.in_(ids)).order_by(table.c.key)
            for item in connection.execute(query):
                target[item.run_id][item.key] = item.value
        latest = latest_metrics(ids)
        for item in connection.execute(select(latest).order_by(latest.c.key)):
            metrics[item.run_id][item.key] = item.value
        run_inputs = tables.run_inputs
        query = select(run_inputs).where(run_inputs.c.run_id.in_(ids))
        for item in connection.execute(query.order_by(run_inputs.c.created_at, run_inputs.c.id)):
            inputs[item.run_id].append(_dataset(item))
        run_artifacts = tables.run_artifacts
        query = select(run_artifacts).where(run_artifacts.c.run_id.in_(ids))
        for item in connection.execute(query.order_by(run_artifacts.c.path)):
            artifacts[item.run_id].append(RunArtifact(item.path, item.digest, item.size))
        return [
            Run(
                id=row.id,
                experiment_id=row.experiment_id,
                name=row.name,
                status=row.status,
                start_time=row.start_time,
                end_time=row.end_time,
                params=params[row.id],
                tags=tags[row.id],
                metrics=metrics[row.id],
                inputs=inputs[row.id],
                artifacts=artifacts[row.id],
            )
            for row in rows
        ]

    def _run_status(self, connection: Connection, run_id: str, lock: bool = False) -> str:
        """Return the run's status; ``lock`` locks the row until the transaction ends."""
        query = (
            _RUN_STATUS_FOR_UPDATE if lock and self._store.dialect == "postgresql" else _RUN_STATUS
        )
        status: str | None = connection.execute(query, {"run_id": run_id}).scalar_one_or_none()
        if status is None:
            raise self._run_not_found(run_id)
        return status

    def _writable_run(self, connection: Connection, run_id: str, written: str) -> None:
        status = self._run_status(connection, run_id, lock=True)
        if status in TERMINAL_STATUSES:
            raise ConflictError(
                f"Cannot log {written} to run {run_id!r}: it is {status}. Start a new run.",
                run_id=run_id,
                status=status,
            )

    def set_run_status(self, run_id: str, status: RunStatus, now: datetime) -> None:
        with self._store.transaction() as connection:
            current = self._run_status(connection, run_id, lock=True)
            if current == status:
                return
            if current in TERMINAL_STATUSES:
                raise ConflictError(
                    f"Cannot set run {run_id!r} to {status}: it already ended as {current}.",
                    run_id=run_id,
                    status=current,
                )
            end_time = now if status in TERMINAL_STATUSES else None
            connection.execute(
                update(tables.runs)
                .where(tables.runs.c.id == run_id)
                .values(status=status, end_time=end_time)
            )

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        table = tables.run_params
        try:
            with self._store.transaction() as connection:
                self._writable_run(connection, run_id, "params")
                found = connection.execute(
                    select(table.c.key, table.c.value).where(
                        table.c.run_id == run_id, table.c.key.in_(list(params))
                    )
                )
                existing: dict[str, str] = {row.key: row.value for row in found}
                for key, value in params.items():
                    if key in existing and existing[key] != value:
                        raise self._param_conflict(run_id, key, existing[key], value)
                new = [
                    {"run_id": run_id, "key": key, "value": value}
                    for key, value in params.items()
                    if key not in existing
                ]
                if new:
                    connection.execute(table.insert(), new)
        except SQLIntegrityError as exc:
            raise ConflictError(
                f"Params of run {run_id!r} were logged by another caller at the same time. "
                "Retry to see which values were kept.",
                run_id=run_id,
            ) from exc

    @staticmethod
    def _param_conflict(run_id: str, key: str, old: str, new: str) -> ConflictError:
        return ConflictError(
            f"Param {key!r} of run {run_id!r} is already {old!r}; cannot change it to {new!r}. "
            "Params are immutable: log the new value under another key or in a new run.",
            run_id=run_id,
            key=key,
            old_value=old,
            new_value=new,
        )

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Insert or replace tags; tags stay editable after a run ends."""
        if not tags:
            self.get_run_status(run_id)
            return
        insert = pg_insert if self._store.dialect == "postgresql" else sqlite_insert
        statement = insert(tables.run_tags)
        statement = statement.on_conflict_do_update(
            index_elements=["run_id", "key"], set_={"value": statement.excluded.value}
        )
        with self._store.transaction() as connection:
            self._run_status(connection, run_id, lock=True)
            connection.execute(
                statement, [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()]
            )

    def get_run_status(self, run_id: str) -> str:
        with self._store.read() as connection:
            return self._run_status(connection, run_id)

    def log_metrics(self, run_id: str, batch: MetricBatch) -> None:
        """Store a checked batch: one chunk per key and the latest values, in one transaction."""
        chunks = encode_chunks(batch)
        with self._store.transaction() as connection:
            self._writable_run(connection, run_id, "metrics")
            if not chunks:
                return
            insert_chunk, upsert_latest = _metric_statements(connection.dialect.paramstyle)
            connection.exec_driver_sql(
                insert_chunk,
                [
                    (
                        run_id,
                        chunk.key,
                        chunk.digest,
                        chunk.count,
                        chunk.min_step,
                        chunk.max_step,
                        chunk.step_data,
                        chunk.time_data,
                        chunk.value_data,
                    )
                    for chunk in chunks
                ],
            )
            connection.exec_driver_sql(
                upsert_latest, [(run_id, chunk.key, *chunk.latest) for chunk in chunks]
            )

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        table = tables.metric_chunks
        with self._store.read() as connection:
            self._run_status(connection, run_id)
            stored = connection.execute(
                select(table.c.count, table.c.step_data, table.c.time_data, table.c.value_data)
                .where(table.c.run_id == run_id, table.c.key == key)
                .order_by(table.c.min_step, table.c.digest)
            ).all()
        history = decode_history(tuple(row) for row in stored)
        return [
            Metric(key, value, step, from_timestamp_ms(stamp))
            for step, stamp, value in zip(
                history.steps.tolist(),
                history.timestamps_ms.tolist(),
                history.values.tolist(),
                strict=True,
            )
        ]

    def log_input(
        self, run_id: str, dataset: DatasetInput, input_id: str, created_at: datetime
    ) -> None:
        """Record a data set once per run, name, context and digest; a repeat is a no-op."""
        table = tables.run_inputs
        with self._store.transaction() as connection:
            self._writable_run(connection, run_id, "inputs")
            repeat = connection.execute(
                select(table.c.id).where(
                    table.c.run_id == run_id,
                    table.c.name == dataset.name,
                    table.c.context == dataset.context,
                    table.c.digest == dataset.digest,
                )
            ).first()
            if repeat is not None:
                return
            connection.execute(
                table.insert().values(
                    id=input_id,
                    run_id=run_id,
                    name=dataset.name,
                    context=dataset.context,
                    digest=dataset.digest,
                    schema=dataset.schema,
                    row_count=dataset.row_count,
                    source=dataset.source,
                    artifact_digest=dataset.artifact_digest,
                    created_at=created_at,
                )
            )

    def add_artifact(self, run_id: str, artifact: RunArtifact, created_at: datetime) -> None:
        """Record an artifact path; the same content again is a no-op, other content conflicts."""
        table = tables.run_artifacts
        with self._store.transaction() as connection:
            self._writable_run(connection, run_id, "artifacts")
            existing = connection.execute(
                select(table.c.digest).where(
                    table.c.run_id == run_id, table.c.path == artifact.path
                )
            ).scalar_one_or_none()
            if existing == artifact.digest:
                return
            if existing is not None:
                raise ConflictError(
                    f"Artifact {artifact.path!r} of run {run_id!r} already exists with other "
                    f"content (sha256 {existing}). Artifacts are immutable: use another path.",
                    run_id=run_id,
                    path=artifact.path,
                )
            connection.execute(
                table.insert().values(
                    run_id=run_id,
                    path=artifact.path,
                    digest=artifact.digest,
                    size=artifact.size,
                    created_at=created_at,
                )
            )

    def get_artifact(self, run_id: str, path: str) -> RunArtifact:
        table = tables.run_artifacts
        with self._store.read() as connection:
            self._run_status(connection, run_id)
            row = connection.execute(
                select(table).where(table.c.run_id == run_id, table.c.path == path)
            ).one_or_none()
        if row is None:
            raise NotFoundError(
                f"Artifact {path!r} not found in run {run_id!r}.", run_id=run_id, path=path
            )
        return RunArtifact(row.path, row.digest, row.size)

    def search_runs(
        self,
        experiment_ids: Sequence[str] | None,
        comparisons: Sequence[Comparison],
        order_by: Sequence[OrderBy],
        max_results: int,
    ) -> list[Run]:
        statement = search_statement(
            experiment_ids, comparisons, order_by, max_results, self._store.dialect
        )
        with self._store.read() as connection:
            rows = connection.execute(statement).all()
            if not rows:
                return []
            return self._load_runs(connection, rows)
