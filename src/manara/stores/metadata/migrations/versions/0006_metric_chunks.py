"""Store metric values as one chunk of arrays per key and logging call.

Replaces ``run_metrics`` (a row per value) with ``metric_chunks`` and
``latest_metrics``; see ``manara.stores.metadata.metric_series``. Existing
values move into one chunk per run and key, and the latest value of each
is computed once here.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Iterator, Sequence
from itertools import groupby
from typing import Any

import numpy as np
import sqlalchemy as sa
from alembic import op

from manara.stores.metadata.metric_series import decode_history, encode_chunks
from manara.tracking.validation import MetricBatch

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ROWS_PER_READ = 100_000


def _chunks_table() -> sa.TableClause:
    return sa.table(
        "metric_chunks",
        *(
            sa.column(name)
            for name in (
                "run_id",
                "key",
                "digest",
                "count",
                "min_step",
                "max_step",
                "step_data",
                "time_data",
                "value_data",
            )
        ),
    )


def _series(connection: sa.Connection) -> Iterator[tuple[tuple[str, str], list[Any]]]:
    """Yield ``((run_id, key), rows)`` for each stored series of ``run_metrics``."""
    result = connection.execute(
        sa.text(
            "SELECT run_id, key, step, timestamp_ms, value FROM run_metrics "
            "ORDER BY run_id, key, step, timestamp_ms, value"
        )
    )
    pending: list[Any] = []
    while rows := result.fetchmany(_ROWS_PER_READ):
        pending.extend(rows)
        complete = pending[-1][:2]
        ready = [row for row in pending if row[:2] != complete]
        pending = pending[len(ready) :]
        for series_key, group in groupby(ready, key=lambda row: (row[0], row[1])):
            yield series_key, list(group)
    for series_key, group in groupby(pending, key=lambda row: (row[0], row[1])):
        yield series_key, list(group)


def _batch(key: str, rows: Sequence[Any]) -> MetricBatch:
    return MetricBatch(
        [key] * len(rows),
        np.array([row[4] for row in rows], dtype=np.float64),
        np.array([row[2] for row in rows], dtype=np.int64),
        np.array([row[3] for row in rows], dtype=np.int64),
    )


def upgrade() -> None:
    op.create_table(
        "metric_chunks",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("digest", sa.String(32), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("min_step", sa.BigInteger, nullable=False),
        sa.Column("max_step", sa.BigInteger, nullable=False),
        sa.Column("step_data", sa.LargeBinary, nullable=False),
        sa.Column("time_data", sa.LargeBinary, nullable=False),
        sa.Column("value_data", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key", "digest", name="pk_metric_chunks"),
    )
    op.create_table(
        "latest_metrics",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key", name="pk_latest_metrics"),
    )
    connection = op.get_bind()
    chunks = _chunks_table()
    latest = sa.table(
        "latest_metrics",
        *(sa.column(name) for name in ("run_id", "key", "step", "timestamp_ms", "value")),
    )
    for (run_id, key), rows in _series(connection):
        (chunk,) = encode_chunks(_batch(key, rows))
        connection.execute(
            chunks.insert().values(
                run_id=run_id,
                key=key,
                digest=chunk.digest,
                count=chunk.count,
                min_step=chunk.min_step,
                max_step=chunk.max_step,
                step_data=chunk.step_data,
                time_data=chunk.time_data,
                value_data=chunk.value_data,
            )
        )
        step, timestamp_ms, value = chunk.latest
        connection.execute(
            latest.insert().values(
                run_id=run_id, key=key, step=step, timestamp_ms=timestamp_ms, value=value
            )
        )
    op.drop_table("run_metrics")


def downgrade() -> None:
    op.create_table(
        "run_metrics",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint(
            "run_id", "key", "step", "timestamp_ms", "value", name="pk_run_metrics"
        ),
        sqlite_with_rowid=False,
    )
    connection = op.get_bind()
    series = connection.execute(
        sa.text("SELECT DISTINCT run_id, key FROM metric_chunks ORDER BY run_id, key")
    ).all()
    target = sa.table(
        "run_metrics",
        *(sa.column(name) for name in ("run_id", "key", "step", "timestamp_ms", "value")),
    )
    for run_id, key in series:
        stored = connection.execute(
            sa.text(
                "SELECT count, step_data, time_data, value_data FROM metric_chunks "
                "WHERE run_id = :run_id AND key = :key"
            ),
            {"run_id": run_id, "key": key},
        ).all()
        history = decode_history(tuple(row) for row in stored)
        connection.execute(
            target.insert(),
            [
                {
                    "run_id": run_id,
                    "key": key,
                    "step": int(step),
                    "timestamp_ms": int(stamp),
                    "value": float(value),
                }
                for step, stamp, value in zip(
                    history.steps, history.timestamps_ms, history.values, strict=True
                )
            ],
        )
    op.drop_table("latest_metrics")
    op.drop_table("metric_chunks")
