"""Verification of a stored audit log against its own contents and its signed checkpoints.

One pass over the events in sequence order recomputes every leaf hash from
the row's contents and checks that sequence numbers have no gaps. It folds
the stored leaf hashes into a Merkle frontier and compares the root at each
checkpoint's size with the signed root. Each finding names what changed:

- ``modified``: a row no longer matches its leaf hash (its contents changed).
- ``reordered``: a row's leaf hash matches its contents at another position.
- ``deleted``: sequence numbers are missing, or the head counts more events.
- ``inserted``: a row sits outside the numbered range.
- ``truncated``: a checkpoint signs more events than the log holds.
- ``root_mismatch``: the stored leaf hashes no longer give a signed root, so
  events were inserted, removed or reordered and their leaf hashes rewritten.
- ``bad_signature`` / ``bad_frontier``: a checkpoint row was forged or altered.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Sequence

from manara.security.audit_events import Checkpoint, Problem, RecordedEvent, VerificationResult
from manara.security.audit_merkle import HASH_SIZE, MerkleFrontier
from manara.security.audit_signer import AuditSigner, tree_head_message

# Mismatched rows searched pairwise for reordering; past this, each is reported as modified.
_MAX_REORDER_SEARCH = 1000


def parse_hash(value: str) -> bytes | None:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    return raw if len(raw) == HASH_SIZE else None


def checkpoint_problems(checkpoint: Checkpoint, signer: AuditSigner) -> list[Problem]:
    """Check a checkpoint's signature under the trusted key and its stored frontier."""
    size = checkpoint.tree_size
    root = parse_hash(checkpoint.root_hash)
    try:
        signature = bytes.fromhex(checkpoint.signature)
    except ValueError:
        signature = b""
    problems: list[Problem] = []
    if checkpoint.key_id != signer.key_id:
        problems.append(
            Problem(
                "bad_signature",
                f"The checkpoint at size {size} names signing key {checkpoint.key_id[:16]}..., "
                f"not the audit key {signer.key_id[:16]}..., so this log did not sign it.",
                checkpoint_size=size,
            )
        )
    elif root is None or not signer.verify(
        tree_head_message(size, checkpoint.time, root), signature
    ):
        problems.append(
            Problem(
                "bad_signature",
                f"The signature of the checkpoint at size {size} is invalid: its size, time, "
                "root hash or signature was changed after signing.",
                checkpoint_size=size,
            )
        )
    if not _frontier_matches(checkpoint, root):
        problems.append(
            Problem(
                "bad_frontier",
                f"The stored frontier of the checkpoint at size {size} does not give its root; "
                "new checkpoints are refused until it is restored.",
                checkpoint_size=size,
            )
        )
    return problems


def _frontier_matches(checkpoint: Checkpoint, root: bytes | None) -> bool:
    hashes = [parse_hash(value) for value in checkpoint.frontier]
    valid = [value for value in hashes if value is not None]
    if len(valid) != len(hashes) or len(valid) != max(checkpoint.tree_size, 0).bit_count():
        return False
    return MerkleFrontier(checkpoint.tree_size, valid).root() == root


class _Scan:
    """State of the single pass over the events."""

    def __init__(self, checkpoints: Sequence[Checkpoint], trusted: set[int]) -> None:
        self.frontier = MerkleFrontier()
        self.next_seq = 0
        self.problems: list[Problem] = []
        self.mismatched: list[RecordedEvent] = []
        self.pending = sorted(checkpoints, key=lambda checkpoint: checkpoint.tree_size)
        self.trusted = trusted
        self.last_matching = 0
        self.compare_roots()

    def add(self, event: RecordedEvent) -> None:
        if event.seq < self.next_seq:
            self.problems.append(
                Problem(
                    "inserted",
                    f"Event {event.event_id} has seq {event.seq}, outside the numbered range; "
                    "it was inserted.",
                    seq=event.seq,
                )
            )
            return
        if event.seq > self.next_seq:
            last = event.seq - 1
            span = f"seq {self.next_seq}" + ("" if last == self.next_seq else f"..{last}")
            self.problems.append(
                Problem("deleted", f"Events {span} are missing: they were deleted.", self.next_seq)
            )
        self.next_seq = event.seq + 1
        stored = parse_hash(event.leaf_hash)
        if stored is None or event.computed_leaf_hash() != event.leaf_hash:
            self.mismatched.append(event)
        self.frontier.append(stored or hashlib.sha256(event.leaf_hash.encode()).digest())
        self.compare_roots()

    def compare_roots(self) -> None:
        # Called after every event, so a checkpoint is compared as soon as the
        # scan passes its size; after a gap the frontier lags behind next_seq.
        while self.pending and self.pending[0].tree_size <= self.next_seq:
            checkpoint = self.pending.pop(0)
            size = checkpoint.tree_size
            if size not in self.trusted:
                continue
            if self.frontier.size != size:
                message = (
                    f"The checkpoint at size {size} cannot match: events before seq {size} "
                    "are missing."
                )
                self.problems.append(Problem("root_mismatch", message, checkpoint_size=size))
                continue
            if self.frontier.root().hex() == checkpoint.root_hash:
                self.last_matching = size
                continue
            message = (
                f"The first {size} events no longer give the root signed at size {size}: "
                f"events in seq {self.last_matching}..{size - 1} were inserted, removed or "
                "reordered and their leaf hashes rewritten."
            )
            self.problems.append(Problem("root_mismatch", message, checkpoint_size=size))


def _mismatch_problems(mismatched: Sequence[RecordedEvent]) -> list[Problem]:
    seqs = [event.seq for event in mismatched[:_MAX_REORDER_SEARCH]]
    problems: list[Problem] = []
    for event in mismatched:
        origin = None
        if event.seq in seqs:
            origin = next(
                (
                    seq
                    for seq in seqs
                    if seq != event.seq
                    and dataclasses.replace(event, seq=seq).computed_leaf_hash() == event.leaf_hash
                ),
                None,
            )
        if origin is not None:
            message = (
                f"Event {event.event_id} at seq {event.seq} was recorded at seq {origin}: "
                "events were reordered."
            )
            problems.append(Problem("reordered", message, seq=event.seq))
        else:
            message = (
                f"Event {event.event_id} at seq {event.seq} does not match its leaf hash: "
                "its contents were changed after it was recorded."
            )
            problems.append(Problem("modified", message, seq=event.seq))
    return problems


def _end_problems(scan: _Scan, head_size: int | None) -> list[Problem]:
    problems: list[Problem] = []
    count = scan.next_seq
    if head_size is None:
        problems.append(Problem("deleted", "The audit_head row is missing: it was deleted."))
    elif head_size > count:
        problems.append(
            Problem(
                "deleted",
                f"The head counts {head_size} events but the log ends at seq {count - 1}: "
                f"events seq {count}..{head_size - 1} were deleted.",
                seq=count,
            )
        )
    elif head_size < count:
        problems.append(
            Problem(
                "inserted",
                f"The log holds events up to seq {count - 1} but the head counts {head_size}: "
                f"events seq {head_size}..{count - 1} were inserted without an append.",
                seq=head_size,
            )
        )
    for checkpoint in scan.pending:
        problems.append(
            Problem(
                "truncated",
                f"The checkpoint at size {checkpoint.tree_size} signs {checkpoint.tree_size} "
                f"events but the log holds {count}: events at the end were deleted.",
                checkpoint_size=checkpoint.tree_size,
            )
        )
    return problems


def verify_log(
    events: Iterable[RecordedEvent],
    read_head_size: Callable[[], int | None],
    checkpoints: Sequence[Checkpoint],
    signer: AuditSigner,
) -> VerificationResult:
    """Verify events (in sequence order) against the head counter and the checkpoints.

    ``read_head_size`` is called after the scan, so events appended while
    the scan runs are counted by the head too rather than reported as inserted.
    """
    problems: list[Problem] = []
    trusted: set[int] = set()
    for checkpoint in checkpoints:
        found = checkpoint_problems(checkpoint, signer)
        problems.extend(found)
        if not any(problem.kind == "bad_signature" for problem in found):
            trusted.add(checkpoint.tree_size)
    scan = _Scan(checkpoints, trusted)
    for event in events:
        scan.add(event)
    problems.extend(scan.problems)
    problems.extend(_mismatch_problems(scan.mismatched))
    problems.extend(_end_problems(scan, read_head_size()))
    return VerificationResult(
        problems=problems,
        events_checked=scan.frontier.size,
        checkpoints_checked=len(checkpoints),
        root_hash=scan.frontier.root().hex(),
    )
