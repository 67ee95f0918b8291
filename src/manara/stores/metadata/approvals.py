"""Artifact approvals: pickle and joblib files waiting for, or given, a second principal's decision."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from manara.errors import ConflictError, NotFoundError
from manara.registry.approval import ApprovalStatus, ArtifactApproval
from manara.stores.metadata import tables
from manara.stores.metadata.store import MetadataStore

_table = tables.artifact_approvals


class ApprovalRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def create(self, approval: ArtifactApproval) -> ArtifactApproval:
        with self._store.transaction() as connection:
            connection.execute(
                _table.insert().values(
                    id=approval.id,
                    digest=approval.digest,
                    project=approval.project,
                    kind=approval.kind,
                    scan=approval.scan,
                    status=approval.status,
                    requested_by=approval.requested_by,
                    requested_at=approval.requested_at,
                    decided_by=approval.decided_by,
                    decided_at=approval.decided_at,
                    reason=approval.reason,
                )
            )
        return approval

    def get(self, approval_id: str) -> ArtifactApproval:
        with self._store.read() as connection:
            row = connection.execute(select(_table).where(_table.c.id == approval_id)).one_or_none()
        if row is None:
            raise NotFoundError(
                f"Approval {approval_id!r} not found. List them with "
                "`manara models approvals list`.",
                approval_id=approval_id,
            )
        return _approval(row)

    def list_for(self, project: str, status: str | None = None) -> list[ArtifactApproval]:
        query = select(_table).where(_table.c.project == project)
        if status is not None:
            query = query.where(_table.c.status == status)
        with self._store.read() as connection:
            rows = connection.execute(query.order_by(_table.c.requested_at, _table.c.id)).all()
        return [_approval(row) for row in rows]

    def decide(
        self,
        approval_id: str,
        status: ApprovalStatus,
        decided_by: str,
        decided_at: datetime,
        reason: str,
    ) -> ArtifactApproval:
        """Move a pending approval to ``status``; a decided one raises ``ConflictError``."""
        with self._store.transaction() as connection:
            changed = connection.execute(
                update(_table)
                .where(_table.c.id == approval_id, _table.c.status == "pending")
                .values(status=status, decided_by=decided_by, decided_at=decided_at, reason=reason)
            )
        if changed.rowcount == 0:
            current = self.get(approval_id)
            raise ConflictError(
                f"Approval {approval_id!r} was already {current.status} by "
                f"{current.decided_by}; a decision cannot be changed. Request a new approval.",
                approval_id=approval_id,
                status=current.status,
            )
        return self.get(approval_id)

    def approved(self, digest: str, project: str) -> list[ArtifactApproval]:
        query = select(_table).where(
            _table.c.digest == digest, _table.c.project == project, _table.c.status == "approved"
        )
        with self._store.read() as connection:
            rows = connection.execute(query.order_by(_table.c.requested_at)).all()
        return [_approval(row) for row in rows]


def _approval(row: Any) -> ArtifactApproval:
    return ArtifactApproval(
        id=row.id,
        digest=row.digest,
        project=row.project,
        kind=row.kind,
        scan=dict(row.scan),
        status=row.status,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        reason=row.reason,
    )
