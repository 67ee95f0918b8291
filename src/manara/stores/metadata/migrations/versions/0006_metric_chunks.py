"""Store metric values as one chunk of arrays per key and logging call.

Replaces ``run_metrics`` (a row per value) with ``metric_chunks`` and
``latest_metrics``; see ``manara.stores.metadata.metric_series``. Existing
values move into one chunk per run and key, and the latest value of each
is computed once here.

Revision ID: 0006
Revises: 0005
"""

import hashlib
from collections.abc import Iterator, Sequence
from itertools import groupby
from typing import Any

import numpy as np
import sqlalchemy as sa
from alembic import op

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
    # stream_results uses a server-side cursor on PostgreSQL, whose default
    # cursor would load the whole table at once. SQLite reads in steps anyway.
    result = connection.execute(
        sa.text(
            "SELECT run_id, key, step, timestamp_ms, value FROM run_metrics "
            "ORDER BY run_id, key, step, timestamp_ms, value"
        ).execution_options(stream_results=True)
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


# The chunk format as of this revision, copied rather than imported, so that a
# later change to manara.stores.metadata.metric_series cannot change what this
# migration writes or reads.


def _encode(key: str, rows: Sequence[Any]) -> dict[str, Any]:
    """Encode the rows ``(run_id, key, step, timestamp_ms, value)`` of one series as a chunk."""
    steps = np.array([row[2] for row in rows], dtype="<i8")
    stamps = np.array([row[3] for row in rows], dtype="<i8")
    values = np.array([row[4] for row in rows], dtype="<f8")
    same_time = bool((stamps == stamps[0]).all())
    step_data, value_data = steps.tobytes(), values.tobytes()
    time_data = (stamps[:1] if same_time else stamps).tobytes()
    digest = hashlib.blake2b(digest_size=16)
    for part in (key.encode(), step_data, time_data, value_data):
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return {
        "digest": digest.hexdigest(),
        "count": len(rows),
        "min_step": int(steps.min()),
        "max_step": int(steps.max()),
        "step_data": step_data,
        "time_data": time_data,
        "value_data": value_data,
    }


def _decode(count: int, step_data: bytes, time_data: bytes, value_data: bytes) -> list[Any]:
    """Return ``(step, timestamp_ms, value)`` tuples of one chunk."""
    steps = np.frombuffer(step_data, dtype="<i8").tolist()
    stamps = np.frombuffer(time_data, dtype="<i8").tolist()
    values = np.frombuffer(value_data, dtype="<f8").tolist()
    if len(stamps) == 1:
        stamps = stamps * count
    return list(zip(steps, stamps, values, strict=True))


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
        connection.execute(chunks.insert().values(run_id=run_id, key=key, **_encode(key, rows)))
        # Rows arrive sorted by step, time and value, so the last one is the latest.
        _, _, step, timestamp_ms, value = rows[-1]
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
        history = sorted({item for row in stored for item in _decode(*row)})
        connection.execute(
            target.insert(),
            [
                {"run_id": run_id, "key": key, "step": step, "timestamp_ms": stamp, "value": value}
                for step, stamp, value in history
            ],
        )
    op.drop_table("latest_metrics")
    op.drop_table("metric_chunks")
