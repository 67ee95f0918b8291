"""Detect pickle and joblib content so that it is rejected before anything loads it.

Loading a pickle runs arbitrary code chosen by the file's author, so
the registry never unpickles. This module only inspects bytes: it reads
pickle opcodes with ``pickletools.genops``, which parses without executing.
It recognises:

* pickles of every protocol: protocol 2 and later start with the PROTO
  opcode (``0x80`` then the protocol number); protocols 0 and 1 are
  recognised by parsing the opcodes through to STOP;
* joblib files, which are pickles, possibly compressed with zlib, gzip,
  bz2 or xz (the first 64 KiB are decompressed and checked);
* zip archives that carry a pickle member, such as PyTorch ``.pt`` files.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickletools
import zipfile
import zlib

from manara.errors import UnsafeArtifactError

_PEEK = 64 * 1024
# Opcodes that import or call Python objects; a plain-data pickle has none of them.
_CODE_OPCODES = frozenset(
    {"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD"}
)


def _parses_as_pickle(data: bytes) -> bool:
    """True when ``data`` is a pickle opcode stream.

    Protocols 2 to 5 are recognised by their PROTO header. Older protocols
    have no header, so the whole of ``data`` must parse and end with STOP;
    that keeps text formats that happen to start with opcode letters out.
    """
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return True
    body = data.rstrip(b"\r\n")
    try:
        for opcode, _arg, position in pickletools.genops(io.BytesIO(body)):
            if opcode.name == "STOP":
                return position == len(body) - 1
    except Exception:  # noqa: BLE001 - any parse failure means "not a pickle"
        return False
    return False


def _imports_code(data: bytes) -> bool:
    try:
        return any(op.name in _CODE_OPCODES for op, _arg, _pos in pickletools.genops(data))
    except Exception:  # noqa: BLE001 - a truncated stream still counts from what parsed
        return True


def _decompressed_prefix(data: bytes) -> bytes | None:
    try:
        if data[:2] == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=io.BytesIO(data)).read(_PEEK)
        if data[:3] == b"BZh":
            return bz2.BZ2Decompressor().decompress(data, _PEEK)
        if data[:6] == b"\xfd7zXZ\x00":
            return lzma.LZMADecompressor().decompress(data, _PEEK)
        if len(data) >= 2 and data[0] == 0x78 and (data[0] * 256 + data[1]) % 31 == 0:
            return zlib.decompressobj().decompress(data, _PEEK)
    except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error):
        return None
    return None


def _zip_pickle_member(data: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if info.filename.endswith((".pkl", ".pickle", ".joblib")):
                    return info.filename
                with archive.open(info) as member:
                    head = member.read(2)
                if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
                    return info.filename
    except (zipfile.BadZipFile, OSError, RuntimeError):
        return None
    return None


def pickle_kind(data: bytes) -> str | None:
    """Describe the pickle content found in ``data``, or return ``None`` if there is none."""
    if _parses_as_pickle(data):
        return "a pickle" if _imports_code(data[:_PEEK]) else "a pickle of plain data"
    prefix = _decompressed_prefix(data)
    if prefix is not None and _parses_as_pickle(prefix):
        return "a compressed pickle (joblib)"
    if data[:4] == b"PK\x03\x04":
        member = _zip_pickle_member(data)
        if member is not None:
            return f"a zip archive with the pickle member {member!r}"
    return None


def reject_pickle(data: bytes, name: str) -> None:
    """Raise ``UnsafeArtifactError`` when ``data`` is or carries pickle content."""
    kind = pickle_kind(data)
    if kind is None:
        return
    raise UnsafeArtifactError(
        f"Rejected {name}: it is {kind}, and loading a pickle can run arbitrary code. "
        "Save the model with skops (scikit-learn), as native XGBoost JSON or LightGBM text, "
        "or as ONNX, then register that file.",
        artifact=name,
        detected=kind,
    )
