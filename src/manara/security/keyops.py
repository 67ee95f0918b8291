"""Key management: rotate, re-wrap, retire, reinstate and destroy KEK versions.

The service checks the caller's permission for each action (``key.read``,
``key.rotate``, ``key.retire``, ``key.reinstate``, ``key.destroy`` on
resource type ``key``) and keeps the order that protects data: a version
is retired only when no object still needs it to unwrap its data key,
unless the caller forces it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from manara.context import Context
from manara.errors import ConflictError, InvalidInputError
from manara.security.keys.base import KeyVersion
from manara.stores.artifacts.encrypted import EncryptedArtifactStore, RewrapReport

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionUsage:
    version: KeyVersion
    objects: int
    """Encrypted objects whose data key is wrapped under this version."""


@dataclass(frozen=True)
class Rotation:
    version: int
    rewrap: RewrapReport


class KeyService:
    def __init__(self, ctx: Context, store: EncryptedArtifactStore) -> None:
        self._ctx = ctx
        self._store = store
        self._provider = store.provider

    def _authorize(self, verb: str) -> None:
        self._ctx.authorize(f"key.{verb}", "key", self._provider.key_id)

    def _record(self, verb: str, version: int, **details: int) -> None:
        self._ctx.record(
            f"key.{verb}", "key", self._provider.key_id, details={"version": version, **details}
        )

    def list_versions(self) -> list[VersionUsage]:
        self._authorize("read")
        counts = self._store.count_by_version()
        return [VersionUsage(v, counts.get(v.version, 0)) for v in self._provider.versions()]

    def rotate(self) -> Rotation:
        """Create a new active version, then re-wrap every object under it."""
        self._authorize("rotate")
        version = self._provider.rotate()
        report = self._store.rewrap_all()
        self._record("rotate", version, rewrapped=len(report.rewrapped), failed=len(report.failed))
        logger.info(
            "key rotated key_id=%s version=%d rewrapped=%d failed=%d principal=%s",
            self._provider.key_id,
            version,
            len(report.rewrapped),
            len(report.failed),
            self._ctx.principal.id,
        )
        return Rotation(version, report)

    def rewrap(self) -> RewrapReport:
        """Re-wrap every object not yet under the active version."""
        self._authorize("rotate")
        return self._store.rewrap_all()

    def retire(self, version: int, force: bool = False) -> None:
        self._authorize("retire")
        still_needed = self._store.count_by_version().get(version, 0)
        if still_needed and not force:
            raise ConflictError(
                f"{still_needed} encrypted objects still have their data key wrapped under "
                f"version {version}, and retiring it would make them unreadable. Run "
                "`manara keys rewrap` first, or pass --force to retire it anyway.",
                version=version,
                objects=still_needed,
            )
        self._provider.retire(version)
        self._record("retire", version, objects=still_needed)
        logger.info(
            "key version retired key_id=%s version=%d objects=%d principal=%s",
            self._provider.key_id,
            version,
            still_needed,
            self._ctx.principal.id,
        )

    def reinstate(self, version: int) -> None:
        self._authorize("reinstate")
        self._provider.reinstate(version)
        self._record("reinstate", version)

    def destroy(self, version: int, confirmed: bool) -> int:
        """Destroy ``version`` and return how many objects became unreadable."""
        self._authorize("destroy")
        lost = self._store.count_by_version().get(version, 0)
        if not confirmed:
            raise InvalidInputError(
                f"Destroying version {version} of key {self._provider.key_id!r} is "
                f"irreversible and makes {lost} encrypted objects unreadable for good. "
                "Pass --yes to confirm.",
                version=version,
                objects=lost,
            )
        self._provider.destroy(version)
        self._record("destroy", version, objects_shredded=lost)
        logger.warning(
            "key version destroyed key_id=%s version=%d objects_shredded=%d principal=%s",
            self._provider.key_id,
            version,
            lost,
            self._ctx.principal.id,
        )
        return lost
