"""The tamper-evident audit log: an RFC 6962 Merkle tree over append-only events.

``record`` appends one event in one transaction and stores its leaf hash,
so an append costs O(1) however long the log is. ``checkpoint`` signs a
tree head (size, root hash, time) with the workspace's Ed25519 audit key;
it extends the previous checkpoint's frontier, so it reads only the events
appended since. ``verify`` recomputes everything from the rows and checks
every checkpoint; ``prove`` returns an inclusion proof that
``tools/verify_audit_proof.py`` checks with the standard library alone.

Events after the latest checkpoint are protected only by the database
triggers and the head counter. A checkpoint is signed every
``checkpoint_every`` appends and on demand.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from manara.clock import Clock
from manara.context import Context
from manara.errors import IntegrityError, InvalidInputError
from manara.ids import new_id
from manara.security.audit_events import (
    AuditEvent,
    Checkpoint,
    InclusionProof,
    RecordedEvent,
    VerificationResult,
    canonical_json,
    normalise_event,
)
from manara.security.audit_merkle import MerkleFrontier, inclusion_proof, root_hash
from manara.security.audit_signer import AuditSigner, tree_head_message
from manara.security.audit_verify import checkpoint_problems, verify_log
from manara.stores.metadata import MetadataStore
from manara.stores.metadata.audit import AuditRepository

logger = logging.getLogger(__name__)

SIGNING_KEY_PATH = Path("keys") / "audit-signing.key"
"""Location of the audit signing key, relative to the workspace home."""


class AuditLog:
    def __init__(
        self,
        metadata_store: MetadataStore,
        signer: AuditSigner,
        clock: Clock,
        *,
        checkpoint_every: int | None = 1000,
    ) -> None:
        if checkpoint_every is not None and checkpoint_every < 1:
            raise InvalidInputError(
                f"checkpoint_every must be a positive number of events or None; "
                f"got {checkpoint_every}."
            )
        self._events = AuditRepository(metadata_store)
        self._signer = signer
        self._clock = clock
        self._checkpoint_every = checkpoint_every

    @property
    def signer(self) -> AuditSigner:
        return self._signer

    def record(self, event: AuditEvent) -> RecordedEvent:
        """Append one event; its sequence number, id, time and leaf hash are assigned here."""
        values = normalise_event(event)

        def build(seq: int) -> dict[str, Any]:
            # The time is read under the append lock, so time order follows seq order
            # as long as the clock does not go back.
            recorded = RecordedEvent(
                seq=seq,
                event_id=new_id(),
                time=self._clock.now().astimezone(UTC),
                leaf_hash="",
                **values,
            )
            row = asdict(recorded)
            row["leaf_hash"] = recorded.computed_leaf_hash()
            return row

        recorded = self._events.append(build)
        every = self._checkpoint_every
        if every is not None and (recorded.seq + 1) % every == 0:
            self.checkpoint()
        return recorded

    def checkpoint(self) -> Checkpoint:
        """Sign the current tree head; return the existing checkpoint when nothing was added.

        Raises ``IntegrityError``, and signs nothing, when the previous
        checkpoint or an event appended since it fails its checks.
        """
        # The checkpoint is read before the head: a checkpoint only covers committed
        # appends, so in an intact log the head read afterwards is never smaller.
        previous = self._events.latest_checkpoint()
        size = self._events.head_size()
        if size is None:
            raise IntegrityError(
                "The audit_head row is missing. Run `manara audit verify` and restore the "
                "database from backup."
            )
        if previous is not None and previous.tree_size > size:
            raise IntegrityError(
                f"The head counts {size} audit events but a checkpoint signs "
                f"{previous.tree_size}: events were deleted, so no checkpoint was signed. "
                "Run `manara audit verify`."
            )
        if previous is not None and previous.tree_size == size:
            return previous
        frontier = self._extended_frontier(previous, size)
        now = self._clock.now().astimezone(UTC)
        root = frontier.root()
        signature = self._signer.sign(tree_head_message(size, now, root))
        checkpoint = Checkpoint(
            tree_size=size,
            root_hash=root.hex(),
            time=now,
            key_id=self._signer.key_id,
            signature=signature.hex(),
            frontier=[value.hex() for value in frontier.hashes],
        )
        stored = self._events.add_checkpoint(checkpoint)
        logger.info("audit checkpoint size=%d root=%s", size, stored.root_hash)
        return stored

    def _extended_frontier(self, previous: Checkpoint | None, size: int) -> MerkleFrontier:
        """Return the frontier of the first ``size`` events, built on a checked ``previous``."""
        frontier = MerkleFrontier()
        if previous is not None:
            problems = checkpoint_problems(previous, self._signer)
            if problems:
                raise IntegrityError(
                    f"{problems[0].message} No checkpoint was signed. Run `manara audit verify`."
                )
            hashes = [bytes.fromhex(value) for value in previous.frontier]
            frontier = MerkleFrontier(previous.tree_size, hashes)
        for event in self._events.iter_events(start=frontier.size, stop=size):
            if event.seq != frontier.size or event.computed_leaf_hash() != event.leaf_hash:
                raise IntegrityError(
                    f"Audit event at seq {frontier.size} is missing or altered; no checkpoint "
                    "was signed. Run `manara audit verify` for details."
                )
            frontier.append(bytes.fromhex(event.leaf_hash))
        if frontier.size != size:
            raise IntegrityError(
                f"The head counts {size} audit events but only {frontier.size} were found; no "
                "checkpoint was signed. Run `manara audit verify` for details."
            )
        return frontier

    def verify(self) -> VerificationResult:
        """Check every event and checkpoint; the result lists each problem found."""
        checkpoints = self._events.checkpoints()
        result = verify_log(
            self._events.iter_events(), self._events.head_size, checkpoints, self._signer
        )
        logger.info(
            "audit verify events=%d checkpoints=%d problems=%d",
            result.events_checked,
            result.checkpoints_checked,
            len(result.problems),
        )
        return result

    def prove(self, event_id: str) -> InclusionProof:
        """Return the inclusion proof of an event in the latest checkpoint's tree.

        When no checkpoint covers the event yet, a new one is signed first.
        Reads every leaf hash of that tree, so it costs O(tree size).
        """
        event = self._events.get_event(event_id)
        if event.computed_leaf_hash() != event.leaf_hash:
            raise IntegrityError(
                f"Audit event {event_id} at seq {event.seq} does not match its leaf hash, so no "
                "proof is given. Run `manara audit verify`."
            )
        checkpoint = self._events.latest_checkpoint()
        if checkpoint is None or checkpoint.tree_size <= event.seq:
            checkpoint = self.checkpoint()
        leaves = self._events.leaf_hashes(checkpoint.tree_size)
        if len(leaves) != checkpoint.tree_size or root_hash(leaves).hex() != checkpoint.root_hash:
            raise IntegrityError(
                f"The stored leaf hashes no longer give the root signed at size "
                f"{checkpoint.tree_size}, so no proof is given. Run `manara audit verify`."
            )
        return InclusionProof(
            event=event.canonical(),
            leaf_index=event.seq,
            tree_size=checkpoint.tree_size,
            audit_path=[value.hex() for value in inclusion_proof(event.seq, leaves)],
            root_hash=checkpoint.root_hash,
            checkpoint_time=checkpoint.time,
            key_id=checkpoint.key_id,
            public_key=self._signer.public_key.hex(),
            signature=checkpoint.signature,
        )

    def events(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        principal_id: str | None = None,
        action: str | None = None,
        after_seq: int = -1,
        limit: int = 1000,
    ) -> list[RecordedEvent]:
        """Return events with ``start <= time < end`` that match the filters, by sequence number.

        Page through a long result by passing the last ``seq`` seen as ``after_seq``.
        """
        for name, moment in (("start", start), ("end", end)):
            if moment is not None and moment.tzinfo is None:
                raise InvalidInputError(
                    f"{name}={moment.isoformat()} has no time zone; give a timezone-aware time."
                )
        if not 1 <= limit <= 100_000:
            raise InvalidInputError(f"limit must be between 1 and 100000; got {limit}.")
        return self._events.query(
            start=start,
            end=end,
            principal_id=principal_id,
            action=action,
            after_seq=after_seq,
            limit=limit,
        )

    def export_lines(self) -> Iterator[str]:
        """Yield one JSON line per event: its canonical object and its stored leaf hash."""
        for event in self._events.iter_events():
            line = {"event": event.canonical(), "leaf_hash": event.leaf_hash}
            yield canonical_json(line).decode("utf-8")

    def export(self, path: Path) -> int:
        """Write every event as JSON lines to ``path`` atomically; return the number written."""
        path = Path(path)
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        count = 0
        try:
            with temporary.open("w", encoding="utf-8") as handle:
                for line in self.export_lines():
                    handle.write(line + "\n")
                    count += 1
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        logger.info("audit export events=%d path=%s", count, path)
        return count


def open_audit_log(ctx: Context, *, checkpoint_every: int | None = 1000) -> AuditLog:
    """Return the audit log of the context's workspace, creating its signing key on first use."""
    signer = AuditSigner.load_or_create(ctx.settings.home / SIGNING_KEY_PATH)
    return AuditLog(ctx.metadata, signer, ctx.clock, checkpoint_every=checkpoint_every)


def proof_json(proof: InclusionProof) -> str:
    return json.dumps(proof.to_dict(), indent=2, sort_keys=True, ensure_ascii=False)
