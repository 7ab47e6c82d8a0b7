"""A live server whose temp dir and working directory are the test's own, to be scanned."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live import LiveServer, free_port


@dataclass
class ContainedServer:
    """A running server and every place it may have written to."""

    server: LiveServer
    data_dir: Path
    tmp: Path
    cwd: Path
    started: float

    @property
    def pid(self) -> int:
        assert self.server.process is not None
        return self.server.process.pid

    def written_roots(self) -> list[Path]:
        """Its data dir, temp dir, working dir and log dir, and the system's temp dirs."""
        assert self.server.log_dir is not None
        roots = [self.data_dir, self.tmp, self.cwd, self.server.log_dir]
        return roots + [Path(p) for p in ("/tmp", "/var/tmp", "/dev/shm", "/var/log")]


@pytest.fixture
def contained_server(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ContainedServer]:
    """The real server with ``TMPDIR`` and its working directory pointed at fresh dirs."""
    started = time.time() - 1  # file times can lag the clock by a tick
    tmp = data_dir.parent / "server-tmp"
    cwd = data_dir.parent / "server-cwd"
    tmp.mkdir()
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # the server inherits it
    with LiveServer(data_dir / "config.toml", free_port(), env={"TMPDIR": str(tmp)}) as server:
        assert server.process is not None
        assert Path(os.readlink(f"/proc/{server.process.pid}/cwd")) == cwd
        yield ContainedServer(server, data_dir, tmp, cwd, started)
