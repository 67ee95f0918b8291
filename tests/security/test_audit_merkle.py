"""RFC 6962 Merkle functions against published vectors, hand-built trees and a reference."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from manara.security.audit_merkle import (
    EMPTY_ROOT,
    MerkleFrontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_hash,
    split_point,
    verify_consistency,
)

TOOL = Path(__file__).resolve().parents[2] / "tools" / "verify_audit_proof.py"

# Test vectors of RFC 6962 (the Certificate Transparency reference tests):
# leaf inputs, the root of the first n leaves for n = 0..8, and two audit paths.
CT_LEAVES = [
    bytes.fromhex(value)
    for value in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_PATHS = {
    0: [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    5: [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_audit_proof", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("verify_audit_proof", module)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


def reference_root(leaves: Sequence[bytes]) -> bytes:
    """MTH written straight from the recursive definition of RFC 6962 section 2.1."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(
        b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])
    ).digest()


def _leaves(count: int) -> list[bytes]:
    return [leaf_hash(f"event-{index}".encode()) for index in range(count)]


def test_roots_match_rfc_vectors() -> None:
    leaves = [leaf_hash(data) for data in CT_LEAVES]
    for size, expected in enumerate(CT_ROOTS):
        assert root_hash(leaves[:size]).hex() == expected, f"size {size}"


def test_paths_match_rfc_vectors() -> None:
    leaves = [leaf_hash(data) for data in CT_LEAVES]
    for index, expected in CT_PATHS.items():
        assert [value.hex() for value in inclusion_proof(index, leaves)] == expected
        folded = root_from_inclusion_proof(
            index, 8, leaves[index], [bytes.fromhex(value) for value in expected]
        )
        assert folded is not None and folded.hex() == CT_ROOTS[8], f"leaf {index}"


def test_empty_root_is_sha256_of_nothing() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert root_hash([]) == EMPTY_ROOT


def test_hashes_use_domain_prefixes() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    left, right = b"L" * 32, b"R" * 32
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()


def test_split_point_is_largest_smaller_power() -> None:
    expected = {2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 8: 4, 9: 8, 16: 8, 17: 16}
    for size, split in expected.items():
        assert split_point(size) == split, f"size {size}"
    with pytest.raises(ValueError):
        split_point(1)


def test_small_trees_built_by_hand() -> None:
    a, b, c, d, e, f, g, h, i = _leaves(9)
    n = node_hash
    ab, cd, ef, gh = n(a, b), n(c, d), n(e, f), n(g, h)
    abcd, efgh = n(ab, cd), n(ef, gh)
    # Uneven sizes split at the largest power of two below the size, so the
    # left subtree is always perfect and the right one takes the rest.
    expected = {
        1: a,
        2: ab,
        3: n(ab, c),
        4: abcd,
        5: n(abcd, e),
        6: n(abcd, ef),
        7: n(abcd, n(ef, g)),
        8: n(abcd, efgh),
        9: n(n(abcd, efgh), i),
    }
    leaves = [a, b, c, d, e, f, g, h, i]
    for size, root in expected.items():
        assert root_hash(leaves[:size]) == root, f"size {size}"


def test_small_tree_paths_by_hand() -> None:
    a, b, c, d, e, f, g = _leaves(7)
    n = node_hash
    leaves = [a, b, c, d, e, f, g]
    assert inclusion_proof(0, leaves) == [b, n(c, d), n(n(e, f), g)]
    assert inclusion_proof(4, leaves) == [f, g, n(n(a, b), n(c, d))]
    assert inclusion_proof(6, leaves) == [n(e, f), n(n(a, b), n(c, d))]
    assert inclusion_proof(0, leaves[:1]) == []


def test_frontier_matches_reference_each_size() -> None:
    leaves = _leaves(70)
    frontier = MerkleFrontier()
    for size in range(1, len(leaves) + 1):
        frontier.append(leaves[size - 1])
        assert frontier.root() == reference_root(leaves[:size]), f"size {size}"
        assert len(frontier.hashes) == size.bit_count()


def test_frontier_rejects_wrong_hash_count() -> None:
    with pytest.raises(ValueError):
        MerkleFrontier(5, [b"x" * 32])


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 130).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_inclusion_proofs_verify(case: tuple[int, int]) -> None:
    size, index = case
    leaves = _leaves(size)
    root = reference_root(leaves)
    path = inclusion_proof(index, leaves)
    assert root_from_inclusion_proof(index, size, leaves[index], path) == root
    assert tool.fold_audit_path(index, size, leaves[index], path) == root
    assert root_from_inclusion_proof(index, size, leaf_hash(b"forged"), path) != root
    if path:
        broken = [*path[:-1], leaf_hash(b"other")]
        assert root_from_inclusion_proof(index, size, leaves[index], broken) != root
    if size > 1:
        other = (index + 1) % size
        assert root_from_inclusion_proof(other, size, leaves[index], path) != root


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 130).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_consistency_proofs_verify(case: tuple[int, int]) -> None:
    old_size, new_size = case
    leaves = _leaves(new_size)
    old_root, new_root = reference_root(leaves[:old_size]), reference_root(leaves)
    proof = consistency_proof(old_size, leaves)
    assert verify_consistency(old_size, new_size, old_root, new_root, proof)
    if 0 < old_size < new_size:
        assert not verify_consistency(old_size, new_size, leaf_hash(b"x"), new_root, proof)
        assert not verify_consistency(old_size, new_size, old_root, leaf_hash(b"x"), proof)
        rewritten = [*leaves[: old_size - 1], leaf_hash(b"rewritten"), *leaves[old_size:]]
        assert not verify_consistency(
            old_size, new_size, old_root, reference_root(rewritten), proof
        )


def test_consistency_rejects_bad_sizes() -> None:
    leaves = _leaves(4)
    with pytest.raises(ValueError):
        consistency_proof(5, leaves)
    assert not verify_consistency(5, 4, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(2, 4, root_hash(leaves[:2]), root_hash(leaves), [])


@settings(max_examples=10, deadline=None)
@given(st.binary(max_size=200))
def test_tool_ed25519_matches_cryptography(message: bytes) -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    signature = key.sign(message)
    assert tool.ed25519_verify(public, message, signature)
    assert not tool.ed25519_verify(public, message + b"!", signature)
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    assert not tool.ed25519_verify(public, message, flipped)
    other = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    assert not tool.ed25519_verify(other, message, signature)
