"""SQLAlchemy Core tables of the metadata database.

These definitions are the query-side view of the schema; the Alembic
migrations beside this module create and change it. Rows never leave the
``manara.stores.metadata`` package: repositories return dataclasses.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from manara.stores.metadata.types import UTCDateTime

metadata = MetaData()

ID = 32  # length of the opaque hex ids


def _tenancy_columns() -> list[Column[Any]]:
    """Columns that place a resource in a project and describe it to the policy."""
    return [
        Column("project", String(100), nullable=False, server_default="default"),
        Column("classification", String(32), nullable=False, server_default="internal"),
        Column("allowed_regions", JSON, nullable=True),
    ]


workspace_meta = Table(
    "workspace_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

principals = Table(
    "principals",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("roles", JSON, nullable=False),
    Column("project", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("clearance", String(32), nullable=False, server_default="internal"),
    Column("region", String(64), nullable=True),
    Column("disabled_at", UTCDateTime, nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("secret_hash", Text, nullable=False),
    Column("principal_id", String(ID), ForeignKey("principals.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
)

experiments = Table(
    "experiments",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("tags", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(ID), nullable=False),
    *_tenancy_columns(),
    UniqueConstraint("project", "name", name="uq_experiments_project_name"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("experiment_id", String(ID), ForeignKey("experiments.id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", UTCDateTime, nullable=False),
    Column("end_time", UTCDateTime, nullable=True),
    Column("created_by", String(ID), nullable=False),
    Index("ix_runs_experiment_start", "experiment_id", "start_time"),
)

run_params = Table(
    "run_params",
    metadata,
    Column("run_id", String(ID), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run_id", String(ID), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

# Metric values, one row per key and logging call, with the values as
# arrays (see manara.stores.metadata.metric_series). The digest of the
# content is part of the key, so a retried call inserts nothing.
metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column("run_id", String(ID), ForeignKey("runs.id"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("digest", String(32), nullable=False),
    Column("count", Integer, nullable=False),
    Column("min_step", BigInteger, nullable=False),
    Column("max_step", BigInteger, nullable=False),
    Column("step_data", LargeBinary, nullable=False),
    Column("time_data", LargeBinary, nullable=False),
    Column("value_data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("run_id", "key", "digest", name="pk_metric_chunks"),
)

# The latest value of each metric of a run (highest step, then latest
# timestamp, then highest value), kept up to date by every logging call.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(ID), ForeignKey("runs.id"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Column("value", Float, nullable=False),
    PrimaryKeyConstraint("run_id", "key", name="pk_latest_metrics"),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("run_id", String(ID), ForeignKey("runs.id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("context", String(64), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("schema", JSON, nullable=False),
    Column("row_count", BigInteger, nullable=False),
    Column("source", Text, nullable=False),
    Column("artifact_digest", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_id", String(ID), ForeignKey("runs.id"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("created_by", String(ID), nullable=False),
    *_tenancy_columns(),
    UniqueConstraint("project", "name", name="uq_registered_models_project_name"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("model_id", String(ID), ForeignKey("registered_models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("run_id", String(ID), ForeignKey("runs.id"), nullable=True),
    Column("flavor", String(32), nullable=False),
    Column("artifacts", JSON, nullable=False),
    Column("signature", JSON, nullable=False),
    Column("onnx_verified", Boolean, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(ID), nullable=False),
    UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", String(ID), ForeignKey("registered_models.id"), primary_key=True),
    Column("alias", String(128), primary_key=True),
    Column("version_id", String(ID), ForeignKey("model_versions.id"), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# The audit log is append-only: migration 0002 adds triggers that reject UPDATE
# and DELETE on these tables (and TRUNCATE on PostgreSQL).
audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", String(ID), nullable=False, unique=True),
    Column("time", UTCDateTime, nullable=False),
    Column("principal_id", String(200), nullable=False),
    Column("action", String(128), nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(256), nullable=False),
    Column("decision", String(8), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("details", JSON, nullable=False),
    Column("leaf_hash", String(64), nullable=False),
    Index("ix_audit_events_time", "time"),
    Index("ix_audit_events_principal", "principal_id", "seq"),
    Index("ix_audit_events_action", "action", "seq"),
)

# One row (id 1) whose size is the number of events; appends lock it to number them.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", String(64), nullable=False),
    Column("time", UTCDateTime, nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
    Column("frontier", JSON, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("description", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# A principal's roles in each project it belongs to, beside its home project.
project_members = Table(
    "project_members",
    metadata,
    Column("principal_id", String(ID), ForeignKey("principals.id"), primary_key=True),
    Column("project", String(100), ForeignKey("projects.name"), primary_key=True),
    Column("roles", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Requests to register an artifact in an unsafe format (pickle, joblib), each
# decided by a principal other than the requester.
artifact_approvals = Table(
    "artifact_approvals",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("project", String(100), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("scan", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("requested_by", String(ID), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("decided_by", String(ID), nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
    Column("reason", Text, nullable=False),
    Index("ix_artifact_approvals_digest", "digest", "project"),
)

# Versions of the Cedar policy set; the workspace decides with the active one,
# or with the policy shipped in the package while none is stored.
policy_versions = Table(
    "policy_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("text", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_by", String(ID), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    Index("ix_policy_versions_active", "active"),
)
