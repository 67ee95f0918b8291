"""Storage ports and their backends: metadata (SQL) and artifacts (fsspec)."""
