"""Helpers for the Tor tests of the drop's own commands: ``securedrop-wm serve --onion``,
``serve-transfer --onion`` and ``transfer ...``, run as a user runs them; and a small
flood of new sources over Tor (:class:`TorFlood`) with what the service's tor says about
it (:func:`metrics`, :func:`pow_figures`, :func:`descriptor_inner_layer`), shared with
``bench/flood.py --tor``. Where ``transfer watch`` delivers (SMTP, webhook, and
certificates for them) is tests/transfer/receivers.py."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
import socks
from click.testing import CliRunner, Result
from privnet import PrivateTorNetwork, TorClient, socks_error_code
from stem.descriptor.hidden_service import HiddenServiceDescriptorV3

from securedrop_wm.cli import main as cli

PUBLISHED = re.compile(r"published at http://([a-z2-7]{56}\.onion)/")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
#: The service-side figures of tor's proof-of-work defence, on its MetricsPort.
POW_METRICS = ("tor_hs_pow_suggested_effort", "tor_hs_rdv_pow_pqueue_count")


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


def privnet_torrc(net: PrivateTorNetwork, path: Path, metrics_port: int | None = None) -> Path:
    """A torrc (for ``serve --onion --tor-config``) that makes a tor join ``net``, and,
    with ``metrics_port``, open its MetricsPort there (loopback only)."""
    lines = [
        f"{key} {value}"
        for key, values in net.launch_config().items()
        for value in ([values] if isinstance(values, str) else values)
    ]
    if metrics_port is not None:
        lines += [f"MetricsPort 127.0.0.1:{metrics_port}", "MetricsPortPolicy accept 127.0.0.1"]
    path.write_text("\n".join(lines) + "\n")
    return path


def metrics(port: int) -> str:
    """What tor's MetricsPort says, in Prometheus' text format."""
    return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text


def pow_figures(text: str, service_id: str) -> dict[str, str]:
    """``{metric: value}`` of :data:`POW_METRICS` for ``service_id`` in a MetricsPort
    reply; a metric tor does not report is left out."""
    found = {}
    for name in POW_METRICS:
        match = re.search(rf'^{name}{{onion="{service_id}"}} (\S+)$', text, re.MULTILINE)
        if match:
            found[name] = match.group(1)
    return found


def descriptor_inner_layer(client: TorClient, address: str) -> str:
    """The encrypted layer of ``address``'s descriptor as ``client``'s tor fetched it,
    decrypted (a public onion's layers are keyed by its address alone)."""
    controller = client.node.controller
    assert controller is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # stem 1.8 on Python 3.11
        text = controller.get_info(f"hs/client/desc/id/{address.removesuffix('.onion')}")
        return str(HiddenServiceDescriptorV3.from_str(text).decrypt(address))


def isolated_session(client: TorClient, username: str) -> requests.Session:
    """A session through ``client``'s SOCKS port with its own SOCKS username: tor puts
    the streams of each username on circuits of their own (IsolateSOCKSAuth, on by
    default), so each username is a new visitor of an onion service."""
    session = requests.Session()
    session.trust_env = False
    proxy = f"socks5h://{username}:x@127.0.0.1:{client.socks_port}"
    session.proxies = {"http": proxy, "https": proxy}
    # One stream per request, as the load bench does (tests/load/client.py).
    session.headers["Connection"] = "close"
    return session


def open_streams(
    client: TorClient, address: str, count: int, username: str | None = None
) -> list[socket.socket]:
    """Open ``count`` streams to ``address`` port 80 through ``client``'s SOCKS port, all
    on one circuit (same SOCKS credentials); stop at the first that tor refuses."""
    opened: list[socket.socket] = []
    for _ in range(count):
        sock = socks.socksocket()
        sock.set_proxy(
            socks.SOCKS5,
            "127.0.0.1",
            client.socks_port,
            rdns=True,
            username=username,
            password="x" if username else None,
        )
        sock.settimeout(60)
        try:
            sock.connect((address, 80))
        except (OSError, socks.ProxyError):
            sock.close()
            break
        opened.append(sock)
    return opened


def still_open(sock: socket.socket) -> bool:
    """Whether a stream still answers: an HTTP request gets a reply."""
    try:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return sock.recv(64).startswith(b"HTTP/1.")
    except OSError:
        return False


class TorFlood:
    """Attackers flooding an onion service with new sources, each thread through
    ``client``'s SOCKS port as a stream of new visitors: a new SOCKS username (so a new
    circuit, a new introduction and, with proof-of-work on, a new place in the
    service's queue) for every ``creates_per_circuit`` new sources, and, with
    ``stream_burst``, that many streams at once on the circuit before leaving it.

    Runs from ``with`` until ``seconds`` have passed or :meth:`stop`; counts what the
    attackers were served (``served``), when each new source was made (``created_at``)
    and how many of their circuits the service closed (``circuits_closed``).
    """

    def __init__(
        self,
        client: TorClient,
        url: str,
        *,
        threads: int = 3,
        seconds: float = 20.0,
        creates_per_circuit: int = 2,
        stream_burst: int = 0,
        timeout: float = 60.0,
    ) -> None:
        self.client = client
        self.url = url.rstrip("/")
        self.address = self.url.removeprefix("http://")
        self.seconds = seconds
        self.creates_per_circuit = creates_per_circuit
        self.stream_burst = stream_burst
        self.timeout = timeout
        self.served: Counter[str] = Counter()
        self.created_at: list[float] = []
        self.circuits = 0
        self.circuits_closed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), name=f"flood-{n}", daemon=True)
            for n in range(threads)
        ]

    def __enter__(self) -> TorFlood:
        self._deadline = time.monotonic() + self.seconds
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def wait(self) -> None:
        """Until the flood's time is up."""
        for thread in self._threads:
            thread.join()

    def stop(self) -> None:
        self._stop.set()
        self.wait()

    def created_between(self, start: float, end: float) -> int:
        """How many new sources the attackers made between two ``time.monotonic()``."""
        with self._lock:
            return sum(start <= t <= end for t in self.created_at)

    def _over(self) -> bool:
        return self._stop.is_set() or time.monotonic() > self._deadline

    def _count(self, what: str) -> None:
        with self._lock:
            self.served[what] += 1
            if what == "created":
                self.created_at.append(time.monotonic())

    def _run(self, thread: int) -> None:
        circuit = 0
        while not self._over():
            circuit += 1
            username = f"flood-{thread}-{circuit}"
            with self._lock:
                self.circuits += 1
            for _ in range(self.creates_per_circuit):
                if self._over():
                    break
                # A cookie jar of its own (a source logged in cannot make another), on
                # the same circuit (same SOCKS username).
                with isolated_session(self.client, username) as session:
                    self._count(self._create(session))
            if self.stream_burst and not self._over():
                self._burst(username)

    def _create(self, session: requests.Session) -> str:
        """One new source: the codename page, then /create with its form token."""
        try:
            page = session.get(self.url + "/generate", timeout=self.timeout)
            if page.status_code != 200:
                return f"generate {page.status_code}"
            token = CSRF.search(page.text)
            response = session.post(
                self.url + "/create",
                data={"csrf_token": token.group(1) if token else ""},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            code = socks_error_code(exc)
            return f"SOCKS {code:#04x}" if code is not None else type(exc).__name__
        if response.status_code in (302, 303) and "/submit" in response.headers.get("Location", ""):
            return "created"
        return f"create {response.status_code}"

    def _burst(self, username: str) -> None:
        """``stream_burst`` streams at once on the circuit of ``username``."""
        streams = open_streams(self.client, self.address, self.stream_burst, username)
        try:
            time.sleep(1)
            if streams and not any(still_open(s) for s in streams[:3]):
                with self._lock:
                    self.circuits_closed += 1
        finally:
            for s in streams:
                s.close()
