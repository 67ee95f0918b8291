"""Metadata store: SQLAlchemy 2 on SQLite (default) or PostgreSQL, migrated by Alembic."""

from manara.stores.metadata.store import MetadataStore

__all__ = ["MetadataStore"]
