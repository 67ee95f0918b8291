"""Content-addressed artifact storage."""

from manara.stores.artifacts.store import ArtifactRef, ArtifactStore

__all__ = ["ArtifactRef", "ArtifactStore"]
