"""Fixtures for tests over real Tor, on a private network on loopback.

``tor_network`` (session-wide) starts five directory authorities that are also the
only relays, one onion host and two clients, and always tears them down. Test code
publishes onion services on the host with ``Onion.connect(net.onion_host.control_port,
password=net.onion_host.control_password)`` and reaches them through a client with
``tor_session(0)`` or ``net.clients[0].session()``.

Environment: ``SDWM_TOR_KEY_CACHE`` (where authority keys are reused from, default
``~/.cache/securedrop-wm/tor-keys``), ``SDWM_TOR_INFO_LOG=1`` (info-level tor logs).
"""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Callable, Iterator

import pytest
import requests
from privnet import (
    PAGE,
    PrivateTorNetwork,
    TorClient,
    default_key_cache,
    running_network,
    socks_session,
)

__all__ = ["PrivateTorNetwork", "TorClient", "socks_session", "tor_session"]

_TIMINGS = pytest.StashKey[dict[str, float]]()


@pytest.fixture(scope="session")
def tor_network(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[PrivateTorNetwork]:
    """The private Tor network, started once per test session.

    Teardown stops every tor (SIGKILL by pid if need be) and fails if any is left.
    """
    if not shutil.which("tor") or not shutil.which("tor-gencert"):
        pytest.fail("Debian's 'tor' package (tor, tor-gencert) is needed for the Tor tests")
    net_dir = tmp_path_factory.mktemp("tornet")
    with running_network(net_dir, key_cache=default_key_cache()) as net:
        pytestconfig.stash[_TIMINGS] = net.timings
        yield net


@pytest.fixture
def tor_session(
    tor_network: PrivateTorNetwork,
) -> Iterator[Callable[[int], requests.Session]]:
    """Make a :class:`requests.Session` that goes through client ``i``'s SOCKS port
    (``socks5h``, so tor resolves onion names); closed after the test."""
    sessions: list[requests.Session] = []

    def make(client: int = 0) -> requests.Session:
        session = tor_network.clients[client].session()
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


class _PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass  # no request logs, as on the real drop


@pytest.fixture(scope="session")
def web_server() -> Iterator[int]:
    """A tiny HTTP server on 127.0.0.1 that answers :data:`PAGE`; yields its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    timings = terminalreporter.config.stash.get(_TIMINGS, None)
    if timings:
        text = ", ".join(f"{k}={v:.1f}" for k, v in timings.items())
        terminalreporter.write_line(f"private Tor network: {text}")
