"""Private files and folders under MANARA_HOME.

Everything Manara writes there (the metadata database, artifacts, the
prediction log, reports, cached data) may hold secrets or personal data, so
folders are created with mode 0700 and files with mode 0600, whatever the
process umask. Existing folders outside the ones Manara creates (``/tmp``,
a user's home) are never changed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` and every missing parent with mode 0700; return ``path``."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            # Another process or thread created it first; it sets its own mode.
            continue
        # The umask can only remove bits; set the mode again in case it is odd.
        os.chmod(folder, PRIVATE_DIR_MODE)
    return path


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600, or set an existing file to 0600."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)


@contextmanager
def private_temporary(path: Path) -> Iterator[Path]:
    """Yield a new 0600 file beside ``path`` to write to, then rename it over ``path``.

    Writers that take a file name (pyarrow, pandas) open the file with
    truncation, which keeps its mode. On an error the temporary file is removed
    and ``path`` is left as it was.
    """
    private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (mode 0600) through a temporary file and a rename."""
    with private_temporary(path) as temporary:
        temporary.write_bytes(data)
