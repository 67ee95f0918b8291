"""Opaque identifiers, the same on every backend."""

from __future__ import annotations

import uuid


def new_id() -> str:
    """Return a random 32-character hex id."""
    return uuid.uuid4().hex
