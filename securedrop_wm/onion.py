"""Onion services through Tor's control port.

The one module that talks to Tor, through stem. It publishes the source UI as a v3
onion service and the transfer API as a second one with v3 client authorization,
manages the authorized clients, reports Tor's status and stops cleanly.

A service's keys live in a *key dir* laid out like Tor's own ``HiddenServiceDir``
(``hs_ed25519_secret_key``, ``hs_ed25519_public_key``, ``hostname``,
``authorized_clients/<name>.auth``), so a key made here can be handed to a tor that
owns it through its torrc, and the other way round. See ``docs/onion.md``.

Usage::

    with Onion.connect(9051) as onion:  # or Onion.launch(data_dir)
        service = onion.publish(key_dir, {80: 8080})
        print(service.address)
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import stem
import stem.connection
import stem.control
import stem.response
import stem.version
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from .errors import SecureDropError

__all__ = [
    "MIN_CLIENT_AUTH_VERSION",
    "MIN_TOR_VERSION",
    "AuthorizedClient",
    "ClientKeyError",
    "ClientKeypair",
    "KeyFileError",
    "Onion",
    "OnionError",
    "OnionService",
    "PublicationTimeoutError",
    "TorAuthenticationError",
    "TorLaunchError",
    "TorNotRunningError",
    "TorStatus",
    "TorTooOldError",
    "add_authorized_client",
    "ensure_service_key",
    "generate_client_keypair",
    "list_authorized_clients",
    "remove_authorized_client",
    "require_tor_version",
    "service_address",
]

#: Oldest tor that publishes v3 onion services reliably (first v3 stable series).
MIN_TOR_VERSION = "0.3.5.7"
#: Oldest tor whose ADD_ONION takes ``ClientAuthV3``.
MIN_CLIENT_AUTH_VERSION = "0.4.6.1"

SECRET_KEY_FILE = "hs_ed25519_secret_key"  # noqa: S105 (a file name)
PUBLIC_KEY_FILE = "hs_ed25519_public_key"
HOSTNAME_FILE = "hostname"
CLIENTS_DIR = "authorized_clients"

# Tor's tagged key files: a 32-byte NUL-padded header, then the key.
_SECRET_HEADER = b"== ed25519v1-secret: type0 ==\x00\x00\x00"
_PUBLIC_HEADER = b"== ed25519v1-public: type0 ==\x00\x00\x00"
_CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SERVICE_ID = re.compile(r"[a-z2-7]{56}")
_TARGET = re.compile(r"unix:/[^\s,]+|[A-Za-z0-9.\-]+:\d{1,5}|\[[0-9A-Fa-f:.]+\]:\d{1,5}")
_STOP_GRACE = 5.0


class OnionError(SecureDropError):
    """Base class of every error this module raises."""


class TorNotRunningError(OnionError):
    """Nothing answers at the control port or socket, or tor went away."""


class TorAuthenticationError(OnionError):
    """Tor refused the control connection: wrong or missing password, or an
    authentication cookie that cannot be read."""


class TorTooOldError(OnionError):
    """The tor at the other end is too old for what was asked of it (v3 onion
    services need :data:`MIN_TOR_VERSION`, client authorization
    :data:`MIN_CLIENT_AUTH_VERSION`)."""


class TorLaunchError(OnionError):
    """A tor of our own could not be started, or did not bootstrap in time."""


class KeyFileError(OnionError):
    """A key file in a key dir cannot be read or written, is corrupt, is readable
    by other users, or does not match the address recorded beside it."""


class ClientKeyError(OnionError):
    """A client name or public key is malformed or unknown, or a service that must
    require client authorization has no authorized client (it would be public)."""


class PublicationTimeoutError(OnionError):
    """Tor did not upload the service's descriptor in time. The service has been
    removed again; nothing stays half-published."""


@dataclass(frozen=True)
class OnionService:
    """An onion service published by an :class:`Onion`."""

    #: The address without ``.onion``: 56 base32 characters.
    service_id: str
    #: Where its keys (and authorized clients) are kept.
    key_dir: Path
    #: ``(virtual port, target)`` pairs, e.g. ``((80, "127.0.0.1:8080"),)``.
    ports: tuple[tuple[int, str], ...]
    #: Whether only authorized clients can reach it.
    client_auth: bool

    @property
    def address(self) -> str:
        return f"{self.service_id}.onion"

    @property
    def url(self) -> str:
        return f"http://{self.address}/"


@dataclass(frozen=True)
class AuthorizedClient:
    """A client allowed to reach a service with client authorization."""

    name: str
    #: x25519 public key, base32 without padding, as Tor writes it.
    public_key: str


@dataclass(frozen=True)
class ClientKeypair:
    """An x25519 key pair for v3 client authorization.

    The public half goes to the service (:meth:`Onion.add_client`); the private
    half stays with the client, in Tor's ``ClientOnionAuthDir`` or Tor Browser.
    """

    #: base32 without padding, as in a ``.auth_private`` file. A secret.
    private_key: str
    #: base32 without padding, as in an ``authorized_clients/*.auth`` file.
    public_key: str

    @property
    def private_key_base64(self) -> str:
        """The private key as ``ONION_CLIENT_AUTH_ADD`` on the control port wants it."""
        return base64.b64encode(_b32decode(self.private_key)).decode("ascii")

    def auth_private_line(self, address: str) -> str:
        """The line of a client's ``<name>.auth_private`` file for ``address``."""
        service_id = address.removesuffix(".onion")
        return f"{service_id}:descriptor:x25519:{self.private_key}\n"


@dataclass(frozen=True)
class TorStatus:
    """What :meth:`Onion.status` reports."""

    tor_version: str
    bootstrap_percent: int
    bootstrap_summary: str
    #: Service ids of this Onion's services whose descriptor tor has uploaded.
    published: frozenset[str]

    @property
    def bootstrapped(self) -> bool:
        return self.bootstrap_percent >= 100


# -- key dirs -------------------------------------------------------------------


def generate_client_keypair() -> ClientKeypair:
    """Make a fresh x25519 key pair for v3 client authorization."""
    key = X25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return ClientKeypair(_b32encode(private), _b32encode(public))


def service_address(key_dir: Path) -> str | None:
    """The ``.onion`` address a key dir publishes, if it is known yet."""
    try:
        hostname = (Path(key_dir) / HOSTNAME_FILE).read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyFileError(f"cannot read {key_dir / HOSTNAME_FILE}: {exc}") from exc
    if not _SERVICE_ID.fullmatch(hostname.removesuffix(".onion")):
        raise KeyFileError(f"{key_dir / HOSTNAME_FILE} does not hold an onion address")
    return hostname


def ensure_service_key(key_dir: Path) -> str:
    """Make the service key in ``key_dir`` if it has none yet; return its ``.onion``
    address, known before anything is published (e.g. to hand a client its key line).

    :raises KeyFileError: the key dir or key cannot be made or read.
    """
    _load_or_create_key(key_dir)
    address = service_address(key_dir)
    if address is None:
        raise KeyFileError(f"{Path(key_dir) / HOSTNAME_FILE} is missing beside its key")
    return address


def list_authorized_clients(key_dir: Path) -> list[AuthorizedClient]:
    """The clients authorized in ``key_dir``, sorted by name."""
    clients_dir = Path(key_dir) / CLIENTS_DIR
    try:
        files = sorted(clients_dir.glob("*.auth"))
    except OSError as exc:
        raise KeyFileError(f"cannot list {clients_dir}: {exc}") from exc
    clients = []
    for path in files:
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise KeyFileError(f"cannot read {path}: {exc}") from exc
        auth_type, _, key = text.partition(":x25519:")
        try:
            public_key = _normalize_public_key(key)
        except ClientKeyError:
            public_key = None
        if auth_type != "descriptor" or public_key is None:
            raise KeyFileError(f"{path} is not a 'descriptor:x25519:<key>' line")
        clients.append(AuthorizedClient(path.name.removesuffix(".auth"), public_key))
    return clients


def add_authorized_client(key_dir: Path, name: str, public_key: str) -> AuthorizedClient:
    """Authorize a client in ``key_dir``; a running service learns of it on its next
    publication (:meth:`Onion.add_client` republishes at once).

    :param name: a short label such as ``alice-laptop``; letters, digits, ``_.-``.
    :param public_key: the client's x25519 public key, base32.
    :raises ClientKeyError: malformed name or key, or the name is taken.
    """
    if not _CLIENT_NAME.fullmatch(name):
        raise ClientKeyError(f"invalid client name {name!r}: use letters, digits, '_', '.', '-'")
    client = AuthorizedClient(name, _normalize_public_key(public_key))
    clients_dir = Path(key_dir) / CLIENTS_DIR
    if any(c.name == name for c in list_authorized_clients(key_dir)):
        raise ClientKeyError(f"a client named {name!r} is already authorized")
    try:
        clients_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyFileError(f"cannot create {clients_dir}: {exc}") from exc
    line = f"descriptor:x25519:{client.public_key}\n".encode("ascii")
    _write_new_file(clients_dir / f"{name}.auth", line)
    return client


def remove_authorized_client(key_dir: Path, name: str) -> None:
    """Remove a client's authorization from ``key_dir``.

    :raises ClientKeyError: no client of that name is authorized.
    """
    if not _CLIENT_NAME.fullmatch(name):
        raise ClientKeyError(f"invalid client name {name!r}")
    path = Path(key_dir) / CLIENTS_DIR / f"{name}.auth"
    try:
        path.unlink()
    except FileNotFoundError:
        raise ClientKeyError(f"no client named {name!r} is authorized") from None
    except OSError as exc:
        raise KeyFileError(f"cannot remove {path}: {exc}") from exc


def require_tor_version(
    version: str, minimum: str = MIN_TOR_VERSION, feature: str = "v3 onion services"
) -> None:
    """Check a tor version string against a minimum.

    :raises TorTooOldError: ``version`` is older than ``minimum``.
    """
    if stem.version.Version(version) < stem.version.Version(minimum):
        raise TorTooOldError(f"tor {version} is too old for {feature}: {minimum} or newer needed")


def _load_or_create_key(key_dir: Path) -> tuple[str, str | None]:
    """The service's secret key as ADD_ONION wants it, and its address if known.

    A new key is made here, not by tor, so that it is on disk before the service
    is published and its address is known up front.
    """
    key_dir = Path(key_dir)
    path = key_dir / SECRET_KEY_FILE
    try:
        key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyFileError(f"cannot create key dir {key_dir}: {exc}") from exc
    if not path.exists():
        _create_key(key_dir)
    try:
        with path.open("rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            data = f.read(len(_SECRET_HEADER) + 65)
    except OSError as exc:
        raise KeyFileError(f"cannot read onion key {path}: {exc}") from exc
    if mode & 0o077:
        raise KeyFileError(f"onion key {path} is readable by other users; chmod 600 it")
    if len(data) != len(_SECRET_HEADER) + 64 or not data.startswith(_SECRET_HEADER):
        raise KeyFileError(f"{path} is not an ed25519 onion service key (corrupt?)")
    blob = base64.b64encode(data[len(_SECRET_HEADER) :]).decode("ascii")
    return blob, service_address(key_dir)


def _create_key(key_dir: Path) -> None:
    seed = os.urandom(32)
    # Tor keeps the "expanded" secret key: SHA-512 of the seed, clamped (RFC 8032).
    expanded = bytearray(hashlib.sha512(seed).digest())
    expanded[0] &= 248
    expanded[31] &= 127
    expanded[31] |= 64
    public = (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    with contextlib.suppress(FileExistsError):  # another process made one just now
        _write_new_file(key_dir / SECRET_KEY_FILE, _SECRET_HEADER + bytes(expanded))
        _write_public_files(key_dir, _onion_id(public))


def _write_public_files(key_dir: Path, service_id: str) -> None:
    """Write ``hostname`` and ``hs_ed25519_public_key`` as tor would."""
    public = _b32decode(service_id.upper())[:32]
    for name, data in (
        (HOSTNAME_FILE, f"{service_id}.onion\n".encode("ascii")),
        (PUBLIC_KEY_FILE, _PUBLIC_HEADER + public),
    ):
        with contextlib.suppress(FileExistsError):
            _write_new_file(key_dir / name, data)


def _onion_id(public_key: bytes) -> str:
    version = b"\x03"
    checksum = hashlib.sha3_256(b".onion checksum" + public_key + version).digest()[:2]
    return base64.b32encode(public_key + checksum + version).decode("ascii").lower()


def _write_new_file(path: Path, data: bytes) -> None:
    """Write a 0600 file atomically; :class:`FileExistsError` if it exists."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, path)  # unlike rename, never replaces an existing file
    except FileExistsError:
        raise
    except OSError as exc:
        raise KeyFileError(f"cannot write {path}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _normalize_public_key(key: str) -> str:
    try:
        raw = _b32decode(key.strip().upper())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ClientKeyError("a client public key is 32 bytes of x25519, base32-encoded")
    return _b32encode(raw)


def _b32encode(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def _b32decode(text: str) -> bytes:
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


# -- tor ------------------------------------------------------------------------


class Onion:
    """A control connection to one tor, and the onion services published on it.

    Make one with :meth:`connect` (a tor that runs already) or :meth:`launch` (a
    tor of our own). Services are ephemeral (``ADD_ONION``): they go away when the
    connection closes, while their keys stay in their key dirs. Not meant to be
    shared between threads without a lock of the caller's.
    """

    def __init__(self, controller: Any, *, process: subprocess.Popen[bytes] | None = None) -> None:
        """Take over an authenticated stem controller (and the tor process, if ours).

        Use :meth:`connect` or :meth:`launch` rather than this.
        """
        self._controller = controller
        self._process = process
        self._services: dict[str, OnionService] = {}
        self._uploads: dict[str, float] = {}
        self._upload_starts: dict[tuple[str, str], float] = {}
        self._upload_failures: dict[str, str] = {}
        self._uploaded = threading.Condition()
        try:
            with _tor_errors("report its version and descriptor uploads"):
                version = str(controller.get_version())
                controller.add_event_listener(self._on_hs_desc, stem.control.EventType.HS_DESC)
            self.tor_version = version
            require_tor_version(version)
        except BaseException:
            self.close()
            raise

    @classmethod
    def connect(
        cls,
        control_port: int = 9051,
        *,
        host: str = "127.0.0.1",
        socket_path: Path | None = None,
        password: str | None = None,
    ) -> Onion:
        """Connect to a running tor's control port (or socket) and authenticate,
        with the cookie tor names or with ``password``.

        :raises TorNotRunningError: nothing listens there.
        :raises TorAuthenticationError: tor refused the credentials.
        :raises TorTooOldError: tor cannot publish v3 onion services.
        """
        where = str(socket_path) if socket_path else f"{host}:{control_port}"
        try:
            _probe(host, control_port, socket_path)
            with _quiet_stem():
                if socket_path is not None:
                    controller = stem.control.Controller.from_socket_file(str(socket_path))
                else:
                    controller = stem.control.Controller.from_port(host, control_port)
        except (OSError, stem.SocketError) as exc:
            raise TorNotRunningError(f"no tor control port at {where}: {exc}") from exc
        try:
            controller.authenticate(password=password)
        except stem.connection.AuthenticationFailure as exc:
            _close_controller(controller)
            raise TorAuthenticationError(f"tor at {where} refused authentication: {exc}") from exc
        except stem.SocketError as exc:
            _close_controller(controller)
            raise TorNotRunningError(f"tor at {where} closed the connection: {exc}") from exc
        return cls(controller)

    @classmethod
    def launch(
        cls,
        data_dir: Path,
        *,
        tor_cmd: str = "tor",
        config: Mapping[str, str | Sequence[str]] | None = None,
        timeout: float = 120.0,
        wait_for_bootstrap: bool = True,
    ) -> Onion:
        """Start a tor of our own in ``data_dir`` and connect to it.

        The tor listens on a control socket in ``data_dir`` (cookie auth) and on no
        SOCKS port unless ``config`` says otherwise; it exits when this Onion is
        closed, and also if this process dies.

        :param config: extra torrc options; a list value repeats the option.
        :param timeout: seconds to wait for the control socket and, with
            ``wait_for_bootstrap``, for tor to be 100% bootstrapped.
        :raises TorLaunchError: tor would not start, or did not bootstrap in time.
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
            "Log": f"notice file {data_dir / 'notice.log'}",
            "__OwningControllerProcess": str(os.getpid()),
            **(config or {}),
        }
        torrc = data_dir / "torrc"
        torrc.write_text(_torrc_text(options))
        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()
        try:
            with (data_dir / "stdout.log").open("wb") as out:
                process = subprocess.Popen(
                    [tor_cmd, "-f", str(torrc), "--ignore-missing-torrc"],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
        except OSError as exc:
            raise TorLaunchError(f"cannot run {tor_cmd}: {exc}") from exc
        try:
            controller = _connect_launched(process, socket_path, data_dir, timeout)
            onion = cls(controller, process=process)
        except BaseException:
            _terminate(process)
            raise
        if wait_for_bootstrap:
            try:
                onion._wait_bootstrapped(timeout, data_dir)
            except BaseException:
                onion.close()
                raise
        return onion

    # -- status -----------------------------------------------------------------

    def status(self) -> TorStatus:
        """Tor's version and bootstrap progress, and which services are published."""
        with _tor_errors("report its bootstrap status"):
            phase = str(self._controller.get_info("status/bootstrap-phase"))
        progress = re.search(r"PROGRESS=(\d+)", phase)
        summary = re.search(r'SUMMARY="([^"]*)"', phase)
        with self._uploaded:
            published = frozenset(sid for sid in self._services if sid in self._uploads)
        return TorStatus(
            tor_version=self.tor_version,
            bootstrap_percent=int(progress.group(1)) if progress else 0,
            bootstrap_summary=summary.group(1) if summary else phase,
            published=published,
        )

    @property
    def services(self) -> list[OnionService]:
        """The services this Onion has published and not removed."""
        return list(self._services.values())

    # -- publishing -------------------------------------------------------------

    def publish(
        self,
        key_dir: Path,
        ports: Mapping[int, int | str],
        *,
        client_auth: bool = False,
        await_publication: bool = True,
        timeout: float = 90.0,
    ) -> OnionService:
        """Publish the v3 onion service whose key is in ``key_dir``.

        The key is made (mode 0600) on first use, so the address survives restarts.
        With ``client_auth`` only the clients authorized in ``key_dir`` (see
        :meth:`add_client`) can reach it.

        :param ports: virtual port to target: a local port number, ``"host:port"``
            or ``"unix:/path"``.
        :param await_publication: return only once tor has uploaded the descriptor.
        :raises KeyFileError: the key is unreadable, corrupt, too open, or does not
            match the address recorded in ``key_dir``.
        :raises ClientKeyError: ``client_auth`` without an authorized client, or
            authorized clients in a key dir published without ``client_auth``.
        :raises TorTooOldError: ``client_auth`` on a tor that cannot do it.
        :raises PublicationTimeoutError: the descriptor was not uploaded in time.
        """
        key_dir = Path(key_dir)
        port_pairs = _port_pairs(ports)
        clients = list_authorized_clients(key_dir)
        if client_auth:
            require_tor_version(self.tor_version, MIN_CLIENT_AUTH_VERSION, "client authorization")
            if not clients:
                raise ClientKeyError(
                    f"no client is authorized in {key_dir}: the service would be public"
                )
        elif clients:
            raise ClientKeyError(
                f"{key_dir} has authorized clients: publish it with client_auth=True"
            )
        blob, known_address = _load_or_create_key(key_dir)
        known_id = known_address.removesuffix(".onion") if known_address else None
        if known_id in self._services:
            raise OnionError(f"{known_address} is published already")
        command = [
            f"ADD_ONION ED25519-V3:{blob}",
            "Flags=DiscardPK,V3Auth" if client_auth else "Flags=DiscardPK",
            *(f"Port={virtual},{target}" for virtual, target in port_pairs),
            *(f"ClientAuthV3={c.public_key}" for c in clients if client_auth),
        ]
        started = time.monotonic()
        with _tor_errors("publish the onion service"):
            reply = self._controller.msg(" ".join(command))
        if not reply.is_ok():
            raise OnionError(f"tor refused to publish the onion service from {key_dir}: {reply}")
        stem.response.convert("ADD_ONION", reply)
        service_id = str(reply.service_id)
        service = OnionService(service_id, key_dir, port_pairs, client_auth)
        self._services[service_id] = service
        try:
            if known_id is not None and known_id != service_id:
                raise KeyFileError(
                    f"the key in {key_dir} is for {service_id}.onion, "
                    f"not {known_address} as its hostname file says"
                )
            _write_public_files(key_dir, service_id)
            if await_publication:
                self._wait_uploaded(service_id, started, timeout)
        except BaseException:
            self.unpublish(service)
            raise
        return service

    def unpublish(self, service: OnionService) -> None:
        """Take a service down. Its keys stay in its key dir."""
        self._services.pop(service.service_id, None)
        with self._uploaded:
            self._uploads.pop(service.service_id, None)
        with contextlib.suppress(stem.ControllerError, stem.SocketError):
            self._controller.msg(f"DEL_ONION {service.service_id}")
            # DEL_ONION leaves clients that are connected already connected (their
            # rendezvous circuits stay up): cut them, so that taking a service down
            # or revoking a client takes effect now.
            for circuit in self._controller.get_circuits([]):
                if (
                    circuit.purpose == "HS_SERVICE_REND"
                    and circuit.rend_query == service.service_id
                ):
                    self._controller.close_circuit(circuit.id)

    def wait_published(self, service: OnionService, timeout: float = 90.0) -> None:
        """Block until tor has uploaded ``service``'s descriptor to an HSDir.

        :raises PublicationTimeoutError: not within ``timeout`` seconds.
        """
        self._wait_uploaded(service.service_id, None, timeout)

    # -- client authorization ---------------------------------------------------

    def list_clients(self, service: OnionService) -> list[AuthorizedClient]:
        """The clients authorized to reach ``service``."""
        return list_authorized_clients(service.key_dir)

    def add_client(
        self, service: OnionService, name: str, public_key: str, *, timeout: float = 90.0
    ) -> OnionService:
        """Authorize a client, persist it in the key dir, and republish the service
        (same address) so that its descriptor includes the client.

        :raises ClientKeyError: malformed name or key, or the name is taken.
        """
        self._require_authorized(service)
        add_authorized_client(service.key_dir, name, public_key)
        return self._republish(service, timeout)

    def remove_client(
        self, service: OnionService, name: str, *, timeout: float = 90.0
    ) -> OnionService:
        """Revoke a client's authorization, persist that, and republish the service.

        The new descriptor cannot be decrypted with the removed key, and the old
        introduction points are gone.

        :raises ClientKeyError: no such client, or it is the last one (the service
            would be public without one; unpublish it instead).
        """
        self._require_authorized(service)
        clients = list_authorized_clients(service.key_dir)
        if [c.name for c in clients] == [name]:
            raise ClientKeyError(f"{name!r} is the last authorized client of {service.address}")
        remove_authorized_client(service.key_dir, name)
        return self._republish(service, timeout)

    def _require_authorized(self, service: OnionService) -> None:
        if not service.client_auth:
            raise ClientKeyError(f"{service.address} does not use client authorization")

    def _republish(self, service: OnionService, timeout: float) -> OnionService:
        if service.service_id not in self._services:
            return service  # not live: the key dir change is all there is to do
        self.unpublish(service)
        return self.publish(service.key_dir, dict(service.ports), client_auth=True, timeout=timeout)

    # -- stopping ---------------------------------------------------------------

    def close(self) -> None:
        """Remove this Onion's services, close the connection, and stop our own tor."""
        for service in list(self._services.values()):
            self.unpublish(service)
        _close_controller(self._controller)
        if self._process is not None:
            # Closing the owning control connection makes our tor exit by itself.
            _terminate(self._process)

    def __enter__(self) -> Onion:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals --------------------------------------------------------------

    def _on_hs_desc(self, event: Any) -> None:
        # Runs in stem's event thread. An upload counts only if it was started after
        # the publication we wait for: right after a republication, uploads of the
        # previous descriptor to the same HSDirs may still be finishing.
        address, hsdir = str(event.address), str(event.directory_fingerprint)
        now = time.monotonic()
        with self._uploaded:
            if event.action == stem.HSDescAction.UPLOAD:
                self._upload_starts[(address, hsdir)] = now
            elif event.action == stem.HSDescAction.UPLOADED:
                started = self._upload_starts.get((address, hsdir), now)
                self._uploads[address] = max(self._uploads.get(address, started), started)
                self._uploaded.notify_all()
            elif event.action == stem.HSDescAction.FAILED:
                self._upload_failures[address] = str(event.reason)

    def _wait_uploaded(self, service_id: str, since: float | None, timeout: float) -> None:
        """Wait for an upload of ``service_id``'s descriptor (after ``since``, if given)."""
        deadline = time.monotonic() + timeout
        with self._uploaded:
            while (uploaded := self._uploads.get(service_id)) is None or (
                since is not None and uploaded < since
            ):
                left = deadline - time.monotonic()
                if left <= 0 or not self._controller.is_alive():
                    why = self._upload_failures.get(service_id)
                    raise PublicationTimeoutError(
                        f"{service_id}.onion was not published within {timeout:g}s"
                        + (f" (last upload failure: {why})" if why else "")
                    )
                self._uploaded.wait(min(left, 1.0))

    def _wait_bootstrapped(self, timeout: float, data_dir: Path) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                status = self.status()
            except TorNotRunningError:
                raise TorLaunchError(
                    f"tor exited while bootstrapping: {_last_words(data_dir)}"
                ) from None
            if status.bootstrapped:
                return
            if time.monotonic() > deadline:
                raise TorLaunchError(
                    f"tor did not bootstrap within {timeout:g}s: stuck at "
                    f"{status.bootstrap_percent}% ({status.bootstrap_summary})"
                )
            time.sleep(0.2)


@contextlib.contextmanager
def _tor_errors(action: str) -> Iterator[None]:
    """Turn stem's errors into ours."""
    try:
        yield
    except stem.SocketClosed as exc:
        raise TorNotRunningError(f"tor went away while asked to {action}") from exc
    except stem.ControllerError as exc:
        raise OnionError(f"tor could not {action}: {exc}") from exc


@contextlib.contextmanager
def _quiet_stem() -> Iterator[None]:
    """Silence stem 1.8's use of ``Thread.setDaemon`` (deprecated since Python 3.10)
    where stem starts threads: opening and closing a controller."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", r"setDaemon\(\) is deprecated", DeprecationWarning, r"stem\."
        )
        yield


def _probe(host: str, port: int, socket_path: Path | None) -> None:
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


def _close_controller(controller: Any) -> None:
    with _quiet_stem(), contextlib.suppress(stem.SocketError, OSError):
        controller.close()


def _port_pairs(ports: Mapping[int, int | str]) -> tuple[tuple[int, str], ...]:
    if not ports:
        raise ValueError("an onion service needs at least one port")
    pairs = []
    for virtual, target in sorted(ports.items()):
        if not 0 < virtual < 65536:
            raise ValueError(f"invalid virtual port {virtual}")
        text = f"127.0.0.1:{target}" if isinstance(target, int) else target
        if not _TARGET.fullmatch(text):
            raise ValueError(f"invalid port target {target!r}")
        pairs.append((virtual, text))
    return tuple(pairs)


def _torrc_text(options: Mapping[str, str | Sequence[str]]) -> str:
    lines = []
    for key, value in options.items():
        for item in [value] if isinstance(value, str) else value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) or "\n" in item or "\r" in item:
                raise ValueError(f"invalid torrc option {key} {item!r}")
            lines.append(f"{key} {item}\n")
    return "".join(lines)


def _connect_launched(
    process: subprocess.Popen[bytes], socket_path: Path, data_dir: Path, timeout: float
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise TorLaunchError(f"tor exited at start: {_last_words(data_dir)}")
        try:
            _probe("", 0, socket_path)
            with _quiet_stem():
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
        _close_controller(controller)
        raise TorLaunchError(f"cannot authenticate to our own tor: {exc}") from exc
    return controller


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """Wait for our tor to exit; SIGTERM, then SIGKILL, if it does not."""
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(_STOP_GRACE)
            return


def _last_words(data_dir: Path) -> str:
    for name in ("notice.log", "stdout.log"):
        with contextlib.suppress(OSError):
            lines = (data_dir / name).read_text(errors="replace").splitlines()
            bad = [line for line in lines if "[warn]" in line or "[err]" in line]
            if bad:
                return bad[-1].strip()
    return f"see the logs in {data_dir}"
