"""Audit events, their canonical bytes, and the results of log operations.

The canonical bytes of an event are its JSON object with sorted keys, no
whitespace, UTF-8 (non-ASCII characters written as themselves), and the
time as ISO 8601 UTC with microseconds (``2026-01-01T09:30:00.000000Z``).
The sequence number is part of the object, so a leaf hash also fixes the
event's position in the log. ``tools/verify_audit_proof.py`` rebuilds the
same bytes with the standard library alone; change both or neither.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from manara.errors import InvalidInputError
from manara.security.audit_merkle import leaf_hash

Decision = Literal["allow", "deny"]

# Column sizes of the audit_events table; longer values are rejected, never cut.
MAX_LENGTHS = {
    "principal_id": 200,
    "action": 128,
    "resource_type": 64,
    "resource_id": 256,
    "reason": 64,
    "request_id": 128,
}
# Matched against a detail key lowercased with "-" read as "_": "db_password" and
# "access_token" match, "max_tokens" and "token_count" do not.
_SECRET_KEY = re.compile(
    r"(^|_)(password|passphrase|passwd|secret|token|api_?key|authori[sz]ation"
    r"|credentials?|private_?key|cookie)$"
)
_API_KEY_VALUE = re.compile(r"\bmnr_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}")


@dataclass(frozen=True)
class AuditEvent:
    """What happened, before the log gives it a sequence number, an id and a time.

    ``details`` contains JSON values only (objects with string keys, arrays,
    strings, finite numbers, booleans, null) and never secrets: keys that
    name a secret (password, token, api_key ...) and values that look like a
    Manara API key are rejected.
    """

    principal_id: str
    action: str
    resource_type: str
    resource_id: str = ""
    decision: Decision = "allow"
    reason: str = ""
    request_id: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedEvent:
    """An event as stored: its position, id, time and leaf hash added."""

    seq: int
    event_id: str
    time: datetime
    principal_id: str
    action: str
    resource_type: str
    resource_id: str
    decision: str
    reason: str
    request_id: str
    details: dict[str, Any]
    leaf_hash: str
    """Hex SHA-256 leaf hash as stored when the event was recorded."""

    def canonical(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "decision": self.decision,
            "details": self.details,
            "event_id": self.event_id,
            "principal_id": self.principal_id,
            "reason": self.reason,
            "request_id": self.request_id,
            "resource_id": self.resource_id,
            "resource_type": self.resource_type,
            "seq": self.seq,
            "time": format_time(self.time),
        }

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.canonical())

    def computed_leaf_hash(self) -> str:
        """Return the leaf hash of the event's current contents, in hex."""
        return leaf_hash(self.canonical_bytes()).hex()


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head: the root of the first ``tree_size`` events at ``time``."""

    tree_size: int
    root_hash: str
    time: datetime
    key_id: str
    signature: str
    frontier: list[str]
    """Hex roots of the perfect subtrees of the tree, so the next checkpoint extends it."""


@dataclass(frozen=True)
class InclusionProof:
    """Evidence that one event is leaf ``leaf_index`` of a signed tree of ``tree_size`` events."""

    event: dict[str, Any]
    leaf_index: int
    tree_size: int
    audit_path: list[str]
    root_hash: str
    checkpoint_time: datetime
    key_id: str
    public_key: str
    signature: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "manara-audit-inclusion-proof/1",
            "event": self.event,
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "audit_path": self.audit_path,
            "root_hash": self.root_hash,
            "checkpoint_time": format_time(self.checkpoint_time),
            "key_id": self.key_id,
            "public_key": self.public_key,
            "signature": self.signature,
        }


ProblemKind = Literal[
    "modified",
    "reordered",
    "inserted",
    "deleted",
    "truncated",
    "head_mismatch",
    "root_mismatch",
    "bad_signature",
    "bad_frontier",
]


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    message: str
    seq: int | None = None
    checkpoint_size: int | None = None


@dataclass(frozen=True)
class VerificationResult:
    problems: list[Problem]
    events_checked: int
    checkpoints_checked: int
    root_hash: str
    """Hex root recomputed from the stored leaf hashes of every event checked."""

    @property
    def ok(self) -> bool:
        return not self.problems


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise InvalidInputError(
            f"Audit time {moment.isoformat()} has no time zone. Use a timezone-aware UTC time."
        )
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> bytes:
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"Audit event details are not canonical JSON: {exc}. Use objects with string keys, "
            "arrays, strings, finite numbers, booleans and null."
        ) from exc


def _check_details(value: Any, path: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError(f"Audit detail key {key!r} at {path} must be a string.")
            if _SECRET_KEY.search(key.lower().replace("-", "_")):
                raise InvalidInputError(
                    f"Audit detail {path}.{key} names a secret; the audit log is permanent and "
                    "must never hold secrets. Leave it out or record a non-secret id instead."
                )
            _check_details(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_details(item, f"{path}[{index}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(f"Audit detail {path} is {value}; JSON has no NaN or infinity.")
    elif isinstance(value, str):
        if _API_KEY_VALUE.search(value):
            raise InvalidInputError(
                f"Audit detail {path} contains an API key; record the key's prefix instead."
            )
        if "\x00" in value:
            raise InvalidInputError(f"Audit detail {path} contains a NUL character.")


def normalise_event(event: AuditEvent) -> dict[str, Any]:
    """Validate an event and return its column values, with ``details`` as plain JSON."""
    values: dict[str, Any] = {}
    for name, limit in MAX_LENGTHS.items():
        value = getattr(event, name)
        if not isinstance(value, str):
            raise InvalidInputError(f"Audit field {name} must be a string; got {value!r}.")
        if len(value) > limit:
            raise InvalidInputError(
                f"Audit field {name} is {len(value)} characters long; the limit is {limit}."
            )
        if "\x00" in value:
            raise InvalidInputError(f"Audit field {name} contains a NUL character.")
        values[name] = value
    for name in ("principal_id", "action", "resource_type"):
        if not values[name]:
            raise InvalidInputError(f"Audit field {name} is empty; every event needs one.")
    if event.decision not in ("allow", "deny"):
        raise InvalidInputError(
            f"Audit decision {event.decision!r} is invalid; use 'allow' or 'deny'."
        )
    values["decision"] = event.decision
    _check_details(event.details, "details")
    # A JSON round trip turns tuples into lists and checks that the bytes encode,
    # so the stored details read back to the same canonical bytes.
    values["details"] = json.loads(canonical_json(dict(event.details)))
    return values
