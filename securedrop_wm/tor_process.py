"""Helpers of :mod:`securedrop_wm.onion` for stem and for a tor of our own.

Turning stem's errors into ours, quieting stem's deprecation warnings, checking that a
control port listens before stem connects, and, for ``Onion.launch``: the torrc text,
connecting to the launched tor's control socket, keeping its last log lines in memory
and stopping it. Nothing here publishes a service.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import stem
import stem.connection
import stem.control

from .errors import OnionError, TorLaunchError, TorNotRunningError

__all__ = [
    "TorOutput",
    "close_controller",
    "connect_launched",
    "probe",
    "quiet_stem",
    "start_tor",
    "terminate",
    "tor_errors",
    "torrc_text",
]

#: Seconds a tor of ours gets to exit after each signal.
STOP_GRACE = 5.0
# How many of its last output lines a tor of ours keeps in memory, for error messages.
_TOR_OUTPUT_LINES = 200


@contextlib.contextmanager
def tor_errors(action: str) -> Iterator[None]:
    """Turn stem's errors into ours."""
    try:
        yield
    except stem.SocketClosed as exc:
        raise TorNotRunningError(f"tor went away while asked to {action}") from exc
    except stem.ControllerError as exc:
        raise OnionError(f"tor could not {action}: {exc}") from exc


@contextlib.contextmanager
def quiet_stem() -> Iterator[None]:
    """Silence stem 1.8's use of ``Thread.setDaemon`` (deprecated since Python 3.10)
    where stem starts threads: opening and closing a controller."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", r"setDaemon\(\) is deprecated", DeprecationWarning, r"stem\."
        )
        yield


def probe(host: str, port: int, socket_path: Path | None) -> None:
    """Check that something listens before stem connects: stem leaks its socket
    when the connection is refused.

    :raises OSError: nothing listens.
    """
    if socket_path is not None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(socket_path))
    else:
        with socket.create_connection((host, port), timeout=10):
            pass


def close_controller(controller: Any) -> None:
    """Close a stem controller, quietly, whatever state it is in."""
    with quiet_stem(), contextlib.suppress(stem.SocketError, OSError):
        controller.close()


def torrc_text(options: Mapping[str, str | Sequence[str]]) -> str:
    """A torrc of ``options`` (a list value repeats the option).

    :raises ValueError: an option name that is not one, or a value with a line break.
    """
    lines = []
    for key, value in options.items():
        for item in [value] if isinstance(value, str) else value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) or "\n" in item or "\r" in item:
                raise ValueError(f"invalid torrc option {key} {item!r}")
            lines.append(f"{key} {item}\n")
    return "".join(lines)


def start_tor(
    data_dir: Path, tor_cmd: str, config: Mapping[str, str | Sequence[str]] | None
) -> tuple[subprocess.Popen[bytes], Path, TorOutput]:
    """Start a tor of our own in ``data_dir``, owned by this process, with a control
    socket there (cookie auth), no SOCKS port unless ``config`` says otherwise, and its
    log kept in memory; return it, its control socket and its output.

    :raises TorLaunchError: the data dir cannot be made or tor cannot be run.
    """
    data_dir = Path(data_dir).resolve()
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        data_dir.chmod(0o700)
    except OSError as exc:
        raise TorLaunchError(f"cannot create tor data dir {data_dir}: {exc}") from exc
    socket_path = data_dir / "control.sock"
    if len(str(socket_path)) > 100:
        raise TorLaunchError(f"tor data dir path too long for a control socket: {data_dir}")
    options: dict[str, str | Sequence[str]] = {
        "DataDirectory": str(data_dir),
        "ControlSocket": str(socket_path),
        "CookieAuthentication": "1",
        "SocksPort": "0",
        # Tor's log names onion addresses, times and failures: kept in this process's
        # memory (for an error message), never written to the data dir.
        "Log": "notice stdout",
        "__OwningControllerProcess": str(os.getpid()),
        **(config or {}),
    }
    torrc = data_dir / "torrc"
    torrc.write_text(torrc_text(options))
    with contextlib.suppress(FileNotFoundError):
        socket_path.unlink()
    try:
        process = subprocess.Popen(
            [tor_cmd, "-f", str(torrc), "--ignore-missing-torrc"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    except OSError as exc:
        raise TorLaunchError(f"cannot run {tor_cmd}: {exc}") from exc
    return process, socket_path, TorOutput(process)


def connect_launched(
    process: subprocess.Popen[bytes], socket_path: Path, output: TorOutput, timeout: float
) -> Any:
    """An authenticated stem controller on the control socket of a tor we launched.

    :raises TorLaunchError: tor exited, opened no socket in time, or refused us.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise TorLaunchError(f"tor exited at start: {output.last_words()}")
        try:
            probe("", 0, socket_path)
            with quiet_stem():
                controller = stem.control.Controller.from_socket_file(str(socket_path))
            break
        except (OSError, stem.SocketError):
            if time.monotonic() > deadline:
                raise TorLaunchError(f"tor opened no control socket within {timeout:g}s") from None
            time.sleep(0.1)
    try:
        # The torrc names this process as owner: stem takes ownership here, so
        # tor exits once this connection closes.
        controller.authenticate()
    except (stem.connection.AuthenticationFailure, stem.SocketError) as exc:
        close_controller(controller)
        raise TorLaunchError(f"cannot authenticate to our own tor: {exc}") from exc
    return controller


def terminate(process: subprocess.Popen[bytes]) -> None:
    """Wait for our tor to exit; SIGTERM, then SIGKILL, if it does not."""
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_GRACE)
            return


class TorOutput:
    """The last lines a tor of ours wrote to its stdout (its log), in memory only: read
    by a thread for as long as tor runs, so that tor never blocks on a full pipe."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=_TOR_OUTPUT_LINES)
        self._thread = threading.Thread(
            target=self._read, args=(process,), name="tor-output", daemon=True
        )
        self._thread.start()

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                self._lines.append(line.decode(errors="replace").rstrip())

    def last_words(self) -> str:
        """Tor's last warning and last error (which says only "see warnings above"), for
        the message of a failed launch."""
        self._thread.join(0.5)  # what tor wrote as it exited
        lines = list(self._lines)
        said = [
            next((line.strip() for line in reversed(lines) if f"[{level}]" in line), "")
            for level in ("warn", "err")
        ]
        return " / ".join(line for line in said if line) or (
            lines[-1].strip() if lines else "tor said nothing"
        )
