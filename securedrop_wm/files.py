"""Writing files so that a crash leaves the old file or the new one, never half of one.

One way to do it: write a temporary file beside the target, fsync it, rename (or link)
it into place, then fsync the folder so that the new name itself survives a power cut.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from pathlib import Path


def write_atomically(path: Path, data: bytes | str, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` in one step: a temp file beside it, fsync, rename,
    fsync the folder. A crash leaves the old file or the new one, never half of one.

    :param data: text is written as UTF-8.
    :param mode: the permissions of the new file.
    """
    raw = data.encode() if isinstance(data, str) else data
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def write_exclusively(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a new file atomically, never replacing one: a temp file beside it, fsync,
    then a hard link to the final name.

    :raises FileExistsError: when ``path`` exists already; it is left untouched.
    """
    temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(temp, path)  # unlike rename, never replaces an existing file
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename, a new or removed name) to the disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
