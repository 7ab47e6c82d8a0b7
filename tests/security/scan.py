"""Looking for secrets where they must not be: files on disk and files a process holds open.

Files a process has open include anonymous temporary files (``O_TMPFILE`` or unlinked
right after creation, as Python's ``tempfile.TemporaryFile`` does): they never show up
in a directory listing, so only :func:`open_files_containing` can see them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_BLOCK = 1 << 20


@dataclass(frozen=True)
class Finding:
    """A needle found in a file."""

    needle: str
    where: str


def _scan_stream(f: BinaryIO, needles: Mapping[str, bytes]) -> set[str]:
    """Names of the needles found in a binary stream (matches across block edges too)."""
    overlap = max(len(n) for n in needles.values()) - 1
    found: set[str] = set()
    tail = b""
    while True:
        block = f.read(_BLOCK)
        if not block:
            return found
        window = tail + block
        found.update(name for name, needle in needles.items() if needle in window)
        tail = window[-overlap:] if overlap else b""


def files_containing(
    roots: Iterable[Path], needles: Mapping[str, bytes], since: float
) -> list[Finding]:
    """Regular files under ``roots`` changed at or after ``since`` that hold a needle.

    Sockets, pipes and devices are skipped, symlinks are not followed, and files that
    vanish or cannot be read while walking are skipped (other processes share /tmp).
    """
    findings = []
    seen: set[tuple[int, int]] = set()
    for root in roots:
        for dirpath, _dirs, names in os.walk(root, followlinks=False):
            for name in names:
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                    if max(st.st_mtime, st.st_ctime) < since:
                        continue
                    with open(path, "rb") as f:
                        hits = _scan_stream(f, needles)
                except OSError:
                    continue
                findings += [Finding(n, path) for n in sorted(hits)]
    return findings


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its living descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                # The name (field 2) may hold spaces and parentheses: split after it.
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def open_files_containing(pids: Iterable[int], needles: Mapping[str, bytes]) -> list[Finding]:
    """Regular files (deleted or anonymous ones included) that ``pids`` hold open with a needle.

    Files are read through ``/proc/PID/fd/N``, which reaches a file even after it was
    unlinked. Pipes, sockets, devices and memfd (memory, not disk) are skipped.
    """
    findings = []
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            fds = list(fd_dir.iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
                if target.startswith("/memfd:") or not target.startswith("/"):
                    continue
                with open(fd, "rb") as f:
                    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                        continue
                    hits = _scan_stream(f, needles)
            except OSError:
                continue
            findings += [Finding(n, f"pid {pid}: {target}") for n in sorted(hits)]
    return findings
