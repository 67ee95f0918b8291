"""The identity a call acts as."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PrincipalKind = Literal["user", "service"]


@dataclass(frozen=True)
class Principal:
    """A user or service account, with the roles it holds in one project."""

    id: str
    name: str
    kind: PrincipalKind = "user"
    roles: frozenset[str] = field(default_factory=frozenset)
    project: str = "default"
    clearance: str = "internal"
    """Highest data classification it may access: public, internal, confidential or restricted."""
    region: str | None = None
    """Region it works from, checked against a resource's allowed regions; ``None`` when unknown."""

    def __repr__(self) -> str:
        roles = ",".join(sorted(self.roles))
        return f"Principal(id={self.id!r}, name={self.name!r}, roles={roles!r})"
