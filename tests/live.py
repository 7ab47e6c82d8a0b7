"""A real server under gunicorn (gthread workers) for tests that go through the HTTP
stack: the drop (``securedrop-wm serve``: browser, canary, load, Tor) and the transfer API
(``securedrop-wm serve-transfer``: tests/transfer/test_live.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    """A free loopback port below the ephemeral range (tor's outgoing ports live there)."""
    for _ in range(200):
        port = 20000 + int.from_bytes(os.urandom(2), "big") % 10000
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found")


def is_listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class LiveServer:
    """A running server process (``python -m MODULE --config CONFIG *COMMAND --port ...``)
    and where its output went: ``output`` if given, else ``log_dir/server.out``."""

    config: Path
    port: int
    workers: int = 2
    threads: int = 4
    log_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    module: str = "securedrop_wm"
    command: tuple[str, ...] = ("serve", "--host", "127.0.0.1")
    output: Path | None = None
    #: Where the server runs: ``python -m`` imports the module from there first (a
    #: benchmark serves an older checkout this way, bench/flood.py).
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def transfer_api(cls, config: Path, port: int, output: Path) -> LiveServer:
        """The transfer API as ``securedrop-wm serve-transfer`` serves it (one worker, no
        access log, loopback only), its output going to ``output``."""
        return cls(config, port, workers=1, threads=2, command=("serve-transfer",), output=output)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stdout_path(self) -> Path:
        if self.output is not None:
            return self.output
        assert self.log_dir is not None
        return self.log_dir / "server.out"

    def start(self, timeout: float = 30) -> LiveServer:
        """Start the server and wait until it accepts connections."""
        if self.output is None and self.log_dir is None:
            self.log_dir = self.config.parent.parent / "server-logs"
        self.stdout_path.parent.mkdir(parents=True, exist_ok=True)
        out = self.stdout_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                self.module,
                "--config",
                str(self.config),
                *self.command,
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--threads",
                str(self.threads),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            cwd=self.cwd,
            start_new_session=True,
        )
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.module} exited: {self.stdout_path.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.module} did not start in time")

    def worker_pids(self) -> list[int]:
        """Pids of the gunicorn workers (children of the master)."""
        assert self.process is not None
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False
        )
        return [int(p) for p in out.stdout.split()]

    def stop(self) -> None:
        """Stop the whole process group; escalate to SIGKILL."""
        if self.process is None or self.process.poll() is not None:
            return
        pgid = os.getpgid(self.process.pid)
        # SIGINT is gunicorn's quick shutdown; SIGTERM would wait for idle keep-alives.
        os.killpg(pgid, signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
