"""Projects as tenants, attributes for attribute-based access, artifact approvals.

Experiment and model names become unique per project instead of globally,
so that one tenant cannot learn another's names from a conflict error.

Revision ID: 0003
Revises: 0002
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from manara.stores.metadata.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Gives the unnamed unique constraints of 0001 a name that batch mode on SQLite can drop.
_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _unique_name_constraint(table: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"{table}_name_key"
    return f"uq_{table}_name"


def upgrade() -> None:
    projects = op.create_table(
        "projects",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.bulk_insert(
        projects,
        [{"name": "default", "description": "", "created_at": datetime.now(UTC)}],
    )
    op.create_table(
        "project_members",
        sa.Column("principal_id", sa.String(32), sa.ForeignKey("principals.id"), primary_key=True),
        sa.Column("project", sa.String(100), sa.ForeignKey("projects.name"), primary_key=True),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    for table in ("experiments", "registered_models"):
        with op.batch_alter_table(table, naming_convention=_NAMING) as batch:
            batch.add_column(
                sa.Column("project", sa.String(100), nullable=False, server_default="default")
            )
            batch.add_column(
                sa.Column(
                    "classification", sa.String(32), nullable=False, server_default="internal"
                )
            )
            batch.add_column(sa.Column("allowed_regions", sa.JSON, nullable=True))
            batch.drop_constraint(_unique_name_constraint(table), type_="unique")
            batch.create_unique_constraint(f"uq_{table}_project_name", ["project", "name"])
    with op.batch_alter_table("principals") as batch:
        batch.add_column(
            sa.Column("clearance", sa.String(32), nullable=False, server_default="internal")
        )
        batch.add_column(sa.Column("region", sa.String(64), nullable=True))
        batch.add_column(sa.Column("disabled_at", UTCDateTime, nullable=True))
    op.create_table(
        "artifact_approvals",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("scan", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(32), nullable=False),
        sa.Column("requested_at", UTCDateTime, nullable=False),
        sa.Column("decided_by", sa.String(32), nullable=True),
        sa.Column("decided_at", UTCDateTime, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_artifact_approvals_digest", "artifact_approvals", ["digest", "project"])


def downgrade() -> None:
    op.drop_index("ix_artifact_approvals_digest", "artifact_approvals")
    op.drop_table("artifact_approvals")
    with op.batch_alter_table("principals") as batch:
        batch.drop_column("disabled_at")
        batch.drop_column("region")
        batch.drop_column("clearance")
    for table in ("registered_models", "experiments"):
        with op.batch_alter_table(table, naming_convention=_NAMING) as batch:
            batch.drop_constraint(f"uq_{table}_project_name", type_="unique")
            batch.create_unique_constraint(_unique_name_constraint(table), ["name"])
            batch.drop_column("allowed_regions")
            batch.drop_column("classification")
            batch.drop_column("project")
    op.drop_table("project_members")
    op.drop_table("projects")
