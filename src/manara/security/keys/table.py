"""A versioned key table kept in one JSON file, shared by the local and KMS providers.

The file records each version's state, times and ``material``: the
base64 key for the local keyring, the KMS key id for the KMS provider.
Every change runs under an exclusive lock and is written atomically
(``manara.security.keyfiles``), so two processes never lose each other's
rotation and a crash never leaves a half-written table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from manara.clock import Clock
from manara.errors import ConflictError, IntegrityError, NotFoundError
from manara.security.keyfiles import atomic_write, exclusive_lock, read_private
from manara.security.keys.base import KeyState, KeyVersion

TABLE_FORMAT = 1

T = TypeVar("T")


@dataclass(frozen=True)
class VersionRecord:
    version: int
    state: KeyState
    created_at: datetime
    material: str | None
    """Key material or external key id; ``None`` once destroyed."""
    retired_at: datetime | None = None
    destroyed_at: datetime | None = None

    def public(self) -> KeyVersion:
        return KeyVersion(
            self.version, self.state, self.created_at, self.retired_at, self.destroyed_at
        )


@dataclass
class KeyTable:
    provider: str
    key_id: str
    records: list[VersionRecord] = field(default_factory=list)

    def active(self) -> VersionRecord:
        for record in self.records:
            if record.state is KeyState.ACTIVE:
                return record
        raise IntegrityError(
            f"Key table of {self.provider} key {self.key_id!r} has no active version. "
            "Restore the key file from a backup."
        )

    def get(self, version: int) -> VersionRecord:
        for record in self.records:
            if record.version == version:
                return record
        raise NotFoundError(
            f"Version {version} of {self.provider} key {self.key_id!r} not found; known "
            f"versions: {', '.join(str(r.version) for r in self.records)}.",
            version=version,
        )

    def put(self, record: VersionRecord) -> None:
        self.records = [record if r.version == record.version else r for r in self.records]

    def add_active(self, material: str, now: datetime) -> int:
        version = max((r.version for r in self.records), default=0) + 1
        self.records = [
            replace(r, state=KeyState.ENABLED) if r.state is KeyState.ACTIVE else r
            for r in self.records
        ]
        self.records.append(VersionRecord(version, KeyState.ACTIVE, now, material))
        return version

    def retire(self, version: int, now: datetime) -> None:
        record = self.get(version)
        if record.state is KeyState.ACTIVE:
            raise ConflictError(
                f"Version {version} of key {self.key_id!r} is active and cannot be retired. "
                "Rotate first (`manara keys rotate`), then retire it.",
                version=version,
            )
        if record.state is KeyState.DESTROYED:
            raise ConflictError(f"Version {version} of key {self.key_id!r} is already destroyed.")
        if record.state is KeyState.ENABLED:
            self.put(replace(record, state=KeyState.RETIRED, retired_at=now))

    def reinstate(self, version: int) -> None:
        record = self.get(version)
        if record.state is KeyState.DESTROYED:
            raise ConflictError(
                f"Version {version} of key {self.key_id!r} was destroyed; its material is gone "
                "and it cannot be reinstated.",
                version=version,
            )
        if record.state is KeyState.RETIRED:
            self.put(replace(record, state=KeyState.ENABLED, retired_at=None))

    def destroy(self, version: int, now: datetime) -> VersionRecord:
        """Mark ``version`` destroyed, drop its material and return the old record."""
        record = self.get(version)
        if record.state is KeyState.ACTIVE:
            raise ConflictError(
                f"Version {version} of key {self.key_id!r} is active and cannot be destroyed. "
                "Rotate first (`manara keys rotate`), then destroy it.",
                version=version,
            )
        if record.state is not KeyState.DESTROYED:
            retired_at = record.retired_at or now
            self.put(
                replace(
                    record,
                    state=KeyState.DESTROYED,
                    material=None,
                    retired_at=retired_at,
                    destroyed_at=now,
                )
            )
        return record


def _record_to_json(record: VersionRecord) -> dict[str, Any]:
    def stamp(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "version": record.version,
        "state": record.state.value,
        "created_at": stamp(record.created_at),
        "retired_at": stamp(record.retired_at),
        "destroyed_at": stamp(record.destroyed_at),
        "material": record.material,
    }


def _record_from_json(raw: dict[str, Any]) -> VersionRecord:
    def stamp(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value is not None else None

    created = stamp(raw["created_at"])
    if created is None:
        raise ValueError("created_at is missing")
    return VersionRecord(
        version=int(raw["version"]),
        state=KeyState(raw["state"]),
        created_at=created,
        material=raw["material"],
        retired_at=stamp(raw["retired_at"]),
        destroyed_at=stamp(raw["destroyed_at"]),
    )


class KeyTableFile:
    """Loads and atomically updates a ``KeyTable`` stored at ``path``."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self.path = path
        self.clock = clock

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> KeyTable:
        data = read_private(self.path)
        try:
            raw = json.loads(data)
            if raw.get("format") != TABLE_FORMAT:
                raise ValueError(f"unsupported format {raw.get('format')!r}")
            return KeyTable(
                provider=str(raw["provider"]),
                key_id=str(raw["key_id"]),
                records=[_record_from_json(item) for item in raw["versions"]],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(
                f"Key file {self.path} is not a valid Manara key table ({exc}). "
                "Restore it from a backup; do not edit it by hand.",
                path=str(self.path),
            ) from exc

    def save(self, table: KeyTable) -> None:
        document = {
            "format": TABLE_FORMAT,
            "provider": table.provider,
            "key_id": table.key_id,
            "versions": [_record_to_json(r) for r in table.records],
        }
        atomic_write(self.path, json.dumps(document, indent=2).encode("utf-8") + b"\n")

    def update(self, change: Callable[[KeyTable], T], create: Callable[[], KeyTable]) -> T:
        """Apply ``change`` to the table under the lock and save it, creating it if missing."""
        with exclusive_lock(self.path):
            table = self.load() if self.path.exists() else create()
            result = change(table)
            self.save(table)
            return result
