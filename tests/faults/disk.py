"""What a fault left on disk: plaintext where it must not be, files nobody refers to."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import short_tempdir

_BLOCK = 1 << 20


def files_with(marker: bytes, roots: Iterable[Path], since: float = 0.0) -> list[str]:
    """Regular files under ``roots`` (changed at or after ``since``) that contain ``marker``,
    also where it straddles a read block. Files that vanish while looked at are skipped."""
    found = []
    for root in roots:
        for folder, _dirs, names in os.walk(root):
            for name in names:
                path = os.path.join(folder, name)
                try:
                    st = os.lstat(path)
                    if not os.path.isfile(path) or os.path.islink(path):
                        continue
                    if max(st.st_mtime, st.st_ctime) < since:
                        continue
                    if _contains(path, marker):
                        found.append(path)
                except OSError:
                    continue
    return found


def _contains(path: str, marker: bytes) -> bool:
    keep = len(marker) - 1
    tail = b""
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            if marker in tail + block:
                return True
            tail = block[-keep:]
    return False


def store_state(data_dir: Path) -> tuple[set[str], set[str]]:
    """(names the database refers to, names in the store folder)."""
    db = sqlite3.connect(f"file:{data_dir / 'db.sqlite'}?mode=ro", uri=True)
    try:
        referenced = {
            name
            for (name,) in db.execute(
                "SELECT store_name FROM submissions UNION SELECT store_name FROM replies"
            )
        }
    finally:
        db.close()
    return referenced, {p.name for p in (data_dir / "store").iterdir()}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def tmpfs(size: str) -> Iterator[Path]:
    """A file system of ``size`` (as mount(8) takes it) on a new folder, for a real ENOSPC.

    Unmounted lazily: detached at once, freed when the last process lets go of it.
    """
    base = short_tempdir("sdwm-full-")
    mount_point = base / "disk"
    mount_point.mkdir()
    options = f"size={size},mode=0700"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)
        shutil.rmtree(base, ignore_errors=True)
