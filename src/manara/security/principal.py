"""The identity a call acts as."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

PrincipalKind = Literal["user", "service"]

_NO_MEMBERSHIPS: Mapping[str, frozenset[str]] = MappingProxyType({})


@dataclass(frozen=True)
class Principal:
    """A user or service account, with its roles in its home project and in other projects."""

    id: str
    name: str
    kind: PrincipalKind = "user"
    roles: frozenset[str] = field(default_factory=frozenset)
    """Roles in the home project ``project``."""
    project: str = "default"
    memberships: Mapping[str, frozenset[str]] = field(
        default_factory=lambda: _NO_MEMBERSHIPS, hash=False
    )
    """Roles in projects other than the home project, by project name."""
    clearance: str = "internal"
    """Highest data classification it may access: public, internal, confidential or restricted."""
    region: str | None = None
    """Region it works from, checked against a resource's allowed regions; ``None`` when unknown."""

    def roles_in(self, project: str) -> frozenset[str]:
        """Return the roles this principal has in ``project``; empty when it is no member."""
        if project == self.project:
            return self.roles
        return self.memberships.get(project, frozenset())

    def __repr__(self) -> str:
        roles = ",".join(sorted(self.roles))
        return f"Principal(id={self.id!r}, name={self.name!r}, roles={roles!r})"
