"""Store metrics in one B-tree keyed by (run, key, step, time, value).

The table had a row id plus a secondary index on (run_id, key, step), so
every insert wrote two B-trees. A clustered primary key (``WITHOUT ROWID``
on SQLite) writes one, and makes an identical metric logged twice (an
idempotent retry) a single row.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_KEY = ("run_id", "key", "step", "timestamp_ms", "value")


def _create(name: str) -> None:
    op.create_table(
        name,
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint(*_KEY, name=f"pk_{name}"),
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    _create("run_metrics_clustered")
    columns = ", ".join(_KEY)
    op.execute(
        f"INSERT INTO run_metrics_clustered ({columns}) SELECT DISTINCT {columns} FROM run_metrics"
    )
    op.drop_index("ix_run_metrics_run_key_step", "run_metrics")
    op.drop_table("run_metrics")
    op.rename_table("run_metrics_clustered", "run_metrics")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE run_metrics RENAME CONSTRAINT pk_run_metrics_clustered TO pk_run_metrics"
        )


def downgrade() -> None:
    op.create_table(
        "run_metrics_rowid",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger, nullable=False),
    )
    columns = ", ".join(_KEY)
    op.execute(f"INSERT INTO run_metrics_rowid ({columns}) SELECT {columns} FROM run_metrics")
    op.drop_table("run_metrics")
    op.rename_table("run_metrics_rowid", "run_metrics")
    op.create_index("ix_run_metrics_run_key_step", "run_metrics", ["run_id", "key", "step"])
