"""Files that hold key material: private modes, atomic replacement, a process lock.

Key files are created with mode 0600 inside a 0700 folder, and a file that
group or others can read or write is rejected rather than silently fixed:
someone may already have copied it, so the operator has to decide. Every
write goes to a temporary file in the same folder, is fsynced, renamed over
the old file and the folder is fsynced, so a crash leaves either the old or
the new content, never a mix.
"""

from __future__ import annotations

import fcntl
import os
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from manara.errors import InvalidInputError
from manara.files import private_dir

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def ensure_private_dir(folder: Path) -> None:
    """Create ``folder`` and its missing parents, each with mode 0700."""
    private_dir(folder)


def check_private_file(path: Path) -> None:
    """Raise ``InvalidInputError`` when group or others have any access to ``path``."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise InvalidInputError(
            f"Key file {path} has mode {mode:04o}, so group or others can access it; "
            f"refusing to use it. Check who may have read it, then run `chmod 600 {path}`.",
            path=str(path),
        )


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (mode 0600) through fsync and rename."""
    ensure_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        # The umask can only remove bits; set the mode again in case it is odd.
        os.fchmod(fd, PRIVATE_FILE_MODE)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_private(path: Path) -> bytes:
    """Read a key file after checking that only its owner can access it."""
    check_private_file(path)
    return path.read_bytes()


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``<path>.lock`` across processes.

    The lock serialises read-modify-write cycles (rotate, retire, destroy) so
    that two processes never lose each other's change.
    """
    ensure_private_dir(path.parent)
    lock_path = path.with_name(f"{path.name}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
