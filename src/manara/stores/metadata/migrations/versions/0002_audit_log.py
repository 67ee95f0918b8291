"""Audit log: append-only events, the head counter, signed checkpoints.

Triggers reject UPDATE and DELETE on the events and checkpoints (and
TRUNCATE on PostgreSQL, which skips row triggers). The head row may only
grow by one per update. Someone with direct database access can still drop
the triggers; ``manara audit verify`` then finds what they changed.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from manara.stores.metadata.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = 32
_APPEND_ONLY = ("audit_events", "audit_checkpoints")


def _create_tables() -> None:
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(ID), nullable=False, unique=True),
        sa.Column("time", UTCDateTime, nullable=False),
        sa.Column("principal_id", sa.String(200), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.String(256), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("leaf_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_events_time", "audit_events", ["time"])
    op.create_index("ix_audit_events_principal", "audit_events", ["principal_id", "seq"])
    op.create_index("ix_audit_events_action", "audit_events", ["action", "seq"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "size": 0}])
    op.create_table(
        "audit_checkpoints",
        sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.String(64), nullable=False),
        sa.Column("time", UTCDateTime, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("frontier", sa.JSON, nullable=False),
    )


def _sqlite_triggers() -> None:
    for table in _APPEND_ONLY:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} is not "
                "allowed'); END"
            )
    op.execute(
        "CREATE TRIGGER audit_head_grow_only BEFORE UPDATE ON audit_head "
        "WHEN NEW.id <> OLD.id OR NEW.size <> OLD.size + 1 "
        "BEGIN SELECT RAISE(ABORT, 'audit_head may only grow by one per append'); END"
    )
    op.execute(
        "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head "
        "BEGIN SELECT RAISE(ABORT, 'audit_head is append-only: DELETE is not allowed'); END"
    )


def _postgresql_triggers() -> None:
    op.execute(
        "CREATE FUNCTION manara_audit_reject() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP; "
        "END $$"
    )
    op.execute(
        "CREATE FUNCTION manara_audit_head_grow() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF NEW.id <> OLD.id OR NEW.size <> OLD.size + 1 THEN "
        "RAISE EXCEPTION 'audit_head may only grow by one per append'; END IF; "
        "RETURN NEW; END $$"
    )
    for table in (*_APPEND_ONLY, "audit_head"):
        op.execute(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION manara_audit_reject()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION manara_audit_reject()"
        )
    for table in _APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION manara_audit_reject()"
        )
    op.execute(
        "CREATE TRIGGER audit_head_grow_only BEFORE UPDATE ON audit_head "
        "FOR EACH ROW EXECUTE FUNCTION manara_audit_head_grow()"
    )


def upgrade() -> None:
    _create_tables()
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def downgrade() -> None:
    # Dropping a table drops its triggers on both backends.
    for name in ("audit_checkpoints", "audit_head", "audit_events"):
        op.drop_table(name)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION manara_audit_head_grow()")
        op.execute("DROP FUNCTION manara_audit_reject()")
