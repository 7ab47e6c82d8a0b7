"""A private Tor network on 127.0.0.1 for end-to-end tests.

Five directory authorities that are also the only relays (none of them an exit),
one onion-service host and two clients, all with ``TestingTorNetwork 1``. Nothing
listens beyond loopback and no tor knows any public relay, so no byte leaves the
machine. What was learned about making this quick and reliable is in
``shared/recipes/tor-privnet.md``; the comments below say which pitfall a line avoids.

Usage::

    net = PrivateTorNetwork(workdir, key_cache=default_key_cache())
    try:
        net.start()
        session = net.clients[0].session()
        ...
    finally:
        net.stop()
"""

from __future__ import annotations

import base64
import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import stem
import stem.connection
from stem.control import Controller

#: SOCKS5 reply codes tor gives with ``ExtendedErrors`` for onion addresses.
SOCKS_ONION_NOT_FOUND = 0xF0  # no descriptor found on the HSDirs
SOCKS_ONION_INTRO_FAILED = 0xF2
SOCKS_ONION_REND_FAILED = 0xF3
SOCKS_ONION_AUTH_MISSING = 0xF4  # service needs client auth, client has no key
SOCKS_ONION_AUTH_BAD = 0xF5  # client has a key, it does not decrypt the descriptor
SOCKS_ONION_INTRO_TIMEOUT = 0xF7

#: What the tests' loopback web server answers.
PAGE = b"<!doctype html><title>onion</title><p>hello from the onion</p>\n"

_N_AUTHORITIES = 5
_N_CLIENTS = 2
_HS_PASSWORD_BYTES = 18

_COMMON = """\
TestingTorNetwork 1
DataDirectory {dir}
PidFile {dir}/pid
Log notice file {dir}/notice.log
RunAsDaemon 0
Nickname {nick}
ControlPort 127.0.0.1:{control_port}
__OwningControllerProcess {owner}
SafeLogging 0
LogTimeGranularity 1
ShutdownWaitLength 0
Sandbox 0
ClientUseIPv6 0
UseDefaultFallbackDirs 0
PathsNeededToBuildCircuits 0.67
TestingDirAuthVoteExit *
TestingDirAuthVoteGuard *
TestingDirAuthVoteHSDir *
TestingMinExitFlagThreshold 0
V3AuthNIntervalsValid 2
NumCPUs 1
V3AuthVotingInterval {interval}
GeoIPFile /dev/null
GeoIPv6File /dev/null
"""

_RELAY = """\
SocksPort 0
ORPort 127.0.0.1:{or_port}
Address 127.0.0.1
AssumeReachable 1
ExitRelay 0
ExitPolicy reject *:*
ContactInfo {nick}@test.invalid
ServerDNSResolvConfFile /dev/null
ServerDNSDetectHijacking 0
ServerDNSTestAddresses
"""

_AUTHORITY = """\
DirPort 127.0.0.1:{dir_port}
AuthoritativeDirectory 1
V3AuthoritativeDirectory 1
TestingV3AuthInitialVotingInterval {initial_interval}
TestingV3AuthInitialVoteDelay 2
TestingV3AuthInitialDistDelay 2
TestingV3AuthVotingStartOffset {vote_offset}
V3AuthVoteDelay 2
V3AuthDistDelay 2
"""

#: Seconds between consensuses (the least tor allows). The first vote uses the
#: same interval, and so do the non-authorities (used when their consensus is
#: not live): onion services derive the start of the shared-random run, and so
#: their descriptors' revision counters, from it. With differing intervals a
#: republished service's new descriptor can carry a lower revision counter than
#: the one the HSDirs hold, and they reject it (UPLOAD_REJECTED).
_VOTING_INTERVAL = 10
#: Seconds from launch to the first vote: late enough that every relay has
#: published its descriptor, so the first consensus is not empty (pitfall 1).
_FIRST_VOTE_AFTER = 3.5


class PrivnetError(RuntimeError):
    """The private network could not be started or torn down."""


def default_key_cache() -> Path:
    """Where generated authority and relay keys are kept between sessions."""
    env = os.environ.get("SDWM_TOR_KEY_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "securedrop-wm" / "tor-keys"


class PortPicker:
    """Hands out distinct free loopback TCP ports below the ephemeral range.

    A port from ``bind(0)`` lies in the ephemeral range, where a tor's own outgoing
    loopback connection can take it before the tor meant to listen on it binds it
    ("Address already in use", pitfall 3).
    """

    def __init__(self) -> None:
        self._given: set[int] = set()
        self._rng = random.SystemRandom()
        try:
            text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
            ephemeral_low = int(text.split()[0])
        except (OSError, ValueError, IndexError):
            ephemeral_low = 32768
        self._low, self._high = 10000, max(ephemeral_low, 10500)

    def pick(self) -> int:
        for _ in range(2000):
            port = self._rng.randrange(self._low, self._high)
            if port in self._given:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            self._given.add(port)
            return port
        raise PrivnetError("no free loopback port below the ephemeral range")


def socks_session(socks_port: int) -> requests.Session:
    """A :class:`requests.Session` whose every request goes through a tor SOCKS port.

    ``socks5h`` makes tor resolve the name, which onion addresses require. The
    environment's proxy settings are ignored so nothing bypasses tor.
    """
    session = requests.Session()
    session.trust_env = False
    proxy = f"socks5h://127.0.0.1:{socks_port}"
    session.proxies = {"http": proxy, "https": proxy}
    return session


def socks_error_code(exc: BaseException) -> int | None:
    """The SOCKS5 reply code in a failed request through tor, if there is one."""
    match = re.search(r"\b0x([0-9a-fA-F]{2}):", str(exc))
    return int(match.group(1), 16) if match else None


def fetch_until_ok(
    session: requests.Session, url: str, *, timeout: float = 90.0
) -> requests.Response:
    """GET ``url``, retrying while tor reports a transient failure.

    The first lookup of a fresh onion can race its descriptor upload, and a client
    holding a stale descriptor first tries the old introduction points.
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            # A slow answer is still an answer: tor gives up by itself (SocksTimeout).
            return session.get(url, timeout=max(5.0, deadline - time.monotonic()))
        except requests.RequestException as exc:
            last = exc
            time.sleep(0.5)
    raise PrivnetError(f"{url} not reachable within {timeout:.0f}s: {last!r}")


def wait_for_socks_error(
    session: requests.Session, url: str, code: int, *, timeout: float = 120.0
) -> list[int | None]:
    """GET ``url`` until tor refuses with SOCKS reply ``code``; return the codes seen.

    Raises :class:`AssertionError` if a request succeeds or the code never comes.
    """
    deadline = time.monotonic() + timeout
    seen: list[int | None] = []
    while time.monotonic() < deadline:
        try:
            response = session.get(url, timeout=max(5.0, deadline - time.monotonic()))
        except requests.RequestException as exc:
            seen.append(socks_error_code(exc))
            if seen[-1] == code:
                return seen
            time.sleep(0.5)
            continue
        raise AssertionError(f"{url} answered {response.status_code}; expected a refusal")
    raise AssertionError(f"no SOCKS error {code:#04x} from {url} within {timeout:.0f}s: {seen}")


def x25519_private_to_base64(private_key_b32: str) -> str:
    """Tor's files want base32 x25519 keys; ONION_CLIENT_AUTH_ADD wants base64."""
    raw = base64.b32decode(private_key_b32.upper() + "=" * (-len(private_key_b32) % 8))
    return base64.b64encode(raw).decode("ascii")


@dataclass
class TorNode:
    """One tor process of the network."""

    nick: str
    kind: str  # "authority", "onion-host" or "client"
    directory: Path
    control_port: int
    or_port: int | None = None
    dir_port: int | None = None
    socks_port: int | None = None
    password: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    controller: Controller | None = None

    @property
    def cookie_path(self) -> Path | None:
        """The control auth cookie, for a tor that uses cookie authentication."""
        return None if self.password else self.directory / "control_auth_cookie"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def last_words(self) -> str:
        """The last warning or error tor logged, to say why it died."""
        for name in ("notice.log", "stdout.log"):
            with contextlib.suppress(OSError):
                lines = (self.directory / name).read_text(errors="replace").splitlines()
                bad = [line for line in lines if "[warn]" in line or "[err]" in line]
                if bad:
                    return bad[-1].strip()
        return f"no warning logged; see {self.directory}"


@dataclass
class OnionHost:
    """The tor that test code publishes onion services on (via ``Onion.connect``)."""

    node: TorNode

    @property
    def control_port(self) -> int:
        return self.node.control_port

    @property
    def control_password(self) -> str:
        """This tor uses password authentication (``HashedControlPassword``) only."""
        assert self.node.password is not None
        return self.node.password


@dataclass
class TorClient:
    """A tor client with a SOCKS port, as Tor Browser or the transfer machine has."""

    node: TorNode
    auth_dir: Path

    @property
    def name(self) -> str:
        return self.node.nick

    @property
    def socks_port(self) -> int:
        assert self.node.socks_port is not None
        return self.node.socks_port

    @property
    def control_port(self) -> int:
        return self.node.control_port

    @property
    def cookie_path(self) -> Path:
        """This tor uses cookie authentication only."""
        path = self.node.cookie_path
        assert path is not None
        return path

    @property
    def proxy_url(self) -> str:
        return f"socks5h://127.0.0.1:{self.socks_port}"

    def session(self) -> requests.Session:
        """A :class:`requests.Session` through this client's SOCKS port."""
        return socks_session(self.socks_port)

    def add_client_auth(self, service_id: str, private_key_b32: str) -> None:
        """Give this client the x25519 key of a client-authorized onion (not persisted)."""
        service_id = service_id.removesuffix(".onion")
        key = x25519_private_to_base64(private_key_b32)
        self._command(f"ONION_CLIENT_AUTH_ADD {service_id} x25519:{key}")

    def remove_client_auth(self, service_id: str) -> None:
        """Forget the key this client holds for an onion."""
        self._command(f"ONION_CLIENT_AUTH_REMOVE {service_id.removesuffix('.onion')}")

    def _command(self, line: str) -> None:
        assert self.node.controller is not None, "network not started"
        reply = self.node.controller.msg(line)
        # 251 "Client for onion existed and replaced", 252 "Registered client and
        # decrypted desc" are successes too.
        if not reply.content()[-1][0].startswith("25"):
            raise PrivnetError(f"{self.name} refused {line.split()[0]}: {reply.content()!r}")


@dataclass
class StopReport:
    """What tearing the network down took."""

    seconds: float
    signalled: list[str] = field(default_factory=list)
    leftover_pids: list[int] = field(default_factory=list)


class PrivateTorNetwork:
    """Five authority-relays, one onion host and two clients on loopback.

    :param workdir: where each tor gets its data directory and logs.
    :param key_cache: where generated authority and relay keys are reused from
        (RSA-3072 authority keys take seconds to make); ``None`` for no cache.
    """

    def __init__(self, workdir: Path, *, key_cache: Path | None = None) -> None:
        self.workdir = Path(workdir).resolve()
        self.key_cache = key_cache
        self.nodes: list[TorNode] = []
        self.authorities: list[TorNode] = []
        self.onion_host: OnionHost | None = None
        self.clients: list[TorClient] = []
        self.dirauth_lines: list[str] = []
        self.timings: dict[str, float] = {}
        self.attempts = 0
        self._hashed_password = ""

    # -- public API -------------------------------------------------------------

    def start(self, *, timeout: float = 120.0, attempts: int = 2) -> None:
        """Start every tor and return once the onion host and clients are bootstrapped.

        A start that fails (a tor dies, say, on a port taken in the meantime) is torn
        down and tried again with fresh ports, up to ``attempts`` times.
        """
        t0 = time.monotonic()
        key_store = self._ensure_keys()
        self.timings["keys_s"] = time.monotonic() - t0
        password = base64.urlsafe_b64encode(os.urandom(_HS_PASSWORD_BYTES)).decode()
        self._hashed_password = _hash_password(password)
        errors: list[str] = []
        for attempt in range(1, attempts + 1):
            self.attempts = attempt
            self._layout(self.workdir / f"run{attempt}", key_store, password)
            try:
                self._start_once(timeout)
                return
            except (PrivnetError, stem.ControllerError, OSError) as exc:
                errors.append(f"attempt {attempt}: {exc}")
                report = self.stop()
                if report.leftover_pids:
                    break
        raise PrivnetError("private Tor network did not start: " + "; ".join(errors))

    def stop(self) -> StopReport:
        """Stop every tor, escalating to SIGKILL by pid, and check that none is left."""
        t0 = time.monotonic()
        report = StopReport(seconds=0.0)
        # The harness's controllers own their tors (TAKEOWNERSHIP): closing one
        # makes that tor exit by itself.
        for node in self.nodes:
            if node.controller is not None:
                with quiet_stem(), contextlib.suppress(Exception):
                    node.controller.close()
                node.controller = None
        # Pitfall 4: a tor may ignore both; escalate, by pid.
        for sig, grace in ((None, 2.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 10.0)):
            running = [node for node in self.nodes if node.is_running()]
            if not running:
                break
            if sig is not None:
                for node in running:
                    assert node.proc is not None
                    report.signalled.append(f"{sig.name} {node.nick}")
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(node.proc.pid, sig)
            end = time.monotonic() + grace
            for node in running:
                assert node.proc is not None
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.proc.wait(max(0.01, end - time.monotonic()))
        report.leftover_pids = [n.proc.pid for n in self.nodes if n.is_running() and n.proc]
        # Belt and braces: any tor whose command line names our work dir (one that
        # escaped the Popen handles, say) is killed by pid, then looked for again.
        for pid in tor_pids_under(self.workdir):
            report.signalled.append(f"SIGKILL stray pid {pid}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while tor_pids_under(self.workdir) and time.monotonic() < deadline:
            time.sleep(0.05)
        report.leftover_pids += tor_pids_under(self.workdir)
        report.seconds = time.monotonic() - t0
        return report

    def pids(self) -> list[int]:
        return [node.proc.pid for node in self.nodes if node.proc is not None]

    def launch_config(self) -> dict[str, str | list[str]]:
        """torrc options that let an extra tor (``Onion.launch``) join this network."""
        return {
            "TestingTorNetwork": "1",
            "DirAuthority": list(self.dirauth_lines),
            "UseDefaultFallbackDirs": "0",
            "PathsNeededToBuildCircuits": "0.67",
            "ClientUseIPv6": "0",
            "GeoIPFile": "/dev/null",
            "GeoIPv6File": "/dev/null",
            "SafeLogging": "0",
            "ShutdownWaitLength": "0",
            "NumCPUs": "1",
            "V3AuthVotingInterval": str(_VOTING_INTERVAL),
        }

    # -- layout and keys --------------------------------------------------------

    def _ensure_keys(self) -> Path:
        """Authority v3 keys (tor-gencert) and relay identity keys, cached."""
        store = self.key_cache or (self.workdir / "keys")
        store.mkdir(parents=True, exist_ok=True, mode=0o700)
        missing = [
            f"auth{i}" for i in range(_N_AUTHORITIES) if not _usable_keys(store / f"auth{i}")
        ]
        if missing:
            with tempfile.TemporaryDirectory(dir=store, prefix=".new-") as tmp:
                procs: list[subprocess.Popen[bytes]] = []
                for nick in missing:
                    procs += _start_keygen(Path(tmp) / nick)
                for proc in procs:
                    if proc.wait(timeout=120) != 0:
                        raise PrivnetError(f"key generation failed: {proc.args!r}")
                for nick in missing:
                    target = store / nick
                    shutil.rmtree(target, ignore_errors=True)
                    # rename is atomic: a concurrent session sees all keys or none
                    with contextlib.suppress(OSError):
                        os.rename(Path(tmp) / nick, target)
        return store

    def _layout(self, rundir: Path, key_store: Path, password: str) -> None:
        """Fresh data dirs, ports and torrcs for one start attempt."""
        ports = PortPicker()
        rundir.mkdir(parents=True, mode=0o700)
        self.nodes, self.authorities, self.clients = [], [], []
        for i in range(_N_AUTHORITIES):
            nick = f"auth{i}"
            node = TorNode(
                nick,
                "authority",
                rundir / nick,
                control_port=ports.pick(),
                or_port=ports.pick(),
                dir_port=ports.pick(),
            )
            shutil.copytree(key_store / nick, node.directory)
            node.directory.chmod(0o700)
            self.authorities.append(node)
        host = TorNode("hs", "onion-host", rundir / "hs", ports.pick(), password=password)
        host.directory.mkdir(mode=0o700)
        self.onion_host = OnionHost(host)
        for i in range(_N_CLIENTS):
            node = TorNode(f"client{i}", "client", rundir / f"client{i}", ports.pick())
            node.socks_port = ports.pick()
            auth_dir = node.directory / "onion_auth"
            auth_dir.mkdir(parents=True, mode=0o700)
            node.directory.chmod(0o700)
            self.clients.append(TorClient(node, auth_dir))
        self.nodes = [*self.authorities, host, *(c.node for c in self.clients)]
        self.dirauth_lines = [_dirauth_line(a) for a in self.authorities]

    def _torrc(self, node: TorNode, vote_offset: int) -> str:
        values: dict[str, Any] = {
            "dir": node.directory,
            "nick": node.nick,
            "control_port": node.control_port,
            "owner": os.getpid(),
            "or_port": node.or_port,
            "dir_port": node.dir_port,
            "initial_interval": _VOTING_INTERVAL,
            "interval": _VOTING_INTERVAL,
            "vote_offset": vote_offset,
        }
        text = _COMMON.format(**values)
        if node.kind == "authority":
            text += _RELAY.format(**values) + _AUTHORITY.format(**values)
        if node.password:
            text += f"HashedControlPassword {self._hashed_password}\n"
        else:
            text += "CookieAuthentication 1\n"
        if node.kind == "onion-host":
            text += "SocksPort 0\n"
        if node.kind == "client":
            # ExtendedErrors: SOCKS5 replies 0xF0-0xF7 say why an onion failed.
            text += f"SocksPort 127.0.0.1:{node.socks_port} ExtendedErrors\n"
            text += f"ClientOnionAuthDir {node.directory / 'onion_auth'}\n"
        if os.environ.get("SDWM_TOR_INFO_LOG") == "1":
            text += f"Log info file {node.directory}/info.log\n"
        return text + "".join(f"DirAuthority {line}\n" for line in self.dirauth_lines)

    # -- starting ---------------------------------------------------------------

    def _start_once(self, timeout: float) -> None:
        t0 = time.monotonic()
        deadline = t0 + timeout
        # Votes happen at wall-clock slots (valid-after minus vote and distribution
        # delays); pick the offset so that the first one comes _FIRST_VOTE_AFTER s
        # from now, once every relay has published (pitfall 1).
        valid_after = time.time() + _FIRST_VOTE_AFTER + 4
        vote_offset = int(valid_after) % _VOTING_INTERVAL
        for node in self.nodes:
            (node.directory / "torrc").write_text(self._torrc(node, vote_offset))
        self._launch(self.authorities, deadline)
        # Start the onion host and the clients only once every authority serves a
        # consensus listing every relay and all their microdescriptors: a client
        # that fetches an empty consensus, or gets a 404 for microdescriptors,
        # waits 10 s or more before asking again.
        while not all(_has_full_dirinfo(a, _N_AUTHORITIES) for a in self.authorities):
            self._check_alive()
            if time.monotonic() > deadline:
                raise PrivnetError(f"no full consensus after {timeout:.0f}s")
            time.sleep(0.2)
        self.timings["consensus_s"] = time.monotonic() - t0
        late = [n for n in self.nodes if n.kind != "authority"]
        self._launch(late, deadline)
        while not all(_bootstrapped(n) for n in late):
            self._check_alive()
            if time.monotonic() > deadline:
                raise PrivnetError(f"clients not bootstrapped after {timeout:.0f}s")
            time.sleep(0.2)
        self.timings["bootstrapped_s"] = time.monotonic() - t0

    def _launch(self, nodes: list[TorNode], deadline: float) -> None:
        for node in nodes:
            with (node.directory / "stdout.log").open("wb") as out:
                node.proc = subprocess.Popen(
                    ["tor", "-f", str(node.directory / "torrc"), "--ignore-missing-torrc"],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
        # One long-lived controller per tor. The torrc names this process as owner,
        # so stem's first authenticate() sends TAKEOWNERSHIP: tor exits when this
        # connection closes, and also if this process dies (pitfall 2).
        for node in nodes:
            node.controller = self._connect(node, deadline)

    def _connect(self, node: TorNode, deadline: float) -> Controller:
        while True:
            try:
                # Probe first: stem leaks its socket when the connection is refused.
                socket.create_connection(("127.0.0.1", node.control_port), timeout=5).close()
                with quiet_stem():
                    controller = Controller.from_port("127.0.0.1", node.control_port)
            except (OSError, stem.SocketError):
                if not node.is_running():
                    raise PrivnetError(f"{node.nick} exited: {node.last_words()}") from None
                if time.monotonic() > deadline:
                    raise PrivnetError(f"{node.nick}: control port never opened") from None
                time.sleep(0.1)
                continue
            try:
                controller.authenticate(password=node.password)
            except (stem.connection.AuthenticationFailure, stem.SocketError) as exc:
                with quiet_stem():
                    controller.close()
                raise PrivnetError(f"{node.nick}: cannot authenticate: {exc}") from exc
            return controller

    def _check_alive(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is not None:
                raise PrivnetError(f"{node.nick} died: {node.last_words()}")


# -- helpers --------------------------------------------------------------------


@contextlib.contextmanager
def quiet_stem() -> Iterator[None]:
    """stem 1.8 starts its threads with the deprecated ``Thread.setDaemon``."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", r"setDaemon\(\) is deprecated", DeprecationWarning, r"stem\."
        )
        yield


def _start_keygen(directory: Path) -> list[subprocess.Popen[bytes]]:
    """Start making one authority's v3 keys and relay identity, in the background."""
    keys = directory / "keys"
    keys.mkdir(parents=True, mode=0o700)
    gencert = subprocess.Popen(
        [
            "tor-gencert",
            "--create-identity-key",
            "--passphrase-fd",
            "0",
            "-m",
            "24",
            "-i",
            str(keys / "authority_identity_key"),
            "-s",
            str(keys / "authority_signing_key"),
            "-c",
            str(keys / "authority_certificate"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert gencert.stdin is not None
    gencert.stdin.write(b"\n")
    gencert.stdin.close()
    fingerprint = subprocess.Popen(
        [
            "tor",
            "--ignore-missing-torrc",
            "-f",
            "/dev/null",
            "--orport",
            "1",
            "--datadirectory",
            str(directory),
            "--list-fingerprint",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return [gencert, fingerprint]


def _usable_keys(directory: Path) -> bool:
    """Cached keys exist and the authority certificate is good for 30 more days."""
    try:
        cert = (directory / "keys" / "authority_certificate").read_text()
        (directory / "fingerprint").read_text().split()[1]
    except (OSError, IndexError):
        return False
    match = re.search(r"^dir-key-expires (\S+ \S+)$", cert, re.MULTILINE)
    if not match:
        return False
    expires = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return expires - datetime.now(UTC) > timedelta(days=30)


def _dirauth_line(node: TorNode) -> str:
    cert = (node.directory / "keys" / "authority_certificate").read_text()
    match = re.search(r"^fingerprint (\S+)$", cert, re.MULTILINE)
    assert match, f"no fingerprint in {node.nick}'s authority certificate"
    relay_fpr = (node.directory / "fingerprint").read_text().split()[1]
    return (
        f"{node.nick} orport={node.or_port} v3ident={match.group(1)} "
        f"127.0.0.1:{node.dir_port} {relay_fpr}"
    )


def _hash_password(password: str) -> str:
    out = subprocess.run(
        ["tor", "--quiet", "--hash-password", password],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    hashed = [line for line in out.splitlines() if line.startswith("16:")]
    if not hashed:
        raise PrivnetError(f"tor --hash-password gave no hash: {out!r}")
    return hashed[-1]


def _has_full_dirinfo(node: TorNode, relays: int) -> bool:
    assert node.controller is not None
    try:
        ns = node.controller.get_info("ns/all", "")
        md = node.controller.get_info("md/all", "")
    except stem.ControllerError:
        return False
    return (
        sum(line.startswith("r ") for line in ns.splitlines()) >= relays
        and sum(line.startswith("ntor-onion-key ") for line in md.splitlines()) >= relays
    )


def _bootstrapped(node: TorNode) -> bool:
    assert node.controller is not None
    try:
        return "PROGRESS=100" in node.controller.get_info("status/bootstrap-phase")
    except stem.ControllerError:
        return False


def tor_pids_under(workdir: Path) -> list[int]:
    """Pids of tor processes whose command line mentions ``workdir``."""
    needle = str(workdir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            args = (entry / "cmdline").read_bytes().split(b"\0")
            if (
                args
                and Path(args[0].decode(errors="replace")).name == "tor"
                and any(needle in arg for arg in args)
            ):
                # A zombie (already dead, not yet reaped) is not running.
                stat = (entry / "stat").read_text()
                if stat.rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
    return found


@contextlib.contextmanager
def running_network(workdir: Path, *, key_cache: Path | None) -> Iterator[PrivateTorNetwork]:
    """Start a network, yield it, and always tear it down and check nothing is left."""
    net = PrivateTorNetwork(workdir, key_cache=key_cache)
    try:
        net.start()
        yield net
    finally:
        report = net.stop()
        net.timings["stop_s"] = report.seconds
        if report.leftover_pids:
            raise PrivnetError(f"tor processes left behind: {report.leftover_pids}")


def poll(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.1) -> bool:
    """Call ``predicate`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
