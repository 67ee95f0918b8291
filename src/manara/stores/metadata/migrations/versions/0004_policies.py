"""Versioned Cedar policy sets; at most one version is active.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from manara.stores.metadata.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policy_versions",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_policy_versions_active", "policy_versions", ["active"])


def downgrade() -> None:
    op.drop_index("ix_policy_versions_active", "policy_versions")
    op.drop_table("policy_versions")
