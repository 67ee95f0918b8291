"""RFC 6962 Merkle tree hashing, inclusion proofs and consistency proofs.

Leaves are hashed as SHA-256(0x00 || data) and interior nodes as
SHA-256(0x01 || left || right). A tree of n > 1 leaves splits at k, the
largest power of two smaller than n. The left subtree contains leaves
[0, k) and the right subtree leaves [k, n). The root of the empty tree is
SHA-256 of the empty string (RFC 6962 section 2.1).

Every function here takes leaf hashes, not leaf data, so callers hash each
leaf once and store the result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(size: int) -> int:
    """Return the largest power of two smaller than ``size`` (``size`` must be at least 2)."""
    if size < 2:
        raise ValueError(f"a tree of {size} leaves has no split point; it needs at least 2")
    return 1 << ((size - 1).bit_length() - 1)


class MerkleFrontier:
    """The roots of the perfect subtrees that make up a tree, left to right.

    A tree of n leaves decomposes into one perfect subtree per set bit of n,
    largest first. Folding their roots from the right gives the RFC 6962
    root. Appending a leaf merges equal-sized subtrees, so the frontier contains
    at most log2(n) + 1 hashes and ``append`` costs O(1) amortised.
    """

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(hashes) != size.bit_count():
            raise ValueError(
                f"a frontier of a {size}-leaf tree contains {max(size, 0).bit_count()} hashes; "
                f"got {len(hashes)}"
            )
        self.size = size
        self.hashes = list(hashes)

    def append(self, leaf: bytes) -> None:
        self.hashes.append(leaf)
        self.size += 1
        # Each trailing zero bit of the new size is one merge of two equal subtrees.
        merges = (self.size & -self.size).bit_length() - 1
        for _ in range(merges):
            right = self.hashes.pop()
            left = self.hashes.pop()
            self.hashes.append(node_hash(left, right))

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        accumulator = self.hashes[-1]
        for subtree in reversed(self.hashes[:-1]):
            accumulator = node_hash(subtree, accumulator)
        return accumulator


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """Return the Merkle tree hash (MTH) of the given leaf hashes."""
    frontier = MerkleFrontier()
    frontier.extend(leaves)
    return frontier.root()


def _subtree_root(leaves: Sequence[bytes], start: int, stop: int) -> bytes:
    frontier = MerkleFrontier()
    frontier.extend(leaves[index] for index in range(start, stop))
    return frontier.root()


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """Return the audit path of leaf ``index`` in the tree of ``leaves`` (RFC 6962 2.1.1)."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf index {index} is outside a tree of {len(leaves)} leaves")
    path: list[bytes] = []
    start, stop = 0, len(leaves)
    # Walk down from the root; each level contributes the sibling subtree's root.
    while stop - start > 1:
        middle = start + split_point(stop - start)
        if index < middle:
            path.append(_subtree_root(leaves, middle, stop))
            stop = middle
        else:
            path.append(_subtree_root(leaves, start, middle))
            start = middle
    path.reverse()
    return path


def root_from_inclusion_proof(
    index: int, size: int, leaf: bytes, path: Sequence[bytes]
) -> bytes | None:
    """Fold an audit path into a root, or return None when the path has the wrong shape.

    This is the verification algorithm of RFC 9162 section 2.1.3.2: the bits
    of ``index`` give the side on which each sibling sits, and a node that is the
    last one of its level (``index == last``) has no right sibling there.
    """
    if not 0 <= index < size:
        return None
    position, last = index, size - 1
    result = leaf
    for sibling in path:
        if last == 0:
            return None
        if position & 1 or position == last:
            result = node_hash(sibling, result)
            while not position & 1 and position != 0:
                position >>= 1
                last >>= 1
        else:
            result = node_hash(result, sibling)
        position >>= 1
        last >>= 1
    return result if last == 0 else None


def _subproof(
    old_size: int, leaves: Sequence[bytes], start: int, stop: int, complete: bool
) -> list[bytes]:
    size = stop - start
    if old_size == size:
        return [] if complete else [_subtree_root(leaves, start, stop)]
    middle = split_point(size)
    if old_size <= middle:
        proof = _subproof(old_size, leaves, start, start + middle, complete)
        proof.append(_subtree_root(leaves, start + middle, stop))
        return proof
    proof = _subproof(old_size - middle, leaves, start + middle, stop, False)
    proof.append(_subtree_root(leaves, start, start + middle))
    return proof


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """Return the proof that the tree of the first ``old_size`` leaves is a prefix (RFC 6962 2.1.2)."""
    if not 0 <= old_size <= len(leaves):
        raise ValueError(
            f"old tree size {old_size} must be between 0 and the new size {len(leaves)}"
        )
    if old_size in (0, len(leaves)):
        return []
    return _subproof(old_size, leaves, 0, len(leaves), True)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Check a consistency proof between two tree heads (RFC 9162 section 2.1.4.2)."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        # The old tree is a perfect subtree of the new one, so its root starts the path.
        path.insert(0, old_root)
    position, last = old_size - 1, new_size - 1
    while position & 1:
        position >>= 1
        last >>= 1
    old_result = new_result = path[0]
    for sibling in path[1:]:
        if last == 0:
            return False
        if position & 1 or position == last:
            old_result = node_hash(sibling, old_result)
            new_result = node_hash(sibling, new_result)
            while not position & 1 and position != 0:
                position >>= 1
                last >>= 1
        else:
            new_result = node_hash(new_result, sibling)
        position >>= 1
        last >>= 1
    return last == 0 and old_result == old_root and new_result == new_root
