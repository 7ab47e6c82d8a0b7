"""Helpers for the Tor tests of the drop's own commands: ``securedrop-wm serve --onion``,
``serve-transfer --onion`` and ``transfer ...``, run as a user runs them."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner, Result
from privnet import PrivateTorNetwork, TorClient

from securedrop_wm.cli import main as cli

PUBLISHED = re.compile(r"published at http://([a-z2-7]{56}\.onion)/")


@dataclass
class Served:
    """A running ``securedrop-wm serve* --onion`` and the address it printed."""

    process: subprocess.Popen[bytes]
    output: Path
    address: str
    port: int

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as a service manager stops it; return its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            raise AssertionError(f"did not stop on SIGTERM: {self.text()}") from None

    def text(self) -> str:
        return self.output.read_text(errors="replace")


@contextmanager
def served(
    config: Path,
    args: Sequence[str],
    port: int,
    output: Path,
    env: dict[str, str] | None = None,
    timeout: float = 150,
) -> Iterator[Served]:
    """Run ``securedrop-wm --config CONFIG ARGS`` until it prints its onion address;
    always stop it (and its whole process group) afterwards."""
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "securedrop_wm", "--config", str(config), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    running: Served | None = None
    try:
        deadline = time.monotonic() + timeout
        while running is None:
            match = PUBLISHED.search(output.read_text(errors="replace"))
            if match:
                running = Served(process, output, match.group(1), port)
            elif process.poll() is not None:
                raise AssertionError(f"exited before publishing: {output.read_text()}")
            elif time.monotonic() > deadline:
                raise AssertionError(
                    f"no onion address within {timeout:.0f}s: {output.read_text()}"
                )
            else:
                time.sleep(0.1)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def descendants(pid: int) -> list[int]:
    """Pids of every process below ``pid``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def port_is_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def transfer_cli(
    client: TorClient, onion: str, token_file: Path, *args: str, retries: int = 4
) -> Result:
    """``securedrop-wm transfer ARGS`` through ``client``'s SOCKS port."""
    return CliRunner().invoke(
        cli,
        [
            "transfer",
            *args,
            "--onion",
            onion,
            "--socks",
            f"127.0.0.1:{client.socks_port}",
            "--token-file",
            str(token_file),
            "--retries",
            str(retries),
            "--retry-delay",
            "1",
        ],
    )


def cut_rendezvous(net: PrivateTorNetwork, service_id: str) -> int:
    """Close the onion host's rendezvous circuits for ``service_id``: every client
    connected to the service loses its streams mid-transfer. Returns how many."""
    assert net.onion_host is not None
    controller = net.onion_host.node.controller
    assert controller is not None
    cut = 0
    for circuit in controller.get_circuits([]):
        if circuit.purpose == "HS_SERVICE_REND" and circuit.rend_query == service_id:
            controller.close_circuit(circuit.id)
            cut += 1
    return cut
