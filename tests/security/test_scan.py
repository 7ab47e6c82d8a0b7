"""The scanners the security tests rely on find what they are meant to find."""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from pathlib import Path

from .scan import files_containing, open_files_containing


def test_open_files_include_an_anonymous_temp_file(tmp_path: Path) -> None:
    # Werkzeug spools a big upload part to such a file: a directory walk cannot see it.
    marker = b"SDWM-SELFTEST-" + secrets.token_hex(8).encode()
    with tempfile.TemporaryFile(dir=tmp_path) as spool:
        spool.write(os.urandom(3 * 1024 * 1024) + marker + os.urandom(100))
        spool.flush()
        assert list(tmp_path.iterdir()) == []
        found = open_files_containing([os.getpid()], {"marker": marker})
    assert [f.needle for f in found] == ["marker"]


def test_files_are_searched_across_block_edges(tmp_path: Path) -> None:
    marker = b"SDWM-SELFTEST-" + secrets.token_hex(8).encode()
    since = time.time() - 1
    straddling = tmp_path / "deep" / "new.bin"
    straddling.parent.mkdir()
    # The marker spans the scanner's 1 MiB read boundary.
    straddling.write_bytes(os.urandom(1024 * 1024 - 5) + marker)
    os.mkfifo(tmp_path / "fifo")  # must be skipped, not block the walk
    found = files_containing([tmp_path], {"marker": marker}, since)
    assert [(f.needle, f.where) for f in found] == [("marker", str(straddling))]
