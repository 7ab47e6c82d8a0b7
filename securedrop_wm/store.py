"""The encrypted store: ciphertext files under unguessable names, written atomically.

A file is first written as ``.tmp-*`` in the store folder, fsynced, then renamed to its
final name; the database refers to a name only after the rename. A crash leaves at most
a temporary file or an unreferenced final file, both removed by :meth:`Store.clean_orphans`
at start-up (before any worker runs, so it never races an upload).

Deletion overwrites the file once with random bytes, fsyncs, then unlinks. On a
journaling or copy-on-write file system, on an SSD (wear levelling, over-provisioning)
or under snapshots, old blocks may survive the overwrite: it defeats casual recovery
from a disk image of a plain ext4 on a spinning disk, nothing more. What protects
deleted submissions is that they were only ever stored encrypted to keys the server
does not hold.

Times: the database keeps days, never times of day, and so does the disk as far as a
program can make it. A committed file's access and modification times are set to the
start of their UTC day before it is renamed, and the store folder's after every change,
an upload that was aborted or refused included (:meth:`Store.settle`).
What remains, for a seizer who reads the file system's own records: the inode change
time (``ctime``, which no program can set: the exact time of the rename), inode numbers
and on-disk placement (which roughly order files by creation), and an exact access time
once something reads a file again (an export, a source reading a reply) unless the data
folder's file system is mounted ``noatime``.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

from .errors import StoreError, StoreFullError, UnsafePathError
from .files import fsync_dir

_NAME = re.compile(r"^[0-9a-f]{40}\.gpg$")
_TMP_PREFIX = ".tmp-"
_DAY_NS = 86_400 * 1_000_000_000


class Store:
    """A folder of ciphertext files."""

    def __init__(self, root: Path) -> None:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root = root

    def new_temp_path(self) -> Path:
        """A fresh temporary path in the store folder, for a file being written."""
        return self.root / f"{_TMP_PREFIX}{secrets.token_hex(16)}"

    def commit(self, temp: Path) -> str:
        """Make a fully written temporary file permanent under a new unguessable name.

        :returns: the stored name, to be recorded in the database.
        :raises StoreFullError: when fsync finds the disk full; the file is removed.
        """
        if temp.parent != self.root or not temp.name.startswith(_TMP_PREFIX):
            raise UnsafePathError("only temporary files of this store can be committed")
        name = f"{secrets.token_hex(20)}.gpg"
        try:
            fd = os.open(temp, os.O_RDONLY)
            try:
                coarsen_times(fd)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temp, self.root / name)
            self._sync_dir()
        except OSError as e:
            temp.unlink(missing_ok=True)
            raise _store_error(e) from None
        return name

    def path(self, name: str) -> Path:
        """The path of a stored file.

        :raises UnsafePathError: when ``name`` is not a store name (no path can escape).
        """
        if not _NAME.match(name):
            raise UnsafePathError(f"not a store name: {name!r}")
        return self.root / name

    def size(self, name: str) -> int:
        """Size in bytes of a stored file."""
        return self.path(name).stat().st_size

    def exists(self, name: str) -> bool:
        """Whether a stored file is present."""
        return self.path(name).exists()

    def delete(self, name: str) -> None:
        """Overwrite a stored file once with random bytes, then unlink it (see module doc)."""
        if shred(self.path(name)):
            self._sync_dir()

    def clean_orphans(self, referenced: Iterable[str]) -> list[str]:
        """Remove temporary files and stored files no database row refers to.

        Call only while no upload is running (at start-up).
        :returns: the names removed.
        """
        keep = set(referenced)
        removed = []
        for entry in self.root.iterdir():
            if entry.name.startswith(_TMP_PREFIX):
                entry.unlink(missing_ok=True)
                removed.append(entry.name)
            elif _NAME.match(entry.name) and entry.name not in keep:
                self.delete(entry.name)
                removed.append(entry.name)
        if removed:
            self._sync_dir()
        return removed

    def settle(self) -> None:
        """Set the folder's times back to the start of their day after temporary files
        came and went without a commit (an aborted or refused upload): creating and
        removing one set them to the second, and no other change follows to coarsen them."""
        try:
            coarsen_times(self.root)
        except OSError:
            pass  # the folder's times are a trace to reduce, not a reason to fail a request

    def _sync_dir(self) -> None:
        # The rename or unlink just set the folder's times to the second.
        coarsen_times(self.root)
        fsync_dir(self.root)


def coarsen_times(target: int | Path) -> None:
    """Set the access and modification times of a file or folder (a path, or a file
    descriptor open on it) to the start of their UTC day: the disk then says on which
    day, not when. The change time cannot be set (see the module doc)."""
    st = os.stat(target)
    os.utime(target, ns=(_day_start_ns(st.st_atime_ns), _day_start_ns(st.st_mtime_ns)))


def _day_start_ns(ns: int) -> int:
    return ns - ns % _DAY_NS


def shred(path: Path) -> bool:
    """Overwrite a file once with random bytes, fsync, unlink (see the module doc for
    what this does and does not achieve). :returns: whether there was a file."""
    try:
        size = path.stat().st_size
        with path.open("r+b", buffering=0) as f:
            remaining = size
            while remaining > 0:
                n = min(remaining, 1 << 20)
                f.write(secrets.token_bytes(n))
                remaining -= n
            os.fsync(f.fileno())
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _store_error(e: OSError) -> StoreError:
    import errno

    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreFullError("the disk is full")
    return StoreError(f"the store could not write a file: {e.strerror}")
