#!/usr/bin/env python3
"""Check a Manara audit inclusion proof with the Python standard library alone.

Usage::

    manara audit prove EVENT_ID > proof.json
    python tools/verify_audit_proof.py proof.json --public-key HEX
    python tools/verify_audit_proof.py proof.json --root HEX

The script rebuilds the event's canonical JSON (sorted keys, no whitespace,
UTF-8), hashes it as an RFC 6962 leaf (SHA-256 of 0x00 || bytes), folds the
audit path as in RFC 9162 section 2.1.3.2 (node = SHA-256 of 0x01 || left ||
right) and compares the result with the proof's root. It then checks that
root against a trust anchor given on the command line, never one taken from
the proof itself. The anchor is a published root hash (``--root``) or the
audit public key (``--public-key``, raw 32 bytes in hex). With the key, it
checks the Ed25519 signature of the tree head (RFC 8032, verification only).

Exit status: 0 when the proof is valid, 1 when it is not, 2 on bad usage.
It imports nothing from Manara, so it can be audited on its own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TREE_HEAD_PREFIX = b"manara.audit.tree-head.v1\x00"
PROOF_FORMAT = "manara-audit-inclusion-proof/1"

# Ed25519 (RFC 8032 section 5.1): the curve -x^2 + y^2 = 1 + d x^2 y^2 over GF(p).
_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)

Point = tuple[int, int, int, int]


def _point_add(a: Point, b: Point) -> Point:
    # Extended coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, x*y = T/Z. This
    # formula is complete on this curve, so it also doubles a point.
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    first = (y1 - x1) * (y2 - x2) % _P
    second = (y1 + x1) * (y2 + x2) % _P
    third = 2 * t1 * t2 * _D % _P
    fourth = 2 * z1 * z2 % _P
    e, f, g, h = second - first, fourth - third, fourth + third, second + first
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _scalar_multiply(scalar: int, point: Point) -> Point:
    result: Point = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = _point_add(result, point)
        point = _point_add(point, point)
        scalar >>= 1
    return result


def _decode_point(encoded: bytes) -> Point | None:
    if len(encoded) != 32:
        return None
    y = int.from_bytes(encoded, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= _P:
        return None
    x_squared = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    x = pow(x_squared, (_P + 3) // 8, _P)
    if (x * x - x_squared) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x_squared) % _P != 0:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = _P - x
    return (x, y, 1, x * y % _P)


def _same_point(a: Point, b: Point) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % _P == 0 and (a[1] * b[2] - b[1] * a[2]) % _P == 0


_BASE_Y = 4 * pow(5, _P - 2, _P) % _P
_BASE = _decode_point(_BASE_Y.to_bytes(32, "little"))


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Check an Ed25519 signature: [S]B == R + [SHA-512(R || A || M) mod L]A."""
    if len(public_key) != 32 or len(signature) != 64 or _BASE is None:
        return False
    point_a = _decode_point(public_key)
    point_r = _decode_point(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if point_a is None or point_r is None or s >= _L:
        return False
    digest = hashlib.sha512(signature[:32] + public_key + message).digest()
    h = int.from_bytes(digest, "little") % _L
    left = _scalar_multiply(s, _BASE)
    right = _point_add(point_r, _scalar_multiply(h, point_a))
    return _same_point(left, right)


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def fold_audit_path(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes | None:
    """Return the root an audit path leads to, or None when its shape does not fit the tree."""
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


def tree_head_message(tree_size: int, time_text: str, root: bytes) -> bytes:
    moment = datetime.strptime(time_text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return TREE_HEAD_PREFIX + struct.pack(">QQ", tree_size, micros) + root


def check_proof(
    proof: dict[str, Any], public_key: bytes | None, published_root: bytes | None
) -> list[str]:
    """Return the reasons the proof is invalid; an empty list means it is valid."""
    if proof.get("format") != PROOF_FORMAT:
        return [f"unknown proof format {proof.get('format')!r}; expected {PROOF_FORMAT!r}"]
    event = proof["event"]
    index, size = int(proof["leaf_index"]), int(proof["tree_size"])
    if event.get("seq") != index:
        return [f"the event's seq {event.get('seq')!r} is not the leaf index {index}"]
    path = [bytes.fromhex(value) for value in proof["audit_path"]]
    root = fold_audit_path(index, size, leaf_hash(canonical_json(event)), path)
    problems = []
    if root is None:
        problems.append(f"an audit path of {len(path)} hashes does not fit leaf {index} of {size}")
    elif root.hex() != proof["root_hash"]:
        problems.append("the event and audit path lead to a root other than the proof's root")
    signed_root = bytes.fromhex(proof["root_hash"])
    if published_root is not None and signed_root != published_root:
        problems.append("the proof's root is not the published root")
    if public_key is not None:
        message = tree_head_message(size, proof["checkpoint_time"], signed_root)
        if not ed25519_verify(public_key, message, bytes.fromhex(proof["signature"])):
            problems.append("the tree head signature is invalid under the given public key")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("proof", type=Path, help="proof JSON file, or - for standard input")
    parser.add_argument("--public-key", help="audit public key: 32 raw bytes as 64 hex digits")
    parser.add_argument("--root", help="published root hash to compare with, as 64 hex digits")
    args = parser.parse_args(argv)
    if args.public_key is None and args.root is None:
        parser.error("give --public-key or --root: the proof cannot vouch for its own root")
    try:
        text = sys.stdin.read() if str(args.proof) == "-" else args.proof.read_text("utf-8")
        public_key = bytes.fromhex(args.public_key) if args.public_key else None
        published_root = bytes.fromhex(args.root) if args.root else None
        problems = check_proof(json.loads(text), public_key, published_root)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"invalid: cannot read the proof: {exc!r}", file=sys.stderr)
        return 1
    if problems:
        for problem in problems:
            print(f"invalid: {problem}", file=sys.stderr)
        return 1
    print(f"valid: event {proof_summary(json.loads(text))}")
    return 0


def proof_summary(proof: dict[str, Any]) -> str:
    event = proof["event"]
    return (
        f"{event.get('event_id')} (seq {proof['leaf_index']}) is in the signed tree of "
        f"{proof['tree_size']} events with root {proof['root_hash']}"
    )


if __name__ == "__main__":
    sys.exit(main())
