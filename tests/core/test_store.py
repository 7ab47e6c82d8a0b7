"""The store: names that cannot escape, atomic commits, orphans removed at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from securedrop_wm.errors import UnsafePathError
from securedrop_wm.store import Store


def test_names_that_could_escape_are_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    for bad in ("../x.gpg", "/etc/passwd", "a/b.gpg", ".tmp-abc", "x" * 40 + ".gpg"):
        with pytest.raises(UnsafePathError):
            store.path(bad)


def test_commit_renames_and_orphans_are_cleaned(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    kept_tmp = store.new_temp_path()
    kept_tmp.write_bytes(b"ciphertext one")
    kept = store.commit(kept_tmp)
    orphan_tmp = store.new_temp_path()
    orphan_tmp.write_bytes(b"ciphertext two")
    orphan = store.commit(orphan_tmp)
    half_written = store.new_temp_path()
    half_written.write_bytes(b"half")

    removed = store.clean_orphans([kept])

    assert sorted(removed) == sorted([orphan, half_written.name])
    assert [p.name for p in store.root.iterdir()] == [kept]
    assert store.path(kept).read_bytes() == b"ciphertext one"


def test_delete_overwrites_before_unlinking(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    temp = store.new_temp_path()
    temp.write_bytes(b"A" * 5000)
    name = store.commit(temp)
    path = store.path(name)
    handle = path.open("rb")  # an open handle still sees the inode after unlink
    store.delete(name)
    assert not path.exists()
    leftover = handle.read()
    handle.close()
    assert len(leftover) == 5000
    assert b"A" * 64 not in leftover
